"""The SQLite results store: runs, calls, responses, scores; resumability lives here."""

from ._store import (
    CACHE_NAME,
    DB_NAME,
    DEFAULT_STORE_DIR,
    STORE_ENV,
    CallRecord,
    LiveRun,
    RunRecord,
    Store,
    config_hash,
    content_hash,
    store_dir,
)

__all__ = [
    "CACHE_NAME",
    "DB_NAME",
    "DEFAULT_STORE_DIR",
    "STORE_ENV",
    "CallRecord",
    "LiveRun",
    "RunRecord",
    "Store",
    "config_hash",
    "content_hash",
    "store_dir",
]
