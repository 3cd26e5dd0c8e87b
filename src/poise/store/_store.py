"""The SQLite results store: runs, model calls, responses and scores.

Each call is written with its scores in one transaction, so a run stopped at any moment
(Ctrl-C, kill -9, power cut) leaves every finished call whole and nothing half-written.
A call that failed is stored too, as a row with its error.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import StoreError
from .._numbers import MAX_STORED_INT
from .._sqlite import connect_wal
from ..ranking._result import AMBIGUOUS_PREFIX, score_at
from ._results import ResultFile, read_result, write_result
from ._run import Closable, RunContext
from ._schema import SCHEMA, _alive, _check_version, _connect_read_only, _migrate, check_run_id, process_start

if TYPE_CHECKING:
    from ._bundle import RunBundle

R = TypeVar("R", bound=ResultFile)

DEFAULT_STORE_DIR = "poise-runs"
STORE_ENV = "POISE_HOME"
DB_NAME = "poise.sqlite"
CACHE_NAME = "cache.sqlite"
#: a run's configuration nests a few levels (defenses, generation settings); far deeper is a broken row
MAX_CONFIG_DEPTH = 32



def store_dir(path: str | Path | None = None) -> Path:
    """Where results go: ``path``, else $POISE_HOME, else ./poise-runs."""
    return Path(path or os.environ.get(STORE_ENV) or DEFAULT_STORE_DIR).expanduser()


def _look_up(path: Path) -> os.stat_result | None:
    """``path``'s status (symlinks followed), None when nothing is there; a path the system
    will not look up (a name too long, a folder that may not be searched) is one clear error."""
    try:
        return path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise StoreError(f"cannot look up the results store at {path.parent} ({exc.strerror})",
                         f"point --store / {STORE_ENV} at another folder") from None


def config_hash(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def content_hash(*parts: Any) -> str:
    """SHA-256 of the canonical JSON of ``parts`` (pydantic models by their content): what
    a run records of everything that shapes its prompts, so a resume never mixes inputs."""
    def plain(value: Any) -> Any:
        dump = getattr(value, "model_dump", None)
        return dump(mode="json") if callable(dump) else value

    canonical = json.dumps([plain(p) for p in parts], sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False, default=lambda v: plain(v) if hasattr(v, "model_dump") else str(v))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


@dataclass(frozen=True)
class LiveRun:
    """A run some process is still working on."""

    id: str
    host: str
    pid: int


@dataclass(frozen=True)
class RunRecord:
    """A run with what it cost: tokens and model time count only calls not served from cache."""

    id: str
    command: str
    status: str
    config: dict[str, Any]
    created_at: float
    finished_at: float | None
    error: str | None
    calls: int
    failed_calls: int
    cached_calls: int
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    unparseable_calls: int = 0  # answers with no ranking in them
    ambiguous_calls: int = 0  # answers the reader could read more than one way (counted apart)
    # why the stored configuration cannot be read (not JSON, nested too deeply ...); ``config`` is {} then
    config_problem: str | None = None

    @property
    def created(self) -> str:
        return datetime.fromtimestamp(self.created_at).strftime("%Y-%m-%d %H:%M:%S")

    def readable_config(self) -> dict[str, Any]:
        """The configuration, for what is built from it (a transfer, a re-reading); StoreError
        when it cannot be read."""
        if self.config_problem is not None:
            raise StoreError(f"the configuration of run {self.id} cannot be read ({self.config_problem})",
                             "pass another run; `poise runs` lists them")
        return self.config


@dataclass(frozen=True)
class CallRecord:
    """One model call of a run, as it is written to the store."""

    task_key: str
    category: str
    query: str
    model_spec: str
    context_order: Sequence[int]
    messages: Sequence[dict[str, str]]
    config: dict[str, Any]
    model_name: str | None = None
    template: str | None = None
    seed: int | None = None
    response_text: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False
    cache_key: str | None = None
    parseable: bool | None = None
    unparseable_reason: str | None = None
    ranking: Sequence[int] | None = None
    error: str | None = None
    # (brand, model) of every product, catalog order; scores are written for each
    products: Sequence[tuple[str, str]] = ()
    # what an experiment adds: the document assignment of a natural trial, an injection ...
    meta: dict[str, Any] | None = None


class Store:
    """Runs and calls in ``DIR/poise.sqlite``; the request cache lives beside it."""

    def __init__(self, path: str | Path | None = None, *, create: bool = True, read_only: bool = False) -> None:
        """Open the store in ``path`` (default ``$POISE_HOME`` or ``./poise-runs``).

        With ``create=False`` a missing store is an error rather than a new empty folder.
        With ``read_only=True`` (commands that only read: ``runs``, ``report``, the reading
        side of ``transfer``) nothing is ever written: the database is opened with SQLite's
        ``mode=ro``, so a store on a read-only disk or folder can still be listed and reported.
        """
        self.dir = store_dir(path)
        self.db_path = self.dir / DB_NAME
        self.read_only = read_only
        found = _look_up(self.db_path)
        if found is not None and not stat.S_ISREG(found.st_mode):
            raise StoreError(f"{self.db_path} is not a regular file, so it cannot be a results store",
                             f"move it away, or point --store / {STORE_ENV} at another folder")
        if (read_only or not create) and found is None:
            raise StoreError(
                f"no results store at {self.dir}",
                f"run `poise recommend`, `poise natural` or `poise attack` first, "
                f"or point --store / {STORE_ENV} at an existing store",
            )
        try:
            if read_only:
                self._conn = _connect_read_only(self.db_path)
            else:
                self.dir.mkdir(parents=True, exist_ok=True)
                self._conn = connect_wal(self.db_path)
                _check_version(self._conn, self.db_path)  # a newer poise's store is closed below, never migrated
                _migrate(self._conn)
                self._conn.executescript(SCHEMA)
                self._conn.execute("PRAGMA foreign_keys=ON")
            self._columns = {t: {r[1] for r in self._conn.execute(f"PRAGMA table_info({t})")}
                             for t in ("runs", "calls")}
        except StoreError:
            self._conn.close()
            raise
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"cannot open the results store at {self.db_path}: {exc}",
                "check that it is a poise store you may read" if read_only else
                f"pass a writable folder with --store or set {STORE_ENV}",
            ) from exc
        self._lock = threading.Lock()

    @staticmethod
    def exists(path: str | Path | None = None) -> bool:
        """Whether a store has been created in ``path`` (same default as the constructor);
        something else in the database's place counts, so that opening it says what is wrong."""
        return _look_up(store_dir(path) / DB_NAME) is not None

    @property
    def cache_path(self) -> Path:
        return self.dir / CACHE_NAME

    def run_dir(self, run_id: str) -> Path:
        """The folder for a run's files (plots, exports), created on first use (never by a
        read-only store)."""
        check_run_id(run_id)
        folder = self.dir / "runs" / run_id
        if not self.read_only:
            folder.mkdir(parents=True, exist_ok=True)
        return folder

    def save_result(self, run_id: str, result: ResultFile) -> Path:
        """Write a run's result file (``attack.json`` ...) whole, with its schema version."""
        return write_result(self.run_dir(run_id), result)

    def load_result(self, run_id: str, kind: type[R], need: tuple[str, ...] = ()) -> R | None:
        """A run's result file as ``kind`` (None: not written yet); a file written by an
        earlier poise loads too. ResultError when it cannot be read or lacks a field of ``need``."""
        return read_result(self.run_dir(run_id), kind, need)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self.read_only:
            raise StoreError(f"the results store at {self.db_path} was opened read-only")
        with self._lock:
            try:
                with self._conn:
                    yield self._conn
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write to the results store at {self.db_path}: {exc}") from exc

    # -- runs --------------------------------------------------------------------------
    def start_run(self, command: str, config: dict[str, Any], run_id: str | None = None) -> str:
        from .. import __version__

        run_id = run_id or new_run_id()
        with self._tx() as c:
            c.execute(
                "INSERT INTO runs (id, command, status, config_json, config_hash, created_at,"
                " poise_version, host, pid, owner_start) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
                (run_id, command, json.dumps(config, sort_keys=True, default=str), config_hash(config),
                 time.time(), __version__, socket.gethostname(), os.getpid(), process_start(os.getpid())),
            )
        return run_id

    def open_run(self, command: str, config: dict[str, Any], *, resume: bool = True,
                 close: Iterable[Closable | None] = ()) -> RunContext:
        """A run's lifecycle as a context: started (or, with ``resume``, an unfinished run of
        the same configuration adopted), then marked finished, failed or interrupted, and the
        models in ``close`` closed. See :class:`RunContext`."""
        return RunContext(self, command, config, resume=resume, close=close)

    def finish_run(self, run_id: str, status: str = "finished", error: str | None = None) -> None:
        if status not in ("finished", "failed", "interrupted"):
            raise ValueError(f"unknown run status {status!r}")
        with self._tx() as c:
            c.execute("UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                      (status, time.time(), error, run_id))

    def resume_run(self, run_id: str) -> None:
        """Mark an unfinished run as running again in this process."""
        with self._tx() as c:
            c.execute("UPDATE runs SET status = 'running', finished_at = NULL, error = NULL, host = ?, pid = ?,"
                      " owner_start = ? WHERE id = ?",
                      (socket.gethostname(), os.getpid(), process_start(os.getpid()), run_id))

    def find_unfinished(self, command: str, config: dict[str, Any]) -> str | None:
        """The latest run of the same command and configuration that did not finish,
        whoever owns it (a resume uses :meth:`claim_unfinished`, which skips live runs)."""
        row = self._query_one(
            "SELECT id FROM runs WHERE command = ? AND config_hash = ? AND status != 'finished'"
            " ORDER BY created_at DESC LIMIT 1", (command, config_hash(config)))
        return row[0] if row else None

    def stopped_with_other_inputs(self, command: str, config: dict[str, Any]) -> tuple[str, list[str]] | None:
        """When the latest run of ``command`` stopped before finishing (interrupted, failed)
        with a configuration other than ``config``: its id and the configuration keys that
        differ (what a user who meant to resume it changed). None otherwise."""
        row = self._query_one("SELECT id, status, config_json FROM runs WHERE command = ?"
                              " ORDER BY created_at DESC LIMIT 1", (command,))
        if row is None or row[1] in ("finished", "running"):
            return None
        before, problem = read_config(row[2])
        now = json.loads(json.dumps(config, sort_keys=True, default=str))
        if problem is not None or before == now:
            return None
        return str(row[0]), sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))

    def claim_unfinished(self, command: str, config: dict[str, Any]) -> tuple[str | None, list[LiveRun]]:
        """Adopt the latest unfinished run of the same command and configuration whose owner
        is gone (interrupted, failed, killed), marking it running in this process.

        A run whose owner process is alive is never adopted: it is returned among the live
        runs instead, so the caller starts its own run and says so. The check and the claim
        are one write transaction, so two processes never adopt the same run.
        """
        if self.read_only:
            raise StoreError(f"the results store at {self.db_path} was opened read-only")
        owner_start = "owner_start" if "owner_start" in self._columns["runs"] else "NULL"
        live: list[LiveRun] = []
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    rows = self._conn.execute(
                        f"SELECT id, status, host, pid, {owner_start} FROM runs WHERE command = ?"
                        " AND config_hash = ? AND status != 'finished' ORDER BY created_at DESC",
                        (command, config_hash(config))).fetchall()
                    claimed = None
                    for run_id, status, host, pid, started in rows:
                        if status == "running" and _alive(host, pid, started):
                            live.append(LiveRun(run_id, host, pid))
                            continue
                        self._conn.execute(
                            "UPDATE runs SET status = 'running', finished_at = NULL, error = NULL, host = ?,"
                            " pid = ?, owner_start = ? WHERE id = ?",
                            (socket.gethostname(), os.getpid(), process_start(os.getpid()), run_id))
                        claimed = run_id
                        break
                    self._conn.commit()
                except BaseException:
                    self._conn.rollback()
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write to the results store at {self.db_path}: {exc}") from exc
        return claimed, live

    # -- calls --------------------------------------------------------------------------
    def record_call(self, run_id: str, call: CallRecord) -> int:
        """Write one call and its per-product scores atomically; returns the call id."""
        with self._tx() as c:
            return _insert_call(c, run_id, call)

    def export_run(self, run_id: str, *, calls: bool = True) -> RunBundle:
        """A run as plain data (its record, calls with scores, result files); see ``_bundle``."""
        from ._bundle import export_run

        return export_run(self, run_id, calls=calls)

    def import_run(self, bundle: RunBundle) -> None:
        """Merge a bundle into this store in one transaction; see ``_bundle``."""
        from ._bundle import import_run

        import_run(self, bundle)

    def done_tasks(self, run_id: str) -> set[str]:
        """Task keys of a run that already have a successful call (what a resume skips)."""
        rows = self._query("SELECT task_key FROM calls WHERE run_id = ? AND error IS NULL", (run_id,))
        return {r[0] for r in rows}

    def calls(self, run_id: str) -> list[dict[str, Any]]:
        """Every call of a run, failed ones included, oldest first."""
        return self._dicts("SELECT * FROM calls WHERE run_id = ? ORDER BY id", (run_id,))

    def scores(self, run_id: str) -> list[dict[str, Any]]:
        """One row per product of every parseable call of a run: call, task, category,
        meta, product index, context position (1-based), rank (None: unlisted) and score."""
        return self._dicts(
            f"SELECT c.id AS call_id, c.task_key, c.category, {self._col('calls', 'meta_json', 'c')},"
            " s.product_index, s.brand,"
            f" s.model, s.position, s.rank, s.score FROM calls c JOIN scores s ON s.call_id = c.id"
            " WHERE c.run_id = ? AND c.error IS NULL ORDER BY c.id, s.product_index", (run_id,))

    def done_call(self, run_id: str, task_key: str) -> dict[str, Any] | None:
        """The successful call of a task, if the run has one (what a replay reads back)."""
        rows = self._dicts("SELECT * FROM calls WHERE run_id = ? AND task_key = ? AND error IS NULL",
                           (run_id, task_key))
        return rows[0] if rows else None

    def _col(self, table: str, name: str, alias: str) -> str:
        """A column a store written by an earlier poise may lack (read-only stores are not migrated)."""
        return f"{alias}.{name}" if name in self._columns[table] else f"NULL AS {name}"

    def _dicts(self, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._conn.execute(sql, args)
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        for row in rows:
            if (problem := meta_problem(row.get("meta_json"))) is not None:
                call = row.get("call_id", row.get("id"))
                raise StoreError(f"call {call} in this store has metadata that cannot be read ({problem})",
                                 "another tool changed the store: start a new one (--store DIR) or restore a copy")
        return rows

    # -- listing ------------------------------------------------------------------------
    def runs(self, limit: int | None = None) -> list[RunRecord]:
        sql = (
            "SELECT r.id, r.command, r.status, r.config_json, r.created_at, r.finished_at, r.error,"
            " r.host, r.pid, {owner_start}, COUNT(c.id), SUM(c.error IS NOT NULL), COALESCE(SUM(c.cached), 0),"
            " COALESCE(SUM(CASE WHEN c.cached THEN 0 ELSE c.prompt_tokens END), 0),"
            " COALESCE(SUM(CASE WHEN c.cached THEN 0 ELSE c.completion_tokens END), 0),"
            " COALESCE(SUM(CASE WHEN c.cached THEN 0 ELSE c.latency_s END), 0),"
            " COALESCE(SUM(c.parseable = 0), 0),"
            f" COALESCE(SUM(c.parseable = 0 AND c.unparseable_reason LIKE '{AMBIGUOUS_PREFIX}%'), 0)"
            " FROM runs r LEFT JOIN calls c ON c.run_id = r.id GROUP BY r.id ORDER BY r.created_at DESC"
        ).format(owner_start="r.owner_start" if "owner_start" in self._columns["runs"] else "NULL")
        if limit:  # past SQLite's 64-bit integers the literal is a REAL and the query fails
            sql += f" LIMIT {min(int(limit), MAX_STORED_INT)}"
        out = []
        for row in self._query(sql, ()):
            status = row[2]
            if status == "running" and not _alive(row[7], row[8], row[9]):
                status = "interrupted"
            config, problem = read_config(row[3])
            out.append(RunRecord(
                id=row[0], command=row[1], status=status, config=config, config_problem=problem,
                created_at=row[4], finished_at=row[5], error=row[6], calls=row[10],
                failed_calls=row[11] or 0, cached_calls=row[12], prompt_tokens=row[13],
                completion_tokens=row[14], latency_s=row[15], unparseable_calls=row[16] - row[17],
                ambiguous_calls=row[17],
            ))
        return out

    def run(self, run_id: str) -> RunRecord:
        for record in self.runs():
            if record.id == run_id:
                return record
        raise StoreError(f"no run {run_id!r} in {self.db_path}", "run `poise runs` to list the runs")

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def _query_one(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._conn.execute(sql, args).fetchone()
            return row

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_config(text: Any) -> tuple[dict[str, Any], str | None]:
    """A run's stored ``config_json`` as (configuration, None), or ({}, why) when it cannot be
    read: not JSON, not an object, or nested deeper than any configuration poise writes (a row
    written by another tool: decoding or showing it would exceed Python's recursion limit)."""
    try:
        config = json.loads(text)
    except RecursionError:
        return {}, "its JSON is nested too deeply to read"
    except (TypeError, ValueError) as exc:
        return {}, f"not JSON: {exc}"
    if not isinstance(config, dict):
        return {}, f"a JSON {type(config).__name__}, not an object"
    if _depth(config) > MAX_CONFIG_DEPTH:
        return {}, f"its JSON is nested more than {MAX_CONFIG_DEPTH} levels deep"
    return config, None


def meta_problem(text: Any) -> str | None:
    """Why a call's stored ``meta_json`` cannot be read (the same tests as a run's configuration:
    not JSON, not an object, nested deeper than poise ever writes), or None when it can (or is absent)."""
    return None if text is None else read_config(text)[1]


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value``, counted without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            todo += [(v, level + 1) for v in (item.values() if isinstance(item, dict) else item)]
    return deepest


def _insert_call(c: sqlite3.Connection, run_id: str, call: CallRecord) -> int:
    """One call and its per-product scores, inside the caller's transaction; the call id."""
    cur = c.execute(
        "INSERT INTO calls (run_id, task_key, category, query, model_spec, model_name, template,"
        " seed, context_order, messages_json, config_json, response_text, finish_reason,"
        " prompt_tokens, completion_tokens, latency_s, cached, cache_key, parseable,"
        " unparseable_reason, ranking_json, error, meta_json, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, call.task_key, call.category, call.query, call.model_spec, call.model_name,
         call.template, call.seed, json.dumps(list(call.context_order)),
         json.dumps(list(call.messages)), json.dumps(call.config, sort_keys=True),
         call.response_text, call.finish_reason, call.prompt_tokens, call.completion_tokens,
         call.latency_s, int(call.cached), call.cache_key,
         None if call.parseable is None else int(call.parseable), call.unparseable_reason,
         None if call.ranking is None else json.dumps(list(call.ranking)), call.error,
         None if call.meta is None else json.dumps(call.meta, sort_keys=True), time.time()),
    )
    assert cur.lastrowid is not None  # an INSERT always sets it
    call_id = int(cur.lastrowid)
    if call.parseable and call.ranking is not None:
        n = len(call.products)
        ranks = {index: j for j, index in enumerate(call.ranking, start=1)}
        position = {index: p for p, index in enumerate(call.context_order, start=1)}
        c.executemany(
            "INSERT INTO scores (call_id, product_index, brand, model, position, rank, score)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(call_id, i, brand, model, position.get(i, 0), ranks.get(i), score_at(ranks.get(i), n))
             for i, (brand, model) in enumerate(call.products)],
        )
    return call_id
