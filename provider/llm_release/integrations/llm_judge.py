"""The rubric LLM judge over any OpenAI-compatible chat-completions endpoint (issue 6, deliverable 3).

Each item (query, response, grounding evidence) is judged ``repeats`` times at temperature 0 with the
rubric of ``integrations.judge_rubric``; ``suites.judging.aggregate_repeats`` folds the repeats into an
:class:`~llm_release.suites.judging.LLMJudgement` with their agreement. Per repeat:

* the reply must be the rubric's strict JSON; on a parse failure the judge is asked ONCE more, with its
  reply and the parse error; a second failure makes the repeat unparsable (it counts against the
  agreement and is never a pass);
* a parsed verdict is stored in the :class:`~llm_release.integrations.judge_cache.JudgeCache` (when one
  is given) under sha256(model, rubric version, query, response, evidence, repeat index); a cached
  repeat sends nothing.

Like ``integrations.model_endpoint`` this client is a measuring instrument and counts what it did
(DESIGN: "Measurement clients count every attempt"): connection errors, timeouts, HTTP 429 and 5xx are
retried with exponential back-off (tenacity) within a whole-call budget of ``timeout_s``, honouring
``Retry-After`` up to ``max_retry_after_s``; every attempt, failed or not, is counted per item and in
:attr:`LLMJudge.usage`. Reply bodies are read up to ``max_reply_bytes``. Tokens are summed from each
reply's ``usage`` (prompt_tokens, completion_tokens) and priced per 1,000 tokens.

Concurrency is bounded by ``max_concurrency`` requests in flight (an asyncio semaphore over one pooled
``httpx.AsyncClient``); a repeat holds its slot through its retries and its re-ask.

The API key goes only into the ``Authorization`` header, is scrubbed from every error text and log line,
and is never shown by ``repr``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from llm_release.integrations.judge_cache import JudgeCache, cache_key
from llm_release.integrations.judge_rubric import (
    DEFAULT_RUBRIC_VERSION,
    EvidenceEntry,
    RubricParseError,
    build_messages,
    parse_reply,
    reask_messages,
)
from llm_release.integrations.model_endpoint import (
    BadReply,
    _aread_capped,
    _run_sync,
    extract_content,
    parse_retry_after,
)
from llm_release.suites.judging import LLMJudgement, RepeatVerdict, aggregate_repeats

log = logging.getLogger(__name__)

_RETRYABLE_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_EXCERPT = 300
DEFAULT_MAX_REPLY_BYTES = 256 * 1024


@dataclass(frozen=True)
class JudgeItem:
    """One answer to judge. ``evidence`` empty means no knowledge-base entry grounds the query."""

    query: str
    response: str
    evidence: tuple[EvidenceEntry, ...] = ()

    def __post_init__(self) -> None:
        for name in ("query", "response"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"JudgeItem.{name} is {type(getattr(self, name)).__name__}, expected str")
        object.__setattr__(self, "evidence", tuple(self.evidence))
        for i, entry in enumerate(self.evidence):
            if not isinstance(entry, EvidenceEntry):
                raise TypeError(f"JudgeItem.evidence[{i}] is {type(entry).__name__}, expected EvidenceEntry")


@dataclass
class JudgeUsage:
    """Running totals over every call of one :class:`LLMJudge` (what the judge cost, and how it went)."""

    items: int = 0
    repeats: int = 0
    cache_hits: int = 0
    requests: int = 0
    """Logical requests (a re-ask is a request of its own); each may take several attempts."""
    attempts: int = 0
    failed_attempts: int = 0
    reasks: int = 0
    unparsable_repeats: int = 0
    failed_repeats: int = 0
    replies_without_usage: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


@dataclass(frozen=True)
class _Reply:
    content: str | None
    error: str | None
    attempts: int
    failures: tuple[str, ...]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    has_usage: bool = False


@dataclass
class _Repeat:
    verdict: RepeatVerdict | None = None
    error: str | None = None
    cached: bool = False
    attempts: int = 0
    failed_attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    reasked: bool = False
    unparsable: bool = False
    without_usage: int = 0
    failures: list[str] = field(default_factory=list)


class _Retryable(Exception):
    def __init__(self, error: str, retry_after_s: float | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.retry_after_s = retry_after_s


def _usage(payload: dict[str, Any]) -> tuple[int, int, bool]:
    """(prompt_tokens, completion_tokens, present) from a reply's ``usage``; absent or invalid -> zeros."""
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        return 0, 0, False
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (prompt, completion)):
        return 0, 0, False
    return int(prompt), int(completion), True  # type: ignore[arg-type]


