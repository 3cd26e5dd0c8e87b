"""The store's schema, its migrations, and who owns a running run."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
from pathlib import Path

from .._errors import StoreError

SCHEMA = """
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
    pid           INTEGER NOT NULL,
    owner_start   TEXT
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


#: The store's layout, kept in SQLite's ``user_version``: a store of a higher one is a newer poise's,
#: which this one neither writes nor migrates. 0: a store from before it was recorded.
STORE_SCHEMA_VERSION = 1


def check_run_id(run_id: str) -> None:
    """StoreError unless ``run_id`` can name a folder under ``runs/``: letters, digits, '_', '.'
    and '-', not led by a dot or a dash ('..' would be the store's own folder)."""
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", run_id):
        raise StoreError(f"not a run id: {run_id!r}", "run `poise runs` to list the runs")


def _check_version(conn: sqlite3.Connection, db_path: Path) -> None:
    """Refuse to write a newer poise's store (StoreError); mark an older one as this version's
    (the migration that follows brings it there)."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > STORE_SCHEMA_VERSION:
        raise StoreError(f"the results store at {db_path} was written by a newer poise (store schema {version}; "
                         f"this poise writes schema {STORE_SCHEMA_VERSION}), so it is not written here",
                         "upgrade poise, or pass another folder with --store")
    if version < STORE_SCHEMA_VERSION:
        conn.execute(f"PRAGMA user_version = {STORE_SCHEMA_VERSION}")


def _table_sql(name: str) -> str:
    create = SCHEMA[SCHEMA.index(f"CREATE TABLE IF NOT EXISTS {name} "):]
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
    if "runs" in tables and "owner_start" not in {r[1] for r in conn.execute("PRAGMA table_info(runs)")}:
        with conn:
            conn.execute("ALTER TABLE runs ADD COLUMN owner_start TEXT")
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


def _connect_read_only(db_path: Path) -> sqlite3.Connection:
    """The database opened with ``mode=ro``: never written, never migrated. A WAL store in
    a folder this process may not write (no -shm file can be made) is opened immutable."""
    uri = db_path.resolve().as_uri()
    for query in ("?mode=ro", "?mode=ro&immutable=1"):
        conn = sqlite3.connect(uri + query, uri=True, check_same_thread=False, timeout=30)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone():
                raise sqlite3.DatabaseError("it holds no runs table")
            return conn
        except sqlite3.OperationalError:
            conn.close()
            if query.endswith("immutable=1"):
                raise
        except BaseException:
            conn.close()
            raise
    raise AssertionError("unreachable")


def process_start(pid: int) -> str | None:
    """When a process started (Linux: clock ticks since boot, from /proc), so a pid reused by
    another process is not taken for a run's owner; None where it cannot be told."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def _alive(host: str, pid: int, started: str | None = None) -> bool:
    """Whether the process that owns a 'running' run still exists (on this host), and is the
    same process that started it (where its start time was recorded)."""
    if host != socket.gethostname():
        return True  # cannot tell: trust the record
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except (OverflowError, ValueError):
        return False
    if started is not None:
        now = process_start(pid)
        if now is not None and now != started:
            return False  # the pid now belongs to another process
    return True
