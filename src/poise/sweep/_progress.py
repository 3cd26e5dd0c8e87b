"""What a running sweep has done so far, from its executor's events: jobs by state, queries,
tokens and each endpoint's throughput. The command line draws it (``poise sweep``'s live
view); anything else may read :meth:`Tally.snapshot`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._executors import Event
from ._jobs import Prepared

#: The job states a live view counts, in the order it shows them.
LIVE_STATES = ("done", "running", "failed", "pending", "skipped")


class Tally:
    """Counts a sweep's events. ``tokens`` and ``endpoints`` are read when a snapshot is taken
    (the executor's ``live_tokens`` and the endpoints' stats)."""

    def __init__(self, prepared: Sequence[Prepared], *, tokens: Callable[[], int] = lambda: 0,
                 endpoints: Callable[[], dict[str, list[dict[str, Any]]]] = dict) -> None:
        self.labels = [p.job.label for p in prepared]
        self.states = ["skipped" if p.state == "finished" else "pending" for p in prepared]
        self.queries = [0] * len(prepared)
        self.retries = 0
        self._tokens, self._endpoints = tokens, endpoints
        self._begun = time.monotonic()
        self._lock = threading.Lock()

    def on_event(self, event: Event, job: Prepared) -> None:
        """An executor's ``on_event``: what one job just did."""
        with self._lock:
            i = event.index
            if event.kind == "started":
                self.states[i] = "running"
            elif event.kind == "query":
                self.queries[i] += 1
            elif event.kind in ("done", "failed"):
                self.states[i] = event.kind
            elif event.kind == "retry":
                self.states[i] = "pending"
                self.retries += 1

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {s: self.states.count(s) for s in LIVE_STATES}

    def snapshot(self) -> dict[str, Any]:
        """Jobs by state, the running jobs, queries, tokens, elapsed seconds, queries per second
        and each endpoint (its calls, calls per second, health)."""
        elapsed = max(1e-9, time.monotonic() - self._begun)
        counts = self.counts()
        with self._lock:
            running = [(label, q) for label, q, s in zip(self.labels, self.queries, self.states, strict=True)
                       if s == "running"]
            queries = sum(self.queries)
        endpoints = [{"model": name, **e} for name, eps in self._endpoints().items() for e in eps]
        return {"jobs": len(self.labels), "states": counts, "retries": self.retries, "running": running,
                "queries": queries, "tokens": self._tokens(), "seconds": elapsed,
                "queries_per_s": queries / elapsed, "endpoints": endpoints}
