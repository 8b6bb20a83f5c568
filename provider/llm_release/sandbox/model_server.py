"""OpenAI-compatible chat-completions server for one build of the reference support bot.

Speaks the subset of the OpenAI protocol the pipeline uses (``/v1/chat/completions``, ``/v1/models``)
so the same client code talks to the sandbox and to a real endpoint. Faults are switched at run time
through ``/admin/faults``.

Traffic: the gateway marks what it forwards with ``X-LLM-Release-Traffic: live|shadow`` and
``X-LLM-Release-Traffic-Share: <the build's live weight, 0..1>``; a request without them is an offline
suite calling the server directly. Faults scoped to a traffic kind, a request count or a traffic share
(``faults.FaultScope``) read these, and the server's request counter.

Cold start: like a real replica that loads its weights on first use, the server sleeps ``cold_start_ms``
before answering the first chat request after it starts or after ``POST /admin/scale-up``, which stands
for a scale-up hook: it returns once a fresh, cold replica takes the traffic. Concurrent first requests
all wait for the one load. That is what the load test's cold-start measurement times (spec section 3:
cold-start latency <= 6,000 ms, first request after scale-up).

Throughput: every wait (simulated latency, model load) is an ``asyncio.sleep``, so one process serves
many requests at once. Profiled at 120 req/s, knowledge-base retrieval was ~30 % of the server's CPU
(0.47 ms of ~1.8 ms per request); the bot now caches it per query (a hit costs ~9 us). Replies are
rendered directly as a ``JSONResponse``, skipping FastAPI's generic re-encoding of the dict (~25 us).
``benchmarks/load.py`` reports the CPU per request and the sustainable rate.
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
from llm_release.sandbox.faults import (
    MAX_LATENCY_MS,
    TRAFFIC,
    FaultSettings,
    RequestContext,
    sample_latency_ms,
    unknown_scope_targets,
)
from llm_release.suites.knowledge_base import CATEGORIES, KnowledgeBase, default_knowledge_base

TRAFFIC_HEADER = "X-LLM-Release-Traffic"
SHARE_HEADER = "X-LLM-Release-Traffic-Share"


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


DEFAULT_COLD_START_MS = 1500.0


class ScaleUpRequest(BaseModel):
    """Body of ``POST /admin/scale-up`` (optional): the model-load time of this and later cold starts."""

    model_config = ConfigDict(extra="forbid")

    cold_start_ms: float | None = Field(None, ge=0.0, le=MAX_LATENCY_MS, allow_inf_nan=False)


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


def request_context(traffic: str | None, share: str | None, served_before: int) -> RequestContext:
    """The fault context of a request from its gateway headers (none: offline). Raises HTTPException 422."""
    if traffic is None:
        if share is not None:
            raise HTTPException(status_code=422, detail=f"header {SHARE_HEADER}: sent without {TRAFFIC_HEADER}")
        return RequestContext("offline", 0.0, served_before)
    if traffic not in TRAFFIC or traffic == "offline":
        detail = f"header {TRAFFIC_HEADER}: expected live or shadow, got {traffic!r}"
        raise HTTPException(status_code=422, detail=detail)
    try:
        value = float(share) if share is not None else 0.0
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        detail = f"header {SHARE_HEADER}: expected a number in 0..1, got {share!r}"
        raise HTTPException(status_code=422, detail=detail)
    return RequestContext(traffic, value, served_before)


def scope_problems(faults: FaultSettings, kb: KnowledgeBase) -> list[dict[str, Any]]:
    """422 details for scope categories that are neither a KB category nor an entry id of ``kb``."""
    problems = unknown_scope_targets(faults, CATEGORIES, [entry.id for entry in kb.entries])
    return [{"loc": loc, "msg": msg, "type": "value_error"} for loc, msg in problems]


def create_model_server_app(
    build: str,
    kb: KnowledgeBase | None = None,
    faults: FaultSettings | None = None,
    *,
    cold_start_ms: float = DEFAULT_COLD_START_MS,
) -> FastAPI:
    """The FastAPI app serving ``build``; state (faults, latency RNG, replica) lives on ``app.state``.

    ``cold_start_ms`` is the simulated model load paid by the first chat request after start-up and
    after each ``POST /admin/scale-up`` (0 disables it).
    """
    if build not in BUILDS:
        raise ValueError(f"build must be one of {BUILDS}, got {build!r}")
    if not 0.0 <= cold_start_ms <= MAX_LATENCY_MS:
        raise ValueError(f"cold_start_ms must be within 0..{MAX_LATENCY_MS:g}, got {cold_start_ms}")
    kb = kb or default_knowledge_base()
    faults = faults or FaultSettings()
    if problems := scope_problems(faults, kb):
        raise ValueError(f"faults: {problems}")
    app = FastAPI(title=f"Northwind support bot ({build})", docs_url=None, redoc_url=None)
    app.state.build = build
    app.state.bot = SupportBot(kb, build)
    app.state.faults = faults
    app.state.latency_rng = random.Random(app.state.faults.seed)
    app.state.requests = 0
    app.state.cold_start_ms = float(cold_start_ms)
    app.state.replica = 1  # generation of the replica taking traffic; each scale-up starts a cold one
    app.state.loaded_replica = 0  # the replica whose model is loaded (0: none yet)
    app.state.cold_starts = 0
    app.state.load_lock = asyncio.Lock()

    async def ensure_model_loaded() -> None:
        """Pay the model load once per replica; requests arriving meanwhile wait for the same load."""
        if app.state.loaded_replica == app.state.replica:
            return
        async with app.state.load_lock:
            replica = app.state.replica
            if app.state.loaded_replica == replica:
                return
            if app.state.cold_start_ms > 0:
                await asyncio.sleep(app.state.cold_start_ms / 1000.0)
            app.state.loaded_replica = replica
            app.state.cold_starts += 1

    def replica_state() -> dict[str, Any]:
        return {
            "replica": app.state.replica,
            "model_loaded": app.state.loaded_replica == app.state.replica,
            "cold_start_ms": app.state.cold_start_ms,
            "cold_starts": app.state.cold_starts,
        }

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
        if problems := scope_problems(updated, app.state.bot.kb):
            return JSONResponse(status_code=422, content={"detail": problems})
        if updated.seed != app.state.faults.seed:
            app.state.latency_rng = random.Random(updated.seed)
        app.state.faults = updated
        return updated.model_dump()

    @app.get("/admin/replica")
    async def get_replica() -> dict[str, Any]:
        return replica_state()

    @app.post("/admin/scale-up")
    async def scale_up(request: Request) -> Any:
        """A fresh, cold replica takes the traffic: the next chat request pays the model load."""
        raw = await request.body()
        try:
            patch = ScaleUpRequest.model_validate_json(raw) if raw.strip() else ScaleUpRequest()
        except ValidationError as exc:
            return JSONResponse(status_code=422, content={"detail": _validation_detail(exc)})
        if patch.cold_start_ms is not None:
            app.state.cold_start_ms = patch.cold_start_ms
        app.state.replica += 1
        return replica_state()

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        faults: FaultSettings = app.state.faults
        query = last_user_message(body.messages)
        headers = request.headers
        context = request_context(headers.get(TRAFFIC_HEADER), headers.get(SHARE_HEADER), app.state.requests)
        app.state.requests += 1
        await ensure_model_loaded()
        delay_ms = sample_latency_ms(faults, app.state.latency_rng)
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000.0)
        error_scope = faults.scope("error")
        if error_scope is not None and error_scope.categories is not None:
            injected = await asyncio.to_thread(app.state.bot.error_fires, query, faults, context)
        else:
            injected = app.state.bot.error_fires(query, faults, context)
        if injected:
            error = {
                "message": f"{model_name(build)} is overloaded (injected fault)",
                "type": "server_error",
                "code": "service_unavailable",
            }
            return JSONResponse(status_code=503, content={"error": error})
        # Retrieval can embed a query it has not seen (milliseconds of CPU in torch, which releases the
        # GIL): off the event loop, so one new query cannot stall every other request of the sandbox.
        reply = await asyncio.to_thread(app.state.bot.reply, query, faults, context)
        text, finish = reply.text, "stop"
        if body.max_tokens is not None and _count_tokens(text) > body.max_tokens:
            text, finish = " ".join(text.split()[: body.max_tokens]), "length"
        prompt_tokens = sum(_count_tokens(m.content or "") for m in body.messages)
        completion_tokens = _count_tokens(text)
        # a ready JSONResponse skips FastAPI's generic re-encoding of the dict (same bytes on the wire)
        return JSONResponse({
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
        })

    return app
