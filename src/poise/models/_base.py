"""The one interface every chat-model backend implements.

``ChatModel.generate`` is the public, final entry point: it validates the request, serves it
from the cache when it can, bounds concurrency, retries transient failures with exponential
backoff and records usage. A backend implements only ``_generate`` (one raw call) and
``_is_retryable`` (which of its own errors are transient).
"""

from __future__ import annotations

import hashlib
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, final

from tenacity import RetryCallState

from .._errors import EmptyResponseError, ModelError
from ._cache import RequestCache, cache_key
from ._redact import redact_secrets
from ._retry import CallClock, RetryPolicy
from ._types import ChatMessage, ChatResponse, GenerateConfig, TokenLogprob


@dataclass
class UsageTotals:
    """What a model instance has spent so far (cache hits cost nothing)."""

    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0


@dataclass(frozen=True)
class StopRule:
    """Stop decoding once ``decided(answer so far)`` is true (checked at each line end).

    ``key`` names the rule: it is part of the request's cache key, so an answer stopped early
    is never served for a full one. A backend that cannot stream answers in full and ignores
    the rule; one that stops returns the answer so far with finish_reason ``decided``.
    """

    key: str
    decided: Callable[[str], bool]


#: The finish_reason of an answer that a :class:`StopRule` cut short: the text is a prefix.
EARLY_STOP = "decided"


