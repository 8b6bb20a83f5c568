"""Client for any OpenAI-compatible chat-completions endpoint (the sandbox model servers, vLLM, OpenAI...).

The suites only know :class:`~llm_release.suites.types.ChatClient`; this is the real implementation. A batch
never raises for a single bad answer: each prompt gets a :class:`Completion` whose ``error`` says what went
wrong, so a gate can count failures instead of crashing (and a failure never counts as a pass).

This client is also a measuring instrument, so it reports what it did, not only how it ended
(DESIGN: "Measurement clients count every attempt"):

* Retries: connection errors, timeouts, HTTP 429 and 5xx are retried with exponential back-off
  (tenacity); any other 4xx, a malformed reply and an oversized reply are returned at once. Every attempt
  is counted: ``Completion.attempts`` and ``Completion.failed_attempts`` (the error of each failed
  attempt, retried or final), so a load test's error rate sees the failures that a retry papered over.
* ``Completion.latency_ms`` is the whole call's wall time, from the first send to the final outcome,
  including failed attempts and back-off waits: what a caller of the model actually waited.
* ``timeout_s`` bounds the whole call (all attempts and back-off), not each read; exceeding it ends the
  call with ``"timeout after N s (k attempts)"``.
* ``Retry-After`` (seconds or an HTTP date) on 429/503 is honoured up to ``max_retry_after_s``; a longer
  one, or one beyond the call's remaining budget, ends the call as an error instead of waiting (so is an
  exponential back-off that would outlast the budget: waiting only to time out measures nothing).
* Reply bodies are read as a stream and abandoned past ``max_reply_bytes`` ("reply larger than N bytes
  from URL"), so a broken or hostile server cannot exhaust memory; ``health()`` is bounded the same way.

The API key goes only into the ``Authorization`` header; it is scrubbed from every error text and never
shown by ``repr``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC
from typing import Any, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from llm_release.suites.types import ColdStart, Completion

log = logging.getLogger(__name__)

_RETRYABLE_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_BODY_EXCERPT = 300
DEFAULT_MAX_REPLY_BYTES = 1 << 20
DEFAULT_MAX_RETRY_AFTER_S = 10.0
DEFAULT_SCALE_UP_PATH = "/admin/scale-up"
COLD_START_PROMPT = "How do I reset my password?"

T = TypeVar("T")


class BadReply(ValueError):
    """The endpoint answered 2xx but the JSON is not an OpenAI chat completion."""


class ReplyTooLarge(ValueError):
    """The reply body exceeded ``max_reply_bytes``; reading stopped at the limit."""


class _AttemptFailed(Exception):
    """One attempt failed in a way worth retrying (HTTP 429/5xx, transport error, per-read timeout)."""

    def __init__(self, error: str, status_code: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.status_code = status_code
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class _Final:
    """An attempt that ends the call: an answer, or an error that retrying cannot fix (4xx, bad reply)."""

    text: str | None
    status_code: int | None
    error: str | None = None


@dataclass(frozen=True)
class EndpointHealth:
    """Result of :meth:`OpenAIChatEndpoint.health`: ``ok`` only when the server answered 2xx."""

    ok: bool
    url: str
    status_code: int | None
    latency_ms: float
    detail: str


def extract_content(payload: Any) -> str:
    """Return ``choices[0].message.content`` or raise :class:`BadReply` naming the missing/invalid field."""
    if not isinstance(payload, dict):
        raise BadReply(f"reply is {type(payload).__name__}, expected a JSON object")
    choices = payload.get("choices")
    if choices is None:
        raise BadReply("reply has no field 'choices'")
    if not isinstance(choices, list) or not choices:
        raise BadReply("reply field 'choices' is empty or not a list")
    first = choices[0]
    if not isinstance(first, dict) or not isinstance(first.get("message"), dict):
        raise BadReply("reply has no field 'choices[0].message'")
    content = first["message"].get("content")
    if content is None:
        raise BadReply("reply has no field 'choices[0].message.content' (or it is null)")
    if not isinstance(content, str):
        raise BadReply(f"reply field 'choices[0].message.content' is {type(content).__name__}, expected str")
    return content


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP date), None if absent/invalid.

    A date in the past gives 0. An unparseable value is ignored (None) rather than trusted: the client
    then falls back to its own back-off.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _content_length(response: httpx.Response) -> int | None:
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


async def _aread_capped(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    """Read at most ``cap`` bytes of a streamed body: (body, True when more was there and left unread)."""
    length = _content_length(response)
    if length is not None and length > cap:
        return b"", True
    chunks = bytearray()
    async for chunk in response.aiter_bytes():
        chunks.extend(chunk)
        if len(chunks) > cap:
            return bytes(chunks[:cap]), True
    return bytes(chunks), False


def _read_capped(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    """Synchronous twin of :func:`_aread_capped` (for ``health()``)."""
    length = _content_length(response)
    if length is not None and length > cap:
        return b"", True
    chunks = bytearray()
    for chunk in response.iter_bytes():
        chunks.extend(chunk)
        if len(chunks) > cap:
            return bytes(chunks[:cap]), True
    return bytes(chunks), False


def _run_sync(make_coroutine: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine from sync code; on a fresh thread when this thread already runs an event loop."""

    async def runner() -> T:
        return await make_coroutine()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(runner())
    # A loop is running in this thread (e.g. a notebook or an async caller): use a fresh thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, runner()).result()


