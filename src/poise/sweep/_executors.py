"""Running a sweep's jobs: their state in the store, and the local executor.

The local executor runs up to ``jobs`` jobs at once, each in a worker thread, all on one
:class:`~poise.store.Store`. The store is safe to share: every statement runs on its one
SQLite connection under its lock, and each call is one transaction (see ``store/_store.py``),
so the writes of concurrent jobs never interleave inside a call. Job events (started, a
query, finished, failed) go to the driver (the calling thread), which alone decides what runs
next, retries failed jobs and, on Ctrl-C, marks the running jobs' runs interrupted.

Jobs whose models run in this process (llama.cpp: ``local``, ``llamacpp:PATH``) run one at a
time, whatever ``jobs`` says: llama-cpp-python points the process's stdout and stderr at
/dev/null while it loads a model, so two loads at once on two threads can leave stdout
pointing there for good; and such jobs share the same cores anyway. ``jobs`` is for models
behind HTTP endpoints.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import PoiseError
from ..store import Store, config_hash
from ._jobs import Prepared, attach

#: A job's state: in the store before a sweep runs (new, finished, interrupted, failed,
#: running), and after (done: finished by this sweep; skipped: finished before it).
STATES = ("done", "skipped", "failed", "interrupted", "pending", "new", "finished", "running")


def store_states(db: Store | None, prepared: Sequence[Prepared]) -> None:
    """Set each job's ``state`` and ``run_id`` from its latest run in the store (``new`` when
    it has none)."""
    latest: dict[tuple[str, str], tuple[str, str]] = {}
    for record in reversed(db.runs() if db is not None else []):  # oldest first: the newest wins
        latest[(record.command, config_hash(record.config))] = (record.id, record.status)
    for p in prepared:
        run_id, status = latest.get(p.key, (None, "new"))
        p.run_id, p.state = run_id, status


@dataclass
class Event:
    """What the driver hears from a job: ``started`` (run id), ``query``, ``done``, ``failed``
    (error line) or ``retry``."""

    kind: str
    index: int
    run_id: str | None = None
    error: str | None = None
    resumed: bool = False


@dataclass
class Outcome:
    """A job after the sweep: its state, run, attempts, error and what it spent now."""

    label: str
    command: str
    state: str
    run_id: str | None
    attempts: int
    error: str | None
    queries: int
    seconds: float
    usage: dict[str, int]
    extra: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"job": self.label, "command": self.command, "state": self.state, "run_id": self.run_id,
                "attempts": self.attempts, "error": self.error, "queries": self.queries,
                "seconds": round(self.seconds, 3), **self.usage, **self.extra}


def _why(exc: BaseException) -> str:
    if isinstance(exc, PoiseError):
        return exc.one_line()
    detail = " ".join(str(exc).split())
    return f"internal error: {type(exc).__name__}{': ' + detail if detail else ''}"


class LocalExecutor:
    """Runs jobs on threads of this process, at most ``jobs`` at once, retrying a failed job
    up to ``retries`` times (each retry resumes its run: finished queries are not asked again)."""

    def __init__(self, db: Store, *, jobs: int = 1, retries: int = 0,
                 on_event: Callable[[Event, Prepared], None] | None = None) -> None:
        if jobs < 1 or retries < 0:
            raise ValueError("jobs must be at least 1 and retries at least 0")
        self.db = db
        self.jobs = jobs
        self.retries = retries
        self.on_event = on_event or (lambda event, job: None)
        self._cancelled = threading.Event()
        self._in_process = threading.Lock()  # held by the running job that loads llama.cpp models
        self._prepared: Sequence[Prepared] = ()

    def live_tokens(self) -> int:
        """Tokens the jobs' models have spent so far in this sweep (what a progress view shows)."""
        return sum(p.usage()["tokens"] for p in self._prepared)

    def run(self, prepared: Sequence[Prepared]) -> list[Outcome]:
        """Run every job not finished before; returns one outcome per job, in order."""
        store_states(self.db, prepared)
        self._prepared = prepared
        attempts = [0] * len(prepared)
        queries = [0] * len(prepared)
        seconds = [0.0] * len(prepared)
        errors: list[str | None] = [None] * len(prepared)
        states = ["skipped" if p.state == "finished" else "pending" for p in prepared]
        todo: queue.Queue[int | None] = queue.Queue()
        events: queue.Queue[Event] = queue.Queue()
        for i, state in enumerate(states):
            if state == "pending":
                todo.put(i)
        left = states.count("pending")
        workers = [threading.Thread(target=self._work, args=(prepared, todo, events), daemon=True,
                                    name=f"poise-sweep-{n}") for n in range(min(self.jobs, left))]
        for w in workers:
            w.start()
        running: dict[int, str | None] = {}
        begun: dict[int, float] = {}
        try:
            while left:
                try:
                    event = events.get(timeout=0.2)  # a timeout, so Ctrl-C reaches this thread
                except queue.Empty:
                    continue
                i = event.index
                if event.kind == "started":
                    begun[i] = time.monotonic()
                    running[i] = event.run_id
                    prepared[i].run_id = event.run_id
                    states[i] = "running"
                elif event.kind == "query":
                    queries[i] += 1
                elif event.kind in ("done", "failed"):
                    running.pop(i, None)
                    attempts[i] += 1
                    seconds[i] += time.monotonic() - begun.get(i, time.monotonic())
                    if event.kind == "done":
                        states[i], errors[i] = "done", None
                        close_models([prepared[i]])
                        left -= 1
                    elif attempts[i] <= self.retries:
                        errors[i] = event.error
                        event = Event("retry", i, event.run_id, event.error)
                        todo.put(i)
                    else:
                        states[i], errors[i] = "failed", event.error
                        close_models([prepared[i]])
                        left -= 1
                self.on_event(event, prepared[i])
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM as the CLI's Terminated: its name is the reason
            self._cancelled.set()
            for i, run_id in running.items():
                states[i] = "interrupted"
                if run_id is not None:
                    self.db.finish_run(run_id, "interrupted", type(exc).__name__)
            raise
        finally:
            for _ in workers:
                todo.put(None)
        return [Outcome(p.job.label, p.command, states[i], p.run_id, attempts[i], errors[i], queries[i],
                        seconds[i], p.usage(), dict(p.extra)) for i, p in enumerate(prepared)]

    def _work(self, prepared: Sequence[Prepared], todo: queue.Queue[int | None], events: queue.Queue[Event]) -> None:
        while not self._cancelled.is_set():
            i = todo.get()
            if i is None or self._cancelled.is_set():
                return
            p = prepared[i]
            try:
                attach(self.db, p)
                with self._in_process if p.in_process else contextlib.nullcontext(), \
                        self.db.open_run(p.command, p.config) as ctx:
                    events.put(Event("started", i, ctx.id, resumed=ctx.resumed))
                    # mypy cannot infer a lambda with a default argument (which binds this job's i)
                    p.run(self.db, ctx, lambda i=i: events.put(Event("query", i)))  # type: ignore[misc]
                events.put(Event("done", i, ctx.id))
            except BaseException as exc:  # noqa: BLE001 - a job's failure is reported to the driver, never raised
                if not self._cancelled.is_set():
                    events.put(Event("failed", i, p.run_id, _why(exc)))


def close_models(prepared: Sequence[Prepared]) -> None:
    """Close every job's models, each once."""
    seen: dict[int, Any] = {}
    for p in prepared:
        for m in p.models:
            if m is not None:
                seen[id(m)] = m
    for m in seen.values():
        m.close()


def totals(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """A sweep's totals: jobs by state, and the queries and tokens spent in this process."""
    states: dict[str, int] = {}
    for o in outcomes:
        states[o.state] = states.get(o.state, 0) + 1
    return {"jobs": len(outcomes), "states": states, "queries": sum(o.queries for o in outcomes),
            "calls": sum(o.usage.get("calls", 0) for o in outcomes),
            "cache_hits": sum(o.usage.get("cache_hits", 0) for o in outcomes),
            "tokens": sum(o.usage.get("tokens", 0) for o in outcomes)}
