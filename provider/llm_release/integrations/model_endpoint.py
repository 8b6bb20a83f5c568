"""Client for any OpenAI-compatible chat-completions endpoint (the sandbox model servers, vLLM, OpenAI...).

The suites only know :class:`~llm_release.suites.types.ChatClient`; this is the real implementation. A batch
never raises for a single bad answer: each prompt gets a :class:`Completion` whose ``error`` says what went
wrong, so a gate can count failures instead of crashing (and a failure never counts as a pass).

Retries: connection errors, timeouts, HTTP 429 and 5xx are retried with exponential backoff (tenacity);
any other 4xx is a caller error and is returned at once. The API key goes only into the ``Authorization``
header; it is scrubbed from every error text and never shown by ``repr``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential

from llm_release.suites.types import Completion

log = logging.getLogger(__name__)

_RETRYABLE_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_BODY_EXCERPT = 300


class _RetryableStatus(Exception):
    """HTTP 429 / 5xx reply; carries what the final Completion reports if retries run out."""

    def __init__(self, status_code: int, body: str, latency_ms: float) -> None:
        super().__init__(f"HTTP {status_code}: {body}")
        self.status_code = status_code
        self.body = body
        self.latency_ms = latency_ms


class BadReply(ValueError):
    """The endpoint answered 2xx but the JSON is not an OpenAI chat completion."""


@dataclass(frozen=True)
class EndpointHealth:
    """Result of :meth:`OpenAIChatEndpoint.health`: ``ok`` only when the server answered 2xx."""

    ok: bool
    url: str
    status_code: int | None
    latency_ms: float
    detail: str


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, (_RetryableStatus, *_RETRYABLE_TRANSPORT))


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


class OpenAIChatEndpoint:
    """Batch chat-completions client with bounded concurrency and retries.

    ``base_url`` is the server root (``http://127.0.0.1:8701``); a trailing ``/v1`` is accepted too.
    ``transport`` is for tests (``httpx.MockTransport``); ``backoff_s`` is the first retry wait.
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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
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
        self._transport = transport

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return (
            f"OpenAIChatEndpoint(base_url={self.base_url!r}, model={self.model!r}, api_key={key}, "
            f"max_concurrency={self.max_concurrency}, max_retries={self.max_retries})"
        )

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/v1/chat/completions"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _scrub(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s), headers=self._headers(), transport=self._transport
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

    async def _attempt(
        self, client: httpx.AsyncClient, sem: asyncio.Semaphore, prompt: str, started: list[float]
    ) -> Completion:
        async with sem:
            start = time.perf_counter()
            started[0] = start  # lets the caller report the last attempt's time on transport errors
            resp = await client.post(self.chat_url, json=self._body(prompt))
            latency_ms = (time.perf_counter() - start) * 1000.0
        if resp.status_code == 429 or resp.status_code >= 500:
            raise _RetryableStatus(resp.status_code, self._scrub(resp.text[:_BODY_EXCERPT]), latency_ms)
        if resp.status_code >= 400:
            return Completion(
                prompt=prompt,
                text=None,
                latency_ms=latency_ms,
                status_code=resp.status_code,
                error=f"HTTP {resp.status_code}: {self._scrub(resp.text[:_BODY_EXCERPT])}",
            )
        try:
            text = extract_content(resp.json())
        except ValueError as exc:  # json.JSONDecodeError and BadReply are both ValueError
            reason = str(exc) if isinstance(exc, BadReply) else "reply is not valid JSON"
            return Completion(
                prompt=prompt,
                text=None,
                latency_ms=latency_ms,
                status_code=resp.status_code,
                error=f"bad reply from {self.chat_url}: {self._scrub(reason)}",
            )
        return Completion(prompt=prompt, text=text, latency_ms=latency_ms, status_code=resp.status_code)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "retrying %s after attempt %d: %s",
            self.chat_url,
            state.attempt_number,
            self._scrub(str(exc) or type(exc).__name__),
        )

    async def _one(self, client: httpx.AsyncClient, sem: asyncio.Semaphore, prompt: str) -> Completion:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait_exponential(multiplier=self.backoff_s, max=self.max_backoff_s),
            retry=retry_if_exception(_is_retryable),
            before_sleep=self._log_retry,
            reraise=True,
        )
        started = [time.perf_counter()]
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(client, sem, prompt, started)
        except _RetryableStatus as exc:
            return Completion(
                prompt=prompt,
                text=None,
                latency_ms=exc.latency_ms,
                status_code=exc.status_code,
                error=f"HTTP {exc.status_code}: {exc.body}",
            )
        except httpx.HTTPError as exc:
            kind = "timeout" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
            return Completion(
                prompt=prompt,
                text=None,
                latency_ms=(time.perf_counter() - started[0]) * 1000.0,
                error=self._scrub(f"{kind} calling {self.chat_url}: {exc}"),
            )
        raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover

    async def acomplete_batch(self, prompts: Sequence[str]) -> list[Completion]:
        """Answer every prompt (order preserved), at most ``max_concurrency`` requests in flight."""
        if isinstance(prompts, str):
            raise TypeError("prompts must be a sequence of strings, not a single string")
        for i, p in enumerate(prompts):
            if not isinstance(p, str):
                raise TypeError(f"prompts[{i}] is {type(p).__name__}, expected str")
        if not prompts:
            return []
        sem = asyncio.Semaphore(self.max_concurrency)
        async with self._client() as client:
            return list(await asyncio.gather(*(self._one(client, sem, p) for p in prompts)))

    def complete_batch(self, prompts: Sequence[str]) -> list[Completion]:
        """Synchronous wrapper; safe from a worker thread and from code already inside an event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.acomplete_batch(prompts))
        # A loop is running in this thread (e.g. a notebook or an async caller): use a fresh thread.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self.acomplete_batch(prompts)).result()

    def health(self) -> EndpointHealth:
        """GET ``/v1/models`` (OpenAI protocol), falling back to ``/healthz`` when that route is absent."""
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
                    resp = client.get(url)
                except httpx.HTTPError as exc:
                    return EndpointHealth(
                        False,
                        url,
                        None,
                        (time.perf_counter() - start) * 1000.0,
                        self._scrub(f"{type(exc).__name__}: {exc}"),
                    )
                latency_ms = (time.perf_counter() - start) * 1000.0
                last = EndpointHealth(
                    resp.is_success, url, resp.status_code, latency_ms, self._scrub(resp.text[:_BODY_EXCERPT])
                )
                if resp.status_code != 404:
                    return last
        assert last is not None
        return last
