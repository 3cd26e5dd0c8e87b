"""The Ray executor: a sweep's jobs as Ray tasks, the store written by the driver alone.

The driver claims (or starts) each job's run in its store, as a command does, and sends the
worker the job and that run's rows (``Store.export_run``). The worker builds the job from
its sweep-file values, checks that its configuration is the driver's (same catalog,
template and model files), seeds a private temporary store with the rows (so a resumed run
asks nothing twice) and runs the job there. Every call it records is sent to the driver at
once, which writes it into the real store; when the job ends (finished, failed) the worker
sends back the run's status and files, which the driver imports (``Store.import_run``).
SQLite stays the single source of truth, and no file is shared across machines: a worker
only needs poise, the catalog and the models.

Events, retries, outcomes and Ctrl-C are the local executor's: on Ctrl-C the calls already
sent are written, the running jobs' runs are marked interrupted and their tasks cancelled.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .._errors import PoiseError
from ..catalog import load_catalog
from ..store import CallRecord, RunBundle, Store, config_hash
from ._base import Job
from ._executors import Event, Outcome, _why, close_models, store_states
from ._jobs import ModelSource, Prepared, attach, prepare

INSTALL_HINT = "pip install 'poise[ray]'"


def require_ray() -> ModuleType:
    """The ``ray`` module; a PoiseError naming the extra to install when it is missing."""
    try:
        import ray
    except ImportError:
        raise PoiseError("the Ray executor needs Ray, which is not installed", INSTALL_HINT) from None
    return ray


def connect_ray(address: str | None) -> bool:
    """Join the Ray cluster at ``address`` (none: ``RAY_ADDRESS``, else a new local cluster,
    never one found by chance) unless Ray is initialised here already; whether this call
    started it. One PoiseError line when the cluster cannot be reached or started."""
    ray = require_ray()
    if address:
        _reachable(address)
    if ray.is_initialized():
        return False
    try:
        with _sigterm_kept():
            ray.init(address=address or os.environ.get("RAY_ADDRESS") or "local", include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        raise PoiseError(f"cannot start or reach {where}: {' '.join(str(exc).split())[:200]}",
                         "start one with `ray start --head`, or check --address") from None
    return True


@contextmanager
def _sigterm_kept() -> Iterator[None]:
    """``ray.init`` makes SIGTERM exit the driver at once (``sys.exit``), past every handler of
    Ctrl-C: a SIGTERM handler the caller installed (poise's CLI: SIGTERM as Ctrl-C, the running
    runs marked interrupted) is put back."""
    before = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if callable(before) and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, before)


@contextmanager
def _signal_exceptions_kept(raised: list[BaseException]) -> Iterator[None]:
    """Ray's calls turn what a signal handler raised inside them (the CLI's ``Terminated`` on
    SIGTERM) into a plain KeyboardInterrupt: meanwhile the handlers of SIGINT and SIGTERM are
    wrapped so that what they raise is kept in ``raised`` (in the main thread; elsewhere there
    are no handlers to wrap)."""
    before: dict[signal.Signals, Callable[[int, Any], Any]] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(signum)
            if callable(handler):
                before[signum] = handler
                signal.signal(signum, _kept(handler, raised))
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def _kept(handler: Callable[[int, Any], Any], raised: list[BaseException]) -> Callable[[int, Any], Any]:
    def relay(signum: int, frame: Any) -> Any:
        try:
            return handler(signum, frame)
        except BaseException as exc:
            raised.append(exc)
            raise
    return relay


def check_ray_address(address: str) -> tuple[str, int] | None:
    """The (host, port) of a ``[ray://]HOST:PORT`` address (``[IPv6]:PORT`` too); None for a
    form without a port that Ray judges itself (``auto``, ``local``). One PoiseError line for
    an address with a colon that is not HOST:PORT, or whose port is not 1-65535."""
    text = address.strip()
    if ":" not in text.removeprefix("ray://"):
        return None
    found = re.fullmatch(r"(?:ray://)?(?:\[([^\]/]+)\]|([^:/\[\]\s]+)):([0-9]+)", text)
    if found is None:
        raise PoiseError(f"--address {address} is not HOST:PORT",
                         "write it as HOST:PORT or ray://HOST:PORT (e.g. 127.0.0.1:6379), or auto")
    port = int(found.group(3))
    if not 1 <= port <= 65535:
        raise PoiseError(f"--address {address}: {port} is not a port (1-65535)",
                         "name the port `ray start --head` printed (6379 by default)")
    return found.group(1) or found.group(2), port


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast (one line) when nothing listens at a ``[ray://]HOST:PORT`` address: Ray itself
    waits minutes for a cluster that is not there."""
    where = check_ray_address(address)
    if where is None:
        return  # "auto", "local" and other forms Ray understands: Ray judges them
    try:
        socket.create_connection(where, timeout=timeout).close()
    except OSError as exc:
        raise PoiseError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}",
                         "start one with `ray start --head`, or check --address") from None


@contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """Ray joined (or started) for the block, and shut down after it if this started it:
    a sweep connects before it creates a new store, so a bad ``--address`` leaves nothing."""
    started = connect_ray(address)
    try:
        yield
    finally:
        if started:
            require_ray().shutdown()


# -- the worker ------------------------------------------------------------------------------------
class _Forwarding(Store):
    """A worker's private store: each call it records is also sent to the driver."""

    def __init__(self, path: str, send: Callable[[str, Any], None]) -> None:
        super().__init__(path)
        self._send = send

    def record_call(self, run_id: str, call: CallRecord) -> int:
        call_id = super().record_call(run_id, call)
        self._send("call", call)
        return call_id


@dataclass(frozen=True)
class JobResult:
    """What a worker sends back when its job ends: the run (status and files, no calls: those
    were sent one by one), what the job spent, its extra figures and endpoints, its error."""

    bundle: RunBundle
    usage: dict[str, int]
    extra: dict[str, Any]
    endpoints: dict[str, list[dict[str, Any]]]
    error: str | None


def run_job(index: int, job: Job, seed: RunBundle, base_urls: list[str], endpoint_limit: int,
            events: Any) -> JobResult:
    """A Ray task: run one job on a private store seeded with ``seed``; every call and query
    goes to the driver through ``events`` (a ``ray.util.queue.Queue``) as ``(index, kind, data)``."""
    def send(kind: str, data: Any = None) -> None:
        events.put((index, kind, data))

    source = ModelSource(base_urls, endpoint_limit=endpoint_limit)
    with tempfile.TemporaryDirectory(prefix="poise-ray-") as tmp:
        db = _Forwarding(tmp, send)
        prepared: Prepared | None = None
        error = None
        try:
            db.import_run(seed)
            catalog = load_catalog(job.options.catalog, allow_outside_files=job.options.allow_outside_files)
            prepared = prepare(job, source, catalog.category(job.category))
            if prepared.key != (seed.command, config_hash(seed.config)):
                raise PoiseError(f"job {job.label}: its run on the worker is not the driver's (another catalog, "
                                 "template or model file there)", "give every machine the same files")
            attach(db, prepared)
            with db.open_run(prepared.command, prepared.config) as ctx:
                prepared.run(db, ctx, lambda: send("query"))
        except Exception as exc:  # noqa: BLE001 - the job's failure goes back to the driver as its line
            error = _why(exc)
        finally:
            if prepared is not None:
                close_models([prepared])
            source.close()
        try:
            bundle = db.export_run(seed.id, calls=False)
        except PoiseError:  # the seed could not even be imported: the run as it was, without its calls
            bundle = dataclasses.replace(seed, calls=(), files={})
        db.close()
    return JobResult(bundle, prepared.usage() if prepared else {}, dict(prepared.extra) if prepared else {},
                     source.stats(), error)


# -- the driver ------------------------------------------------------------------------------------
@dataclass
class _Job:
    """The driver's view of one job while the sweep runs."""

    state: str
    attempts: int = 0
    queries: int = 0
    tokens: int = 0  # of the calls it sent (cache hits cost nothing)
    seconds: float = 0.0
    begun: float = 0.0
    error: str | None = None
    usage: dict[str, int] = dataclasses.field(default_factory=dict)


