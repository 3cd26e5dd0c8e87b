"""The SQLite results store: runs, calls, responses, scores; resumability lives here."""

from ._bundle import RunBundle
from ._results import (
    RESULT_SCHEMA_VERSION,
    ProductRef,
    ResultError,
    ResultFile,
    StoredAttack,
    StoredCandidate,
    StoredDefend,
    StoredNatural,
    StoredTransfer,
    TransferItem,
    parse_result,
)
from ._run import RunContext
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
    "RESULT_SCHEMA_VERSION",
    "STORE_ENV",
    "CallRecord",
    "LiveRun",
    "ProductRef",
    "ResultError",
    "ResultFile",
    "RunBundle",
    "RunContext",
    "RunRecord",
    "Store",
    "StoredAttack",
    "StoredCandidate",
    "StoredDefend",
    "StoredNatural",
    "StoredTransfer",
    "TransferItem",
    "config_hash",
    "content_hash",
    "parse_result",
    "store_dir",
]
