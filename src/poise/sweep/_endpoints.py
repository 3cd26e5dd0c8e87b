"""Several OpenAI-compatible servers (vLLM or llama.cpp replicas) serving one model.

Every call goes to the healthy endpoint with the fewest calls in flight, within that
endpoint's own concurrency limit; each endpoint retries its own timeouts, 429s and 5xx
(the model's retry policy). A refused connection takes the endpoint out at once and the call
goes to another; so do three failed calls in a row. An endpoint that was taken out is tried
again (one call) after ``revive_after_s``. The endpoints are shared by every job of a sweep,
so their limits hold for the whole sweep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import ModelError, ModelSpecError, ModelUnreachableError
from ..models import ChatModel, OpenAIModel, RetryPolicy, redact_url
from ..models._types import ChatMessage, ChatResponse, GenerateConfig

FAILURES_TO_DOWN = 3  # failed calls in a row (after their retries) that take an endpoint out


class _Replica(OpenAIModel):
    """One endpoint's client: a refused connection is not retried here (another endpoint
    takes the call); timeouts, 429 and 5xx are, as for any OpenAI-compatible model."""

    def _is_retryable(self, exc: BaseException) -> bool:
        o = self._openai
        if isinstance(exc, o.APIConnectionError) and not isinstance(exc, o.APITimeoutError):
            return False
        return super()._is_retryable(exc)


@dataclass
class Endpoint:
    """One server: its client, limit and health, and what it has served."""

    url: str  # redacted: safe to print and store
    client: _Replica
    limit: int  # the client's own max_concurrency: calls beyond it wait
    in_flight: int = 0
    calls: int = 0
    failures: int = 0
    failed_in_a_row: int = 0
    tokens: int = 0
    busy_s: float = 0.0
    down_since: float | None = None
    last_error: str = ""
    _started: float = field(default_factory=time.monotonic)

    @property
    def healthy(self) -> bool:
        return self.down_since is None

    def stats(self) -> dict[str, Any]:
        elapsed = max(1e-9, time.monotonic() - self._started)
        return {"url": self.url, "healthy": self.healthy, "calls": self.calls, "failures": self.failures,
                "in_flight": self.in_flight, "tokens": self.tokens, "calls_per_s": round(self.calls / elapsed, 3),
                "last_error": self.last_error}


class Endpoints:
    """The servers that serve one model name (``openai:MODEL``), shared by all its jobs."""

    def __init__(self, model: str, urls: Sequence[str], *, limit: int = 4, retry: RetryPolicy | None = None,
                 revive_after_s: float = 30.0) -> None:
        if not urls:
            raise ModelSpecError("no endpoint to spread calls over", "pass --base-url URL (repeat for several)")
        if limit < 1:
            raise ModelSpecError(f"an endpoint's concurrency limit must be at least 1, not {limit}")
        self.model = model
        self.revive_after_s = revive_after_s
        self._lock = threading.Lock()
        self.endpoints: list[Endpoint] = []
        for url in dict.fromkeys(urls):
            client = _Replica(f"openai:{model}", model, base_url=url, retry=retry, max_concurrency=limit)
            self.endpoints.append(Endpoint(redact_url(url), client, limit))

    @property
    def capacity(self) -> int:
        return sum(e.limit for e in self.endpoints)

    def identity(self) -> dict[str, Any]:
        """The model's identity: the endpoints are part of it, as ``--base-url`` is for any run."""
        return {"backend": "openai", "base_url": sorted(e.url for e in self.endpoints), "model": self.model}

    def _pick(self, tried: set[int]) -> Endpoint:
        now = time.monotonic()
        with self._lock:
            usable = [e for i, e in enumerate(self.endpoints) if i not in tried and (
                e.healthy or now - (e.down_since or now) >= self.revive_after_s)]
            if not usable:
                down = ", ".join(f"{e.url} ({e.last_error or 'down'})" for e in self.endpoints)
                raise ModelUnreachableError(f"every endpoint of {self.model} is down: {down}",
                                            "check the servers, then run the same sweep again to resume")
            best = min(usable, key=lambda e: (not e.healthy, e.in_flight / e.limit, e.calls))
            if not best.healthy:
                best.down_since = now  # one probe per revive period
            best.in_flight += 1
            return best

    def _settle(self, ep: Endpoint, response: ChatResponse | None, error: ModelError | None, busy: float) -> None:
        with self._lock:
            ep.in_flight -= 1
            ep.busy_s += busy
            if response is not None:
                ep.calls += 1
                ep.tokens += response.usage.prompt_tokens + response.usage.completion_tokens
                ep.failed_in_a_row = 0
                ep.down_since = None
                return
            ep.failures += 1
            ep.failed_in_a_row += 1
            ep.last_error = error.message if error is not None else "failed"
            if isinstance(error, ModelUnreachableError) or ep.failed_in_a_row >= FAILURES_TO_DOWN:
                ep.down_since = time.monotonic()

    def generate(self, messages: list[ChatMessage], config: GenerateConfig) -> ChatResponse:
        """One call on the least busy healthy endpoint; on another when that one is unreachable."""
        tried: set[int] = set()
        while True:
            ep = self._pick(tried)
            tried.add(self.endpoints.index(ep))
            start = time.monotonic()
            try:
                response = ep.client.generate(messages, config)
            except ModelUnreachableError as exc:
                self._settle(ep, None, exc, time.monotonic() - start)
                continue
            except ModelError as exc:
                self._settle(ep, None, exc, time.monotonic() - start)
                raise
            self._settle(ep, response, None, time.monotonic() - start)
            return response

    def stats(self) -> list[dict[str, Any]]:
        with self._lock:
            return [e.stats() for e in self.endpoints]

    def close(self) -> None:
        for e in self.endpoints:
            e.client.close()


class PooledModel(ChatModel):
    """``openai:MODEL`` over several endpoints: one job's model (its own cache and usage),
    on endpoints every job of the sweep shares. Closing it leaves the endpoints open."""

    def __init__(self, spec: str, endpoints: Endpoints, **kwargs: Any) -> None:
        kwargs.setdefault("max_concurrency", endpoints.capacity)
        super().__init__(spec, **kwargs)
        self.endpoints = endpoints

    def identity(self) -> dict[str, Any]:
        return self.endpoints.identity()

    def _generate(self, messages: list[ChatMessage], config: GenerateConfig) -> ChatResponse:
        return self.endpoints.generate(messages, config)