class EndpointSession:
    """Many single calls on the current event loop, over pooled connections (:meth:`OpenAIChatEndpoint.session`).

    A load generator issues thousands of single calls: a client per call would measure TCP and TLS
    set-up, and httpx clients cannot be shared across event loops, hence one session per run. The
    connections are spread over small httpx clients ("shards") of ``SHARD_CONNECTIONS`` each, opened
    as the number of calls in flight grows: httpcore's pool does work proportional to the square of
    its connection count on every request, which at a few hundred connections made the generator, not
    the server, the bottleneck of a load test (profiled: per-request client CPU rose from 2 to 6 ms).
    """

    SHARD_CONNECTIONS = 16

    def __init__(self, endpoint: OpenAIChatEndpoint, max_connections: int) -> None:
        self._endpoint = endpoint
        self._max_shards = max(1, math.ceil(max_connections / self.SHARD_CONNECTIONS))
        self._shards: list[httpx.AsyncClient] = []
        self._in_flight: list[int] = []

    def _open_shard(self) -> int:
        self._shards.append(self._endpoint._client(self.SHARD_CONNECTIONS))
        self._in_flight.append(0)
        return len(self._shards) - 1

    def _pick_shard(self) -> int:
        if not self._shards:
            return self._open_shard()
        index = min(range(len(self._shards)), key=self._in_flight.__getitem__)
        if self._in_flight[index] >= self.SHARD_CONNECTIONS and len(self._shards) < self._max_shards:
            index = self._open_shard()
        return index

    async def complete(self, prompt: str) -> Completion:
        """One call (with retries, every attempt counted); never raises for a failed call."""
        index = self._pick_shard()
        counts = self._in_flight  # aclose() may swap the list while a cancelled call unwinds
        counts[index] += 1
        try:
            return await self._endpoint._call(self._shards[index], prompt)
        finally:
            counts[index] -= 1

    async def aclose(self) -> None:
        """Close every shard's connections."""
        shards, self._shards, self._in_flight = self._shards, [], []
        for client in shards:
            await client.aclose()


