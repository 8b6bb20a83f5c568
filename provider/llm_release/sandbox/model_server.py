"""OpenAI-compatible chat-completions server for one build of the reference support bot.

Speaks the subset of the OpenAI protocol the pipeline uses (``/v1/chat/completions``, ``/v1/models``)
so the same client code talks to the sandbox and to a real endpoint. Faults are switched at run time
through ``/admin/faults``.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llm_release.sandbox.bot import BUILDS, SupportBot
from llm_release.sandbox.faults import FaultSettings, fires, sample_latency_ms
from llm_release.suites.knowledge_base import KnowledgeBase, default_knowledge_base


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(min_length=1)
    content: str | None = None


class ChatCompletionRequest(BaseModel):
    # OpenAI clients send many optional parameters (top_p, stream=false, user...); accept and ignore.
    model_config = ConfigDict(extra="allow")

    model: str = "default"
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1)


def model_name(build: str) -> str:
    return f"northwind-support-{build}"


def last_user_message(messages: list[ChatMessage]) -> str:
    """The text the bot answers: the last ``user`` message (single-turn bot)."""
    for message in reversed(messages):
        if message.role == "user" and message.content:
            return message.content
    raise HTTPException(status_code=422, detail="messages: no non-empty message with role 'user'")


def _count_tokens(text: str) -> int:
    return len(text.split())


def _validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_context=False)
    ]


def create_model_server_app(
    build: str, kb: KnowledgeBase | None = None, faults: FaultSettings | None = None
) -> FastAPI:
    """The FastAPI app serving ``build``; state (faults, latency RNG) lives on ``app.state``."""
    if build not in BUILDS:
        raise ValueError(f"build must be one of {BUILDS}, got {build!r}")
    app = FastAPI(title=f"Northwind support bot ({build})", docs_url=None, redoc_url=None)
    app.state.build = build
    app.state.bot = SupportBot(kb or default_knowledge_base(), build)
    app.state.faults = faults or FaultSettings()
    app.state.latency_rng = random.Random(app.state.faults.seed)
    app.state.requests = 0

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "build": build, "model": model_name(build)}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model_name(build), "object": "model", "created": 0, "owned_by": "northwind"}],
        }

    @app.get("/admin/faults")
    async def get_faults() -> dict[str, Any]:
        return app.state.faults.model_dump()

    @app.put("/admin/faults")
    async def put_faults(request: Request) -> Any:
        try:
            patch = await request.json()
        except ValueError:
            return JSONResponse(status_code=422, content={"detail": "body: not valid JSON"})
        if not isinstance(patch, dict):
            return JSONResponse(status_code=422, content={"detail": "body: expected a JSON object"})
        try:
            updated = app.state.faults.updated(patch)
        except ValidationError as exc:
            return JSONResponse(status_code=422, content={"detail": _validation_detail(exc)})
        if updated.seed != app.state.faults.seed:
            app.state.latency_rng = random.Random(updated.seed)
        app.state.faults = updated
        return updated.model_dump()

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest) -> Any:
        faults: FaultSettings = app.state.faults
        query = last_user_message(body.messages)
        app.state.requests += 1
        delay_ms = sample_latency_ms(faults, app.state.latency_rng)
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000.0)
        if fires(faults, "error", build, query):
            error = {
                "message": f"{model_name(build)} is overloaded (injected fault)",
                "type": "server_error",
                "code": "service_unavailable",
            }
            return JSONResponse(status_code=503, content={"error": error})
        reply = app.state.bot.reply(query, faults)
        text, finish = reply.text, "stop"
        if body.max_tokens is not None and _count_tokens(text) > body.max_tokens:
            text, finish = " ".join(text.split()[: body.max_tokens]), "length"
        prompt_tokens = sum(_count_tokens(m.content or "") for m in body.messages)
        completion_tokens = _count_tokens(text)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_name(build),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": f"{build}-seed{faults.seed}",
        }

    return app
