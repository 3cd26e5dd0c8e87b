"""The SQLite results store: runs, model calls, responses and scores.

Each call is written with its scores in one transaction, so a run stopped at any moment
(Ctrl-C, kill -9, power cut) leaves every finished call whole and nothing half-written.
A call that failed is stored too, as a row with its error.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._errors import StoreError

DEFAULT_STORE_DIR = "poise-runs"
STORE_ENV = "POISE_HOME"
DB_NAME = "poise.sqlite"
CACHE_NAME = "cache.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id            TEXT PRIMARY KEY,
    command       TEXT NOT NULL,
    status        TEXT NOT NULL,
    config_json   TEXT NOT NULL,
    config_hash   TEXT NOT NULL,
    created_at    REAL NOT NULL,
    finished_at   REAL,
    error         TEXT,
    poise_version TEXT NOT NULL,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id            TEXT NOT NULL REFERENCES runs(id),
    task_key          TEXT NOT NULL,
    category          TEXT NOT NULL,
    query             TEXT NOT NULL,
    model_spec        TEXT NOT NULL,
    model_name        TEXT,
    template          TEXT,
    seed              INTEGER,
    context_order     TEXT NOT NULL,
    messages_json     TEXT NOT NULL,
    config_json       TEXT NOT NULL,
    response_text     TEXT,
    finish_reason     TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    latency_s         REAL NOT NULL DEFAULT 0,
    cached            INTEGER NOT NULL DEFAULT 0,
    cache_key         TEXT,
    parseable         INTEGER,
    unparseable_reason TEXT,
    ranking_json      TEXT,
    error             TEXT,
    meta_json         TEXT,
    created_at        REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS scores (
    call_id       INTEGER NOT NULL REFERENCES calls(id),
    product_index INTEGER NOT NULL,
    brand         TEXT NOT NULL,
    model         TEXT NOT NULL,
    position      INTEGER NOT NULL,
    rank          INTEGER,
    score         INTEGER NOT NULL,
    PRIMARY KEY (call_id, product_index)
);
CREATE INDEX IF NOT EXISTS calls_run ON calls(run_id);
-- one successful call per task; failed attempts stay as rows beside it
CREATE UNIQUE INDEX IF NOT EXISTS calls_done ON calls(run_id, task_key) WHERE error IS NULL;
"""


def store_dir(path: str | Path | None = None) -> Path:
    """Where results go: ``path``, else $POISE_HOME, else ./poise-runs."""
    return Path(path or os.environ.get(STORE_ENV) or DEFAULT_STORE_DIR).expanduser()


