"""Opening a SQLite file that other connections (threads, sweep jobs, processes) open at once.

``sqlite3.connect(timeout=...)`` sets a busy timeout, but SQLite does not always wait on it:
a connection that holds a shared lock and needs a write lock while another holds one gets
"database is locked" at once (waiting could deadlock). ``PRAGMA journal_mode=WAL`` on a new
file is such a step when a second opener converts the same file at the same moment, so the
steps of opening are retried here, briefly, on that error.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

TIMEOUT_S = 30.0
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def retry_locked(step: Callable[[], T], timeout: float = TIMEOUT_S) -> T:
    """``step()``, retried while SQLite says the database is locked, for up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            code: int = getattr(exc, "sqlite_errorcode", 0)
            if (code & 0xFF) not in _BUSY or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def connect_wal(path: str | Path, timeout: float = TIMEOUT_S) -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode, with a busy timeout of ``timeout`` s, usable from
    any thread; a concurrent opener converting the same new file is waited for."""
    conn = sqlite3.connect(path, check_same_thread=False, timeout=timeout)
    try:
        retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone(), timeout)
    except BaseException:
        conn.close()
        raise
    return conn