class ChatModel(ABC):
    """A chat model named by a spec string (``local``, ``llamacpp:PATH``, ``openai:MODEL``)."""

    #: How many calls may run at once against this backend.
    max_concurrency: int = 1

    def __init__(
        self,
        spec: str,
        *,
        cache: RequestCache | None = None,
        retry: RetryPolicy | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        self.spec = spec
        self.cache = cache
        self.retry = retry or RetryPolicy()
        if max_concurrency is not None:
            if max_concurrency < 1:
                raise ValueError("max_concurrency must be at least 1")
            self.max_concurrency = max_concurrency
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._usage_lock = threading.Lock()
        self._calls = threading.local()  # the running call's clock, per thread
        self.usage = UsageTotals()

    # -- what a backend provides ---------------------------------------------------------
    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What identifies this model's outputs (file hash or endpoint + model); no secrets."""

    @abstractmethod
    def _generate(self, messages: list[ChatMessage], config: GenerateConfig) -> ChatResponse:
        """Make one raw call. Raise the backend's own errors; ``_is_retryable`` sorts them."""

    def _is_retryable(self, exc: BaseException) -> bool:
        """Whether ``exc`` is transient (timeout, 429, 5xx). Default: nothing is."""
        return False

    def _retry_after(self, exc: BaseException) -> float | None:
        """Seconds the server asked to wait before retrying ``exc`` (Retry-After); None if it did not."""
        return None

    def _attempt_timeout(self) -> float:
        """Seconds the running attempt may take: the policy's timeout, within the call's deadline."""
        clock: CallClock | None = getattr(self._calls, "clock", None)
        return clock.attempt_timeout() if clock is not None else self.retry.timeout_s

    def _describe_failure(self, exc: BaseException) -> ModelError:
        """Turn a backend error that was not retried (or ran out of retries) into a ModelError."""
        return ModelError(f"model {self.spec} failed: {exc}")

    def close(self) -> None:  # noqa: B027 - a no-op by default: a backend that holds something overrides it
        """Release what the backend holds (a loaded model, an HTTP client)."""

    def text_logprobs(self, text: str) -> tuple[TokenLogprob, ...]:
        """The log-probability of each token of ``text`` given the tokens before it (the first
        token given the start of text, where the model has one). The tokens' texts concatenate
        to ``text``. Only backends that see the prompt's logits can do this."""
        raise ModelError(f"model {self.spec} cannot score the tokens of a text",
                         "use a llama.cpp model (local or llamacpp:PATH) for perplexity scoring")

    @contextmanager
    def stopping_early(self, rule: StopRule | None) -> Iterator[None]:
        """Calls made in this thread inside the block may stop once ``rule`` is decided."""
        previous = getattr(self._calls, "stop_rule", None)
        self._calls.stop_rule = rule
        try:
            yield
        finally:
            self._calls.stop_rule = previous

    def _stop_rule(self) -> StopRule | None:
        """The rule of the running call (see :meth:`stopping_early`), if any."""
        rule: StopRule | None = getattr(self._calls, "stop_rule", None)
        return rule

    # -- the public entry point ----------------------------------------------------------
    @final
    def generate(
        self,
        messages: Sequence[ChatMessage | dict[str, str]],
        config: GenerateConfig | None = None,
    ) -> ChatResponse:
        """Answer one chat request; from the cache when the identical request was seen."""
        msgs = [m if isinstance(m, ChatMessage) else ChatMessage.model_validate(m) for m in messages]
        if not msgs:
            raise ValueError("a chat request needs at least one message")
        config = config or GenerateConfig()
        key = cache_key(self.identity(), msgs, config)
        rule = self._stop_rule()
        if rule is not None:  # an answer stopped early is a prefix: kept apart from full ones
            key = hashlib.sha256(f"{key}/stop={rule.key}".encode()).hexdigest()
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                with self._usage_lock:
                    self.usage.cache_hits += 1
                return hit

        with self._slots:
            start = time.perf_counter()
            response = self._call_with_retries(msgs, config)
            elapsed = time.perf_counter() - start
        if not response.text.strip():
            raise _empty(self.spec, response)
        response = response.model_copy(update={"latency_s": elapsed, "cache_key": key})
        with self._usage_lock:
            self.usage.calls += 1
            self.usage.prompt_tokens += response.usage.prompt_tokens
            self.usage.completion_tokens += response.usage.completion_tokens
            self.usage.latency_s += elapsed
        if self.cache is not None:
            self.cache.put(key, response)
        return response

    @final
    def generate_many(
        self,
        requests: Iterable[tuple[Sequence[ChatMessage | dict[str, str]], GenerateConfig | None]],
        *,
        concurrency: int | None = None,
    ) -> Iterator[ChatResponse | BaseException]:
        """Answer many requests, at most ``concurrency`` at once; yields in request order.

        A request that fails yields its exception instead of a response, so one failure
        does not lose the others.
        """
        workers = min(concurrency or self.max_concurrency, self.max_concurrency)

        def one(
            item: tuple[Sequence[ChatMessage | dict[str, str]], GenerateConfig | None],
        ) -> ChatResponse | Exception:
            try:
                return self.generate(item[0], item[1])
            except Exception as exc:  # noqa: BLE001 - handed back to the caller as a value
                return exc

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            yield from pool.map(one, requests)

    def _call_with_retries(self, msgs: list[ChatMessage], config: GenerateConfig) -> ChatResponse:
        def count_retry(state: RetryCallState) -> None:
            with self._usage_lock:
                self.usage.retries += 1

        clock = CallClock(self.retry, self._retry_after)
        self._calls.clock = clock
        try:
            return clock.retrying(self._is_retryable, count_retry)(self._generate, msgs, config)
        except ModelError as exc:
            raise _redacted(exc) from None
        except Exception as exc:  # noqa: BLE001 - classified by the backend below
            error = self._describe_failure(exc)
            if clock.gave_up() and "deadline" not in error.message:
                error.message = f"{error.message.rstrip('.')} ({clock.gave_up()})"
            raise _redacted(error) from None  # the backend's exception may quote a secret
        finally:
            self._calls.clock = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

    def __enter__(self) -> ChatModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()



def _empty(spec: str, response: ChatResponse) -> EmptyResponseError:
    if response.finish_reason == "length":
        return EmptyResponseError(f"model {spec} used up max_tokens before writing any text",
                                  "raise max_tokens (--max-tokens)")
    why = f" (finish_reason {response.finish_reason})" if response.finish_reason else ""
    return EmptyResponseError(f"model {spec} returned an empty response{why}",
                              "change the prompt template, or try another model")


def _redacted(error: ModelError) -> ModelError:
    """``error`` with every secret taken out of its message and hint."""
    error.message = redact_secrets(error.message)
    error.hint = redact_secrets(error.hint) if error.hint else error.hint
    error.args = (error.message,)
    return error