def config_hash(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


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
    unparseable_calls: int = 0

    @property
    def created(self) -> str:
        return datetime.fromtimestamp(self.created_at).strftime("%Y-%m-%d %H:%M:%S")


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

    def __init__(self, path: str | Path | None = None, *, create: bool = True) -> None:
        """Open the store in ``path`` (default ``$POISE_HOME`` or ``./poise-runs``).

        With ``create=False`` (commands that only read: ``runs``, ``report``, ``transfer``)
        a missing store is an error rather than a new empty folder.
        """
        self.dir = store_dir(path)
        self.db_path = self.dir / DB_NAME
        if not create and not self.db_path.is_file():
            raise StoreError(
                f"no results store at {self.dir}",
                f"run `poise recommend`, `poise natural` or `poise attack` first, "
                f"or point --store / {STORE_ENV} at an existing store",
            )
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.db_path, check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            _migrate(self._conn)
            self._conn.executescript(_SCHEMA)
            self._conn.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"cannot open the results store at {self.db_path}: {exc}",
                f"pass a writable folder with --store or set {STORE_ENV}",
            ) from exc
        self._lock = threading.Lock()

    @staticmethod
    def exists(path: str | Path | None = None) -> bool:
        """Whether a store has been created in ``path`` (same default as the constructor)."""
        return (store_dir(path) / DB_NAME).is_file()

    @property
    def cache_path(self) -> Path:
        return self.dir / CACHE_NAME

    def run_dir(self, run_id: str) -> Path:
        """The folder for a run's files (plots, exports), created on first use."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", run_id):
            raise StoreError(f"not a run id: {run_id!r}", "run `poise runs` to list the runs")
        folder = self.dir / "runs" / run_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
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
                " poise_version, host, pid) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                (run_id, command, json.dumps(config, sort_keys=True, default=str), config_hash(config),
                 time.time(), __version__, socket.gethostname(), os.getpid()),
            )
        return run_id

    def finish_run(self, run_id: str, status: str = "finished", error: str | None = None) -> None:
        if status not in ("finished", "failed", "interrupted"):
            raise ValueError(f"unknown run status {status!r}")
        with self._tx() as c:
            c.execute("UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                      (status, time.time(), error, run_id))

    def resume_run(self, run_id: str) -> None:
        """Mark an unfinished run as running again in this process."""
        with self._tx() as c:
            c.execute("UPDATE runs SET status = 'running', finished_at = NULL, error = NULL, host = ?, pid = ?"
                      " WHERE id = ?", (socket.gethostname(), os.getpid(), run_id))

    def find_unfinished(self, command: str, config: dict[str, Any]) -> str | None:
        """The latest run of the same command and configuration that did not finish."""
        row = self._query_one(
            "SELECT id FROM runs WHERE command = ? AND config_hash = ? AND status != 'finished'"
            " ORDER BY created_at DESC LIMIT 1", (command, config_hash(config)))
        return row[0] if row else None

    # -- calls --------------------------------------------------------------------------
    def record_call(self, run_id: str, call: CallRecord) -> int:
        """Write one call and its per-product scores atomically; returns the call id."""
        with self._tx() as c:
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
            call_id = int(cur.lastrowid)
            if call.parseable and call.ranking is not None:
                n = len(call.products)
                ranks = {index: j for j, index in enumerate(call.ranking, start=1)}
                position = {index: p for p, index in enumerate(call.context_order, start=1)}
                c.executemany(
                    "INSERT INTO scores (call_id, product_index, brand, model, position, rank, score)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(call_id, i, brand, model, position.get(i, 0), ranks.get(i),
                      n - ranks[i] + 1 if i in ranks else 0)
                     for i, (brand, model) in enumerate(call.products)],
                )
        return call_id

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
            "SELECT c.id AS call_id, c.task_key, c.category, c.meta_json, s.product_index, s.brand,"
            " s.model, s.position, s.rank, s.score FROM calls c JOIN scores s ON s.call_id = c.id"
            " WHERE c.run_id = ? AND c.error IS NULL ORDER BY c.id, s.product_index", (run_id,))

    def done_call(self, run_id: str, task_key: str) -> dict[str, Any] | None:
        """The successful call of a task, if the run has one (what a replay reads back)."""
        rows = self._dicts("SELECT * FROM calls WHERE run_id = ? AND task_key = ? AND error IS NULL",
                           (run_id, task_key))
        return rows[0] if rows else None

    def _dicts(self, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._conn.execute(sql, args)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    # -- listing ------------------------------------------------------------------------
    def runs(self, limit: int | None = None) -> list[RunRecord]:
        sql = (
            "SELECT r.id, r.command, r.status, r.config_json, r.created_at, r.finished_at, r.error,"
            " r.host, r.pid, COUNT(c.id), SUM(c.error IS NOT NULL), COALESCE(SUM(c.cached), 0),"
            " COALESCE(SUM(CASE WHEN c.cached THEN 0 ELSE c.prompt_tokens END), 0),"
            " COALESCE(SUM(CASE WHEN c.cached THEN 0 ELSE c.completion_tokens END), 0),"
            " COALESCE(SUM(CASE WHEN c.cached THEN 0 ELSE c.latency_s END), 0),"
            " COALESCE(SUM(c.parseable = 0), 0)"
            " FROM runs r LEFT JOIN calls c ON c.run_id = r.id GROUP BY r.id ORDER BY r.created_at DESC"
        )
        if limit:
            sql += f" LIMIT {int(limit)}"
        out = []
        for row in self._query(sql, ()):
            status = row[2]
            if status == "running" and not _alive(row[7], row[8]):
                status = "interrupted"
            out.append(RunRecord(
                id=row[0], command=row[1], status=status, config=json.loads(row[3]),
                created_at=row[4], finished_at=row[5], error=row[6], calls=row[9],
                failed_calls=row[10] or 0, cached_calls=row[11], prompt_tokens=row[12],
                completion_tokens=row[13], latency_s=row[14], unparseable_calls=row[15],
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
            return self._conn.execute(sql, args).fetchone()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _table_sql(name: str) -> str:
    create = _SCHEMA[_SCHEMA.index(f"CREATE TABLE IF NOT EXISTS {name} "):]
    return create[: create.index(");") + 2]


def _rebuild(conn: sqlite3.Connection, name: str, columns: list[str]) -> None:
    """Recreate a table with this schema, keeping its rows (SQLite's documented way:
    create the new table, copy, drop the old one, rename; references by name survive)."""
    conn.execute(_table_sql(name).replace(f"EXISTS {name} ", f"EXISTS {name}_new ", 1))
    cols = ", ".join(columns)
    conn.execute(f"INSERT INTO {name}_new ({cols}) SELECT {cols} FROM {name}")
    conn.execute(f"DROP TABLE {name}")
    conn.execute(f"ALTER TABLE {name}_new RENAME TO {name}")


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a store written by an earlier poise up to this schema, keeping every row.
    Runs with foreign keys off, in one transaction."""
    tables = {r[0]: r[1] for r in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")}
    if "calls" not in tables:
        return
    columns = [r[1] for r in conn.execute("PRAGMA table_info(calls)")]
    old_unique = "UNIQUE (run_id, task_key)" in (tables["calls"] or "")
    # an earlier migration renamed through a temporary table and left scores pointing at it
    stale_scores = "scores" in tables and "calls_old" in (tables["scores"] or "")
    if "meta_json" in columns and not old_unique and not stale_scores and "calls_old" not in tables:
        return
    with conn:
        if "meta_json" not in columns:
            conn.execute("ALTER TABLE calls ADD COLUMN meta_json TEXT")
            columns.append("meta_json")
        if old_unique:  # UNIQUE (run_id, task_key) forbade retrying a failed task
            _rebuild(conn, "calls", columns)
        if stale_scores:
            _rebuild(conn, "scores", [r[1] for r in conn.execute("PRAGMA table_info(scores)")])
        conn.execute("DROP TABLE IF EXISTS calls_old")


def _alive(host: str, pid: int) -> bool:
    """Whether the process that owns a 'running' run still exists (on this host)."""
    if host != socket.gethostname():
        return True  # cannot tell: trust the record
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
