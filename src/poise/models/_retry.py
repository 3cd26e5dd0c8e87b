"""The one retry policy every backend runs under (tenacity).

Each attempt gets at most ``timeout_s``; a call (all its attempts and the waits between
them) never runs past its deadline. Between attempts it waits as long as the server's
``Retry-After`` asks (capped), or else backs off exponentially with jitter. Which errors are
transient, and what a server asked for, each backend says for its own errors.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception

from .._numbers import ascii_float

#: Without an explicit deadline a call may take this many times the per-attempt timeout.
DEADLINE_FACTOR = 3.0
#: The longest timeout or deadline (a day): far longer ones overflow the clocks the HTTP client sets.
MAX_TIMEOUT_S = 86_400.0


@dataclass(frozen=True)
class RetryPolicy:
    """How long one call may take and how it is retried.

    ``timeout_s`` bounds one attempt; ``deadline_s`` bounds the whole call across retries
    (default ``3 x timeout_s``). Waits follow ``Retry-After`` when the server sends one (at
    most ``max_retry_after_s``), else exponential backoff with jitter.
    """

    max_attempts: int = 5
    initial_wait_s: float = 1.0
    max_wait_s: float = 30.0
    timeout_s: float = 60.0
    deadline_s: float | None = None
    max_retry_after_s: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be a whole number of at least 1, not {self.max_attempts!r}")
        for name in ("initial_wait_s", "max_wait_s", "max_retry_after_s"):
            _check_seconds(name, getattr(self, name), allow_zero=True)
        _check_seconds("timeout_s", self.timeout_s, most=MAX_TIMEOUT_S)
        if self.deadline_s is not None:
            _check_seconds("deadline_s", self.deadline_s, most=MAX_TIMEOUT_S)

    @property
    def deadline(self) -> float:
        """Seconds one call may take in all, attempts and waits together."""
        return self.deadline_s if self.deadline_s is not None else DEADLINE_FACTOR * self.timeout_s


def _check_seconds(name: str, value: Any, allow_zero: bool = False, most: float = math.inf) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number of seconds {'>= 0' if allow_zero else '> 0'}, not {value!r}")
    if value > most:
        raise ValueError(f"{name} must be at most {most:g} seconds, not {value!r}")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header value asks for (delta-seconds or an HTTP date);
    None when there is none or it cannot be read."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = ascii_float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class CallClock:
    """One call's attempts: when it started, its deadline and why it stopped."""

    def __init__(self, policy: RetryPolicy, retry_after: Callable[[BaseException], float | None]) -> None:
        self.policy = policy
        self.retry_after = retry_after
        self.start = time.monotonic()
        self.deadline = self.start + policy.deadline
        self.stopped_by_deadline = False
        self.attempts = 0
        self._waits: dict[int, float] = {}
        self._asked: dict[int, float] = {}  # what the server asked for (Retry-After), per attempt

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def attempt_timeout(self) -> float:
        """Seconds the next attempt may take: the policy's timeout, within the deadline."""
        return max(0.001, min(self.policy.timeout_s, self.time_left()))

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def wait(self, state: RetryCallState) -> float:
        """The wait before the next attempt: Retry-After (capped) or exponential backoff."""
        if state.attempt_number not in self._waits:
            exc = state.outcome.exception() if state.outcome is not None else None
            asked = self.retry_after(exc) if exc is not None else None
            if asked is not None:
                self._asked[state.attempt_number] = asked
                self._waits[state.attempt_number] = min(asked, self.policy.max_retry_after_s)
            else:
                self._waits[state.attempt_number] = self._backoff(state.attempt_number)
        return self._waits[state.attempt_number]

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with up to one initial wait of jitter, at most ``max_wait_s``."""
        p = self.policy
        return min(p.max_wait_s, p.initial_wait_s * 2.0 ** (attempt - 1) + random.uniform(0, p.initial_wait_s))

    def stop(self, state: RetryCallState) -> bool:
        self.attempts = state.attempt_number
        if state.attempt_number >= self.policy.max_attempts:
            return True
        if self.wait(state) >= self.time_left():
            self.stopped_by_deadline = True
            return True
        return False

    def retrying(self, is_retryable: Callable[[BaseException], bool],
                 before_sleep: Callable[[RetryCallState], None]) -> Retrying:
        return Retrying(stop=self.stop, wait=self.wait, retry=retry_if_exception(is_retryable),
                        before_sleep=before_sleep, reraise=True)

    def gave_up(self) -> str:
        """Why the call stopped, for its error line (empty when it simply ran out of attempts)."""
        if not self.stopped_by_deadline:
            return ""
        tries = f"gave up after {self.attempts} attempt{'s' if self.attempts != 1 else ''} in {self.elapsed():.1f} s"
        if self.attempts in self._asked:
            return (f"{tries}: waiting {self._waits[self.attempts]:g} s as the server asked (Retry-After) "
                    f"would pass the deadline of {self.policy.deadline:g} s per call")
        return f"{tries}: another would pass the deadline of {self.policy.deadline:g} s per call"