class OpenAIChatEndpoint:
    """Batch chat-completions client with bounded concurrency, honest retries and bounded replies.

    ``base_url`` is the server root (``http://127.0.0.1:8701``); a trailing ``/v1`` is accepted too.
    ``timeout_s`` bounds each whole call, retries and back-off included. ``transport`` is for tests
    (``httpx.MockTransport``); ``backoff_s`` is the first retry wait. ``scale_up_path`` is the route
    (relative to ``base_url``, or an absolute URL) that :meth:`measure_cold_start` POSTs to for a fresh,
    cold replica; None when the deployment has no such hook (cold start then stays unmeasured).
    """

    def __init__(
        self,
        base_url: str,
        model: str = "default",
        api_key: str | None = None,
        timeout_s: float = 30.0,
        max_concurrency: int = 8,
        max_retries: int = 2,
        system_prompt: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 512,
        *,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        scale_up_path: str | None = DEFAULT_SCALE_UP_PATH,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if not max_retry_after_s >= 0:
            raise ValueError(f"max_retry_after_s must be >= 0, got {max_retry_after_s}")
        if max_reply_bytes < 1:
            raise ValueError(f"max_reply_bytes must be >= 1, got {max_reply_bytes}")
        root = base_url.rstrip("/")
        if root.endswith("/v1"):
            root = root[: -len("/v1")]
        self.base_url = root
        self.model = model
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.system_prompt = system_prompt
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_retry_after_s = max_retry_after_s
        self.max_reply_bytes = max_reply_bytes
        self.scale_up_path = scale_up_path
        self._transport = transport
        self._ssl_context: Any = None

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return (
            f"OpenAIChatEndpoint(base_url={self.base_url!r}, model={self.model!r}, api_key={key}, "
            f"max_concurrency={self.max_concurrency}, max_retries={self.max_retries})"
        )

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/v1/chat/completions"

    @property
    def scale_up_url(self) -> str | None:
        """Absolute URL of the scale-up hook, or None when there is none."""
        if not self.scale_up_path:
            return None
        if self.scale_up_path.startswith(("http://", "https://")):
            return self.scale_up_path
        return f"{self.base_url}/{self.scale_up_path.lstrip('/')}"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _scrub(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text

    def _ssl(self) -> Any:
        """One TLS context per endpoint: httpx builds a new one per client otherwise (~40 ms of CPU each)."""
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    def _client(self, max_connections: int | None = None) -> httpx.AsyncClient:
        # Per-operation httpx timeouts are only a safety net: the whole-call budget is enforced by
        # asyncio.timeout in _call, and no single read can outlast it.
        connections = max_connections or self.max_concurrency
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s), headers=self._headers(), transport=self._transport,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            verify=self._ssl(),
        )

    def _body(self, prompt: str) -> dict[str, Any]:
        messages = []
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": prompt})
        return {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def _too_large(self, url: str) -> str:
        return f"reply larger than {self.max_reply_bytes} bytes from {url}"

    def _excerpt(self, body: bytes) -> str:
        return self._scrub(body[:_BODY_EXCERPT].decode("utf-8", errors="replace"))

    # ------------------------------------------------------------------ one call
    async def _attempt(self, client: httpx.AsyncClient, prompt: str) -> _Final:
        """Send once. Returns a final outcome, or raises :class:`_AttemptFailed` when a retry may help."""
        url = self.chat_url
        try:
            async with client.stream("POST", url, json=self._body(prompt)) as resp:
                status = resp.status_code
                if status == 429 or status >= 500:
                    body, _ = await _aread_capped(resp, _BODY_EXCERPT)
                    retry_after = (
                        parse_retry_after(resp.headers.get("retry-after")) if status in (429, 503) else None
                    )
                    raise _AttemptFailed(f"HTTP {status}: {self._excerpt(body)}", status, retry_after)
                if status >= 400:
                    body, _ = await _aread_capped(resp, _BODY_EXCERPT)
                    return _Final(None, status, f"HTTP {status}: {self._excerpt(body)}")
                body, truncated = await _aread_capped(resp, self.max_reply_bytes)
        except httpx.HTTPError as exc:
            if not isinstance(exc, _RETRYABLE_TRANSPORT):
                return _Final(None, None, self._scrub(f"{type(exc).__name__} calling {url}: {exc}"))
            kind = "timeout" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
            raise _AttemptFailed(self._scrub(f"{kind} calling {url}: {exc}")) from exc
        if truncated:
            return _Final(None, status, self._too_large(url))
        try:
            text = extract_content(json.loads(body))
        except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError and BadReply are ValueErrors
            reason = str(exc) if isinstance(exc, BadReply) else "reply is not valid JSON"
            return _Final(None, status, f"bad reply from {url}: {self._scrub(reason)}")
        return _Final(text, status)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "retrying %s after attempt %d (waiting %.2f s): %s",
            self.chat_url,
            state.attempt_number,
            state.upcoming_sleep,
            self._scrub(str(exc) or type(exc).__name__),
        )

    async def _call(self, client: httpx.AsyncClient, prompt: str) -> Completion:
        """One prompt: retries within the ``timeout_s`` budget, every attempt counted (module docstring)."""
        start = time.perf_counter()
        deadline = start + self.timeout_s
        failures: list[str] = []
        attempts = 0
        in_flight = False
        stop_reason: list[str] = []
        exponential = wait_exponential(multiplier=self.backoff_s, max=self.max_backoff_s)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _AttemptFailed) and exc.retry_after_s is not None:
                return exc.retry_after_s  # the server said when to come back
            return exponential(state)

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= self.max_retries + 1:
                return True
            exc = state.outcome.exception() if state.outcome else None
            remaining = deadline - time.perf_counter()
            retry_after = exc.retry_after_s if isinstance(exc, _AttemptFailed) else None
            if retry_after is not None and retry_after > self.max_retry_after_s:
                stop_reason.append(f"Retry-After {retry_after:g} s exceeds the cap of {self.max_retry_after_s:g} s")
                return True
            if state.upcoming_sleep >= remaining:
                what = "Retry-After" if retry_after is not None else "back-off"
                stop_reason.append(
                    f"{what} {state.upcoming_sleep:g} s exceeds the remaining {max(remaining, 0.0):.3g} s "
                    f"of the {self.timeout_s:g} s call budget"
                )
                return True
            return False

        retrying = AsyncRetrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception_type(_AttemptFailed),
            before_sleep=self._log_retry,
            reraise=True,
        )
        final: _Final
        try:
            async with asyncio.timeout(self.timeout_s):
                async for attempt in retrying:
                    with attempt:
                        attempts += 1
                        in_flight = True
                        try:
                            final = await self._attempt(client, prompt)
                        except _AttemptFailed as exc:
                            in_flight = False
                            failures.append(exc.error)
                            raise
                        in_flight = False  # not in a ``finally``: a cancelled attempt stays "in flight"
        except _AttemptFailed as exc:  # retries exhausted, or stopped by Retry-After / the budget
            error = exc.error if not stop_reason else f"{exc.error} (not retried: {stop_reason[-1]})"
            final = _Final(None, exc.status_code, error)
        except TimeoutError:
            error = f"timeout after {self.timeout_s:g} s ({attempts} attempts) calling {self.chat_url}"
            if in_flight:  # the attempt cut by the deadline failed too; a cut back-off sent nothing
                failures.append(error)
            final = _Final(None, None, error)
        else:
            if final.error is not None:
                failures.append(final.error)
        return Completion(
            prompt=prompt,
            text=final.text,
            latency_ms=(time.perf_counter() - start) * 1000.0,
            error=final.error,
            status_code=final.status_code,
            attempts=attempts,
            failed_attempts=tuple(failures),
        )

    # ------------------------------------------------------------------ public API
    @asynccontextmanager
    async def session(self, max_connections: int | None = None) -> AsyncIterator[EndpointSession]:
        """Pooled connections for many single calls on this event loop (at most ``max_connections``).

        Calls beyond ``max_connections`` wait for a free connection, within their ``timeout_s`` budget.
        """
        opened = EndpointSession(self, max_connections or self.max_concurrency)
        try:
            yield opened
        finally:
            await opened.aclose()

    async def acomplete_one(self, prompt: str) -> Completion:
        """One call on a client of its own; for many calls use :meth:`session`."""
        if not isinstance(prompt, str):
            raise TypeError(f"prompt is {type(prompt).__name__}, expected str")
        async with self.session() as session:
            return await session.complete(prompt)

    async def acomplete_batch(self, prompts: Sequence[str]) -> list[Completion]:
        """Answer every prompt (order preserved), at most ``max_concurrency`` calls in flight.

        A call holds its concurrency slot through its retries and back-off, and its ``timeout_s`` budget
        starts when it gets the slot: waiting behind the rest of the batch is not the endpoint's latency.
        """
        if isinstance(prompts, str):
            raise TypeError("prompts must be a sequence of strings, not a single string")
        for i, p in enumerate(prompts):
            if not isinstance(p, str):
                raise TypeError(f"prompts[{i}] is {type(p).__name__}, expected str")
        if not prompts:
            return []
        sem = asyncio.Semaphore(self.max_concurrency)

        async def bounded(client: httpx.AsyncClient, prompt: str) -> Completion:
            async with sem:
                return await self._call(client, prompt)

        async with self._client() as client:
            return list(await asyncio.gather(*(bounded(client, p) for p in prompts)))

    def complete_batch(self, prompts: Sequence[str]) -> list[Completion]:
        """Synchronous wrapper; safe from a worker thread and from code already inside an event loop."""
        return _run_sync(lambda: self.acomplete_batch(prompts))

    async def ameasure_cold_start(self, prompt: str = COLD_START_PROMPT) -> ColdStart:
        """Ask the deployment for a fresh, cold replica, then time the first request it serves.

        The scale-up hook (``scale_up_path``) must return once the new replica takes traffic; the first
        call after it pays the model load, which is the spec's cold-start latency. Its latency is the
        whole call (retries included). No hook, a failed scale-up or a failed first call leaves
        ``cold_start_ms`` None: unmeasured, never 0.
        """
        url = self.scale_up_url
        if url is None:
            return ColdStart(None, "no scale-up hook configured (scale_up_path=None): cold start unmeasured")
        async with self._client() as client:
            try:
                async with asyncio.timeout(self.timeout_s):
                    async with client.stream("POST", url, json={}) as resp:
                        body, _ = await _aread_capped(resp, _BODY_EXCERPT)
            except (httpx.HTTPError, TimeoutError) as exc:
                detail = self._scrub(f"scale-up request to {url} failed: {type(exc).__name__}: {exc}")
                return ColdStart(None, f"{detail}; cold start unmeasured", url)
            if resp.status_code in (404, 405, 501):
                return ColdStart(
                    None,
                    f"{url} answered HTTP {resp.status_code}: the endpoint has no scale-up hook; "
                    "cold start unmeasured",
                    url,
                )
            if not resp.is_success:
                return ColdStart(
                    None,
                    f"scale-up via {url} failed: HTTP {resp.status_code}: {self._excerpt(body)}; "
                    "cold start unmeasured",
                    url,
                )
            completion = await self._call(client, prompt)
        if not completion.ok:
            return ColdStart(
                None, f"first request after scale-up failed: {completion.error}; cold start unmeasured",
                url, completion,
            )
        return ColdStart(
            completion.latency_ms,
            f"first request after scale-up answered in {completion.latency_ms:.0f} ms "
            f"({completion.attempts} attempt(s))",
            url,
            completion,
        )

    def measure_cold_start(self, prompt: str = COLD_START_PROMPT) -> ColdStart:
        """Synchronous wrapper of :meth:`ameasure_cold_start`."""
        return _run_sync(lambda: self.ameasure_cold_start(prompt))

    def health(self) -> EndpointHealth:
        """GET ``/v1/models`` (OpenAI protocol), falling back to ``/healthz`` when that route is absent.

        The reply is read up to ``max_reply_bytes``; a larger one makes the endpoint unhealthy.
        """
        last: EndpointHealth | None = None
        transport = self._transport
        if transport is not None and not isinstance(transport, httpx.BaseTransport):
            raise TypeError("a custom transport used with health() must also be a sync httpx.BaseTransport")
        with httpx.Client(
            timeout=httpx.Timeout(self.timeout_s), headers=self._headers(), transport=transport
        ) as client:
            for path in ("/v1/models", "/healthz"):
                url = f"{self.base_url}{path}"
                start = time.perf_counter()
                try:
                    with client.stream("GET", url) as resp:
                        body, truncated = _read_capped(resp, self.max_reply_bytes)
                except httpx.HTTPError as exc:
                    return EndpointHealth(
                        False,
                        url,
                        None,
                        (time.perf_counter() - start) * 1000.0,
                        self._scrub(f"{type(exc).__name__}: {exc}"),
                    )
                latency_ms = (time.perf_counter() - start) * 1000.0
                if truncated:
                    return EndpointHealth(False, url, resp.status_code, latency_ms, self._too_large(url))
                last = EndpointHealth(
                    resp.is_success, url, resp.status_code, latency_ms, self._excerpt(body)
                )
                if resp.status_code != 404:
                    return last
        assert last is not None
        return last