class RayExecutor:
    """Runs jobs as Ray tasks, at most ``jobs`` at once, retrying a failed job up to
    ``retries`` times (each retry resumes its run). Connects to the cluster at ``address``, or
    starts a local one, unless Ray is already initialised in this process."""

    def __init__(self, db: Store, *, jobs: int = 1, retries: int = 0, address: str | None = None,
                 base_urls: Sequence[str] = (), endpoint_limit: int = 4,
                 on_event: Callable[[Event, Prepared], None] | None = None) -> None:
        if jobs < 1 or retries < 0:
            raise ValueError("jobs must be at least 1 and retries at least 0")
        self.ray = require_ray()
        self.db, self.jobs, self.retries, self.address = db, jobs, retries, address
        self.base_urls, self.endpoint_limit = list(base_urls), endpoint_limit
        self.on_event = on_event or (lambda event, job: None)
        self._endpoints: dict[str, dict[str, dict[str, Any]]] = {}
        self._state: list[_Job] = []

    # -- what the progress view reads
    def live_tokens(self) -> int:
        """Tokens of the calls the workers have sent so far."""
        return sum(s.tokens for s in self._state)

    def endpoint_stats(self) -> dict[str, list[dict[str, Any]]]:
        """Each endpoint's calls, failures and tokens summed over the finished jobs' workers."""
        return {name: list(eps.values()) for name, eps in self._endpoints.items()}

    def run(self, prepared: Sequence[Prepared]) -> list[Outcome]:
        """Run every job not finished before; returns one outcome per job, in order."""
        store_states(self.db, prepared)
        self._state = [_Job("skipped" if p.state == "finished" else "pending") for p in prepared]
        todo = [i for i, s in enumerate(self._state) if s.state == "pending"]
        if todo:
            started = self._connect()
            try:
                self._drive(prepared, todo)
            finally:
                if started:
                    self.ray.shutdown()
        return [Outcome(p.job.label, p.command, s.state, p.run_id, s.attempts, s.error, s.queries, s.seconds,
                        s.usage or {"calls": 0, "cache_hits": 0, "tokens": s.tokens}, dict(p.extra))
                for p, s in zip(prepared, self._state, strict=True)]

    def _connect(self) -> bool:
        """Join the cluster (or start a local one); whether this call started Ray here."""
        return connect_ray(self.address)

    def _drive(self, prepared: Sequence[Prepared], todo: list[int]) -> None:
        from ray.util.queue import Queue

        events = Queue(actor_options={"num_cpus": 0})
        task = self.ray.remote(num_cpus=1, max_retries=0)(run_job)
        flying: dict[Any, int] = {}
        raised: list[BaseException] = []
        try:
            with _signal_exceptions_kept(raised):
                self._loop(task, prepared, todo, flying, events)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM as the CLI's Terminated: its name is the reason
            self._interrupt(events, prepared, flying, type(raised[0] if raised else exc).__name__)
            raise
        finally:
            events.shutdown()

    def _loop(self, task: Any, prepared: Sequence[Prepared], todo: list[int], flying: dict[Any, int],
              events: Any) -> None:
        while todo or flying:
            while todo and len(flying) < self.jobs:
                i = todo.pop(0)
                flying[self._submit(task, prepared[i], i, events)] = i
            self._drain(events, prepared)
            ready, _ = self.ray.wait(list(flying), num_returns=1, timeout=0.2)
            for ref in ready:
                self._drain(events, prepared)  # every call the task sent, before its end
                i = flying.pop(ref)
                if self._settle(ref, prepared[i], i):
                    todo.append(i)

    def _submit(self, task: Any, p: Prepared, i: int, events: Any) -> Any:
        claimed, _ = self.db.claim_unfinished(p.command, p.config)
        p.run_id = claimed or self.db.start_run(p.command, p.config)
        seed = dataclasses.replace(self.db.export_run(p.run_id), status="interrupted")  # the worker adopts it
        s = self._state[i]
        s.state, s.begun = "running", time.monotonic()
        self.on_event(Event("started", i, p.run_id, resumed=claimed is not None), p)
        return task.remote(i, p.job, seed, self.base_urls, self.endpoint_limit, events)

    def _drain(self, events: Any, prepared: Sequence[Prepared]) -> None:
        size = events.qsize()
        for i, kind, data in events.get_nowait_batch(size) if size else []:
            p = prepared[i]
            if kind == "call" and p.run_id is not None:
                self.db.record_call(p.run_id, data)
                if not data.cached:
                    self._state[i].tokens += data.prompt_tokens + data.completion_tokens
            elif kind == "query":
                self._state[i].queries += 1
                self.on_event(Event("query", i), p)

    def _settle(self, ref: Any, p: Prepared, i: int) -> bool:
        """A task ended: import its run, record the outcome; whether to run the job again."""
        s = self._state[i]
        s.attempts += 1
        s.seconds += time.monotonic() - s.begun
        try:
            result: JobResult = self.ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - a worker that died: the job failed, the sweep goes on
            error: str | None = f"the Ray task failed: {type(exc).__name__}"
            assert p.run_id is not None
            self.db.finish_run(p.run_id, "failed", error)
        else:
            self.db.import_run(result.bundle)
            error = result.error
            if error is not None and result.bundle.status != "failed":  # it failed before its run began
                assert p.run_id is not None
                self.db.finish_run(p.run_id, "failed", error)
            s.usage = result.usage
            p.extra.update(result.extra)
            self._merge_endpoints(result.endpoints)
        if error is None:
            s.state, s.error = "done", None
            self.on_event(Event("done", i, p.run_id), p)
            return False
        if s.attempts <= self.retries:
            s.error = error
            self.on_event(Event("retry", i, p.run_id, error), p)
            return True
        s.state, s.error = "failed", error
        self.on_event(Event("failed", i, p.run_id, error), p)
        return False

    def _merge_endpoints(self, stats: dict[str, list[dict[str, Any]]]) -> None:
        for name, endpoints in stats.items():
            mine = self._endpoints.setdefault(name, {})
            for e in endpoints:
                had = mine.get(e["url"])
                if had is None:
                    mine[e["url"]] = dict(e)
                    continue
                for key in ("calls", "failures", "tokens"):
                    had[key] += e[key]
                had["healthy"], had["last_error"] = e["healthy"], e["last_error"] or had["last_error"]

    def _interrupt(self, events: Any, prepared: Sequence[Prepared], flying: dict[Any, int], reason: str) -> None:
        """Ctrl-C: write the calls already sent, mark the running jobs' runs interrupted (``reason``), cancel them."""
        try:
            self._drain(events, prepared)
        finally:
            for ref, i in flying.items():
                self._state[i].state = "interrupted"
                run_id = prepared[i].run_id
                if run_id is not None:
                    self.db.finish_run(run_id, "interrupted", reason)
                self.ray.cancel(ref, force=True)