class LLMJudge:
    """Rubric judge over an OpenAI-compatible endpoint; see the module docstring.

    ``base_url`` is the server root (a trailing ``/v1`` is accepted). ``timeout_s`` bounds each request,
    retries and back-off included. ``min_agreement`` is the policy's ``judging.llm.min_agreement``.
    ``json_mode`` adds ``response_format: {"type": "json_object"}`` (not every server accepts it).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        rubric_version: str = DEFAULT_RUBRIC_VERSION,
        repeats: int = 3,
        max_concurrency: int = 4,
        timeout_s: float = 60.0,
        cache: JudgeCache | None = None,
        price_per_1k_input: float = 0.0,
        price_per_1k_output: float = 0.0,
        *,
        min_agreement: float = 0.66,
        max_retries: int = 2,
        max_tokens: int = 300,
        json_mode: bool = False,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        max_retry_after_s: float = 10.0,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if not model:
            raise ValueError("model must name the judge model")
        if not rubric_version:
            raise ValueError("rubric_version must not be empty (it is part of the cache key)")
        checks = {
            "repeats": repeats >= 1, "max_concurrency": max_concurrency >= 1, "timeout_s": timeout_s > 0,
            "max_retries": max_retries >= 0, "max_tokens": max_tokens >= 1, "max_reply_bytes": max_reply_bytes >= 1,
            "min_agreement": 0.0 <= min_agreement <= 1.0, "max_retry_after_s": max_retry_after_s >= 0,
            "price_per_1k_input": math.isfinite(price_per_1k_input) and price_per_1k_input >= 0,
            "price_per_1k_output": math.isfinite(price_per_1k_output) and price_per_1k_output >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            given = locals()
            values = {name: given[name] for name in bad}
            raise ValueError(f"invalid LLMJudge settings: {values}")
        root = base_url.rstrip("/")
        self.base_url = root[: -len("/v1")] if root.endswith("/v1") else root
        self.model = model
        self._api_key = api_key
        self.rubric_version = rubric_version
        self.repeats = repeats
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.cache = cache
        self.price_per_1k_input = price_per_1k_input
        self.price_per_1k_output = price_per_1k_output
        self.min_agreement = min_agreement
        self.max_retries = max_retries
        self.max_tokens = max_tokens
        self.json_mode = json_mode
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_retry_after_s = max_retry_after_s
        self.max_reply_bytes = max_reply_bytes
        self._transport = transport
        self.usage = JudgeUsage()
        self._usage_lock = threading.Lock()

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return (f"LLMJudge(base_url={self.base_url!r}, model={self.model!r}, api_key={key}, "
                f"rubric_version={self.rubric_version!r}, repeats={self.repeats}, cache={self.cache!r})")

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/v1/chat/completions"

    def cost_of(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens / 1000.0 * self.price_per_1k_input + completion_tokens / 1000.0 * self.price_per_1k_output

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    # ------------------------------------------------------------------ one request
    async def _attempt(self, client: httpx.AsyncClient, messages: list[dict[str, str]]) -> _Reply:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0.0,
                                "max_tokens": self.max_tokens}
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        url = self.chat_url
        try:
            async with client.stream("POST", url, json=body) as resp:
                status = resp.status_code
                if status == 429 or status >= 500:
                    raw, _ = await _aread_capped(resp, _EXCERPT)
                    retry_after = parse_retry_after(resp.headers.get("retry-after")) if status in (429, 503) else None
                    raise _Retryable(f"HTTP {status}: {self._excerpt(raw)}", retry_after)
                if status >= 400:
                    raw, _ = await _aread_capped(resp, _EXCERPT)
                    return _Reply(None, f"HTTP {status}: {self._excerpt(raw)}", 1, ())
                raw, truncated = await _aread_capped(resp, self.max_reply_bytes)
        except httpx.HTTPError as exc:
            if not isinstance(exc, _RETRYABLE_TRANSPORT):
                return _Reply(None, self._scrub(f"{type(exc).__name__} calling {url}: {exc}"), 1, ())
            kind = "timeout" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
            raise _Retryable(self._scrub(f"{kind} calling {url}: {exc}")) from exc
        if truncated:
            return _Reply(None, f"reply larger than {self.max_reply_bytes} bytes from {url}", 1, ())
        try:
            payload = json.loads(raw)
            content = extract_content(payload)
        except ValueError as exc:
            reason = str(exc) if isinstance(exc, BadReply) else "reply is not valid JSON"
            return _Reply(None, f"bad reply from {url}: {self._scrub(reason)}", 1, ())
        prompt_tokens, completion_tokens, has_usage = _usage(payload)
        return _Reply(content, None, 1, (), prompt_tokens, completion_tokens, has_usage)

    def _excerpt(self, raw: bytes) -> str:
        return self._scrub(raw[:_EXCERPT].decode("utf-8", errors="replace"))

    async def _request(self, client: httpx.AsyncClient, messages: list[dict[str, str]]) -> _Reply:
        """One logical request: retried within ``timeout_s``; every attempt and its failure counted."""
        deadline = time.perf_counter() + self.timeout_s
        failures: list[str] = []
        attempts = 0
        exponential = wait_exponential(multiplier=self.backoff_s, max=self.max_backoff_s)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retryable) and exc.retry_after_s is not None:
                return exc.retry_after_s
            return exponential(state)

        def stop(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = exc.retry_after_s if isinstance(exc, _Retryable) else None
            return (state.attempt_number >= self.max_retries + 1
                    or (retry_after is not None and retry_after > self.max_retry_after_s)
                    or state.upcoming_sleep >= deadline - time.perf_counter())

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("judge request to %s failed (attempt %d), retrying in %.2f s: %s", self.chat_url,
                        state.attempt_number, state.upcoming_sleep, self._scrub(str(exc)))

        reply: _Reply | None = None
        in_flight = False
        try:
            async with asyncio.timeout(self.timeout_s):
                async for attempt in AsyncRetrying(stop=stop, wait=wait, retry=retry_if_exception_type(_Retryable),
                                                   before_sleep=before_sleep, reraise=True):
                    with attempt:
                        attempts += 1
                        in_flight = True
                        try:
                            reply = await self._attempt(client, messages)
                        except _Retryable as exc:
                            in_flight = False
                            failures.append(exc.error)
                            raise
                        in_flight = False  # not in a ``finally``: an attempt cut by the deadline stays in flight
        except _Retryable as exc:
            return _Reply(None, exc.error, attempts, tuple(failures))
        except TimeoutError:
            error = f"timeout after {self.timeout_s:g} s ({attempts} attempts) calling {self.chat_url}"
            if in_flight:  # the attempt cut by the deadline failed too; a cut back-off sent nothing
                failures.append(error)
            return _Reply(None, error, attempts, tuple(failures))
        assert reply is not None
        if reply.error is not None:
            failures.append(reply.error)
        return _Reply(reply.content, reply.error, attempts, tuple(failures), reply.prompt_tokens,
                      reply.completion_tokens, reply.has_usage)

    # ------------------------------------------------------------------ one repeat, one item
    def _count(self, out: _Repeat, reply: _Reply) -> None:
        out.requests += 1
        out.attempts += reply.attempts
        out.failed_attempts += len(reply.failures)
        out.failures += reply.failures
        out.prompt_tokens += reply.prompt_tokens
        out.completion_tokens += reply.completion_tokens
        if reply.content is not None and not reply.has_usage:
            out.without_usage += 1

    async def _repeat(self, client: httpx.AsyncClient, sem: asyncio.Semaphore, item: JudgeItem, index: int
                      ) -> _Repeat:
        key = cache_key(self.model, self.rubric_version, item.query, item.response, item.evidence, index)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return _Repeat(verdict=hit, cached=True)
        out = _Repeat()
        messages = build_messages(item.query, item.response, item.evidence)
        async with sem:
            reply = await self._request(client, messages)
            self._count(out, reply)
            if reply.content is None:
                out.error = f"repeat {index}: {reply.error}"
                return out
            try:
                out.verdict = parse_reply(reply.content)
            except RubricParseError as first:
                out.reasked = True
                again = await self._request(client, reask_messages(messages, reply.content, str(first)))
                self._count(out, again)
                if again.content is None:
                    out.error = f"repeat {index}: unparsable ({first}); the re-ask failed: {again.error}"
                    return out
                try:
                    out.verdict = parse_reply(again.content)
                except RubricParseError as second:
                    out.unparsable = True
                    out.error = f"repeat {index}: unparsable after the re-ask: {second}"
                    return out
        if self.cache is not None:
            self.cache.put(key, out.verdict)
        return out

    async def _item(self, client: httpx.AsyncClient, sem: asyncio.Semaphore, item: JudgeItem) -> LLMJudgement:
        runs = await asyncio.gather(*(self._repeat(client, sem, item, i) for i in range(self.repeats)))
        prompt_tokens = sum(r.prompt_tokens for r in runs)
        completion_tokens = sum(r.completion_tokens for r in runs)
        cost = self.cost_of(prompt_tokens, completion_tokens)
        with self._usage_lock:
            u = self.usage
            u.items += 1
            u.repeats += len(runs)
            u.cache_hits += sum(r.cached for r in runs)
            u.requests += sum(r.requests for r in runs)
            u.attempts += sum(r.attempts for r in runs)
            u.failed_attempts += sum(r.failed_attempts for r in runs)
            u.reasks += sum(r.reasked for r in runs)
            u.unparsable_repeats += sum(r.unparsable for r in runs)
            u.failed_repeats += sum(r.verdict is None for r in runs)
            u.replies_without_usage += sum(r.without_usage for r in runs)
            u.prompt_tokens += prompt_tokens
            u.completion_tokens += completion_tokens
            u.cost += cost
        return aggregate_repeats(
            [r.verdict for r in runs], self.min_agreement,
            errors=[r.error for r in runs if r.error is not None],
            cached=all(r.cached for r in runs), prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            attempts=sum(r.attempts for r in runs), cost=cost,
        )

    # ------------------------------------------------------------------ public API
    async def ajudge_batch(self, items: Sequence[JudgeItem]) -> list[LLMJudgement]:
        """Judge every item (order kept), at most ``max_concurrency`` requests in flight. Never raises
        for a failed request: the item's verdict says "inconclusive" and ``errors`` says why."""
        if isinstance(items, JudgeItem | str):
            raise TypeError("items must be a sequence of JudgeItem")
        for i, item in enumerate(items):
            if not isinstance(item, JudgeItem):
                raise TypeError(f"items[{i}] is {type(item).__name__}, expected JudgeItem")
        if not items:
            return []
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        sem = asyncio.Semaphore(self.max_concurrency)
        limits = httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency)
        async with httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_s), headers=headers, limits=limits,
                                     transport=self._transport) as client:
            return list(await asyncio.gather(*(self._item(client, sem, item) for item in items)))

    def judge_batch(self, items: Sequence[JudgeItem]) -> list[LLMJudgement]:
        """Synchronous :meth:`ajudge_batch`; safe from a worker thread and from inside an event loop."""
        return _run_sync(lambda: self.ajudge_batch(items))

    def judge(self, query: str, response: str, evidence: Sequence[EvidenceEntry] = ()) -> LLMJudgement:
        """Judge one answer (see :meth:`judge_batch` for many)."""
        return self.judge_batch([JudgeItem(query, response, tuple(evidence))])[0]
