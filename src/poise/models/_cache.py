"""A persistent request cache: a rerun of the same request costs no model time.

The key is built only from what changes the output: the backend's identity (model file
or endpoint and model name), the messages and the sampling parameters. Never a key or
a header: secrets are not part of the identity and are never written here.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._errors import StoreError
from .._sqlite import connect_wal, retry_locked
from ._types import ChatMessage, ChatResponse, GenerateConfig


def cache_key(identity: dict[str, Any], messages: list[ChatMessage], config: GenerateConfig) -> str:
    """SHA-256 of the canonical JSON of everything that changes a response."""
    payload = {
        "identity": identity,
        "messages": [m.model_dump() for m in messages],
        # a field added later is left out while unset, so older caches keep their keys
        "config": config.model_dump(mode="json", exclude={"json_schema"} if config.json_schema is None else None),
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class RequestCache:
    """Responses keyed by :func:`cache_key`, in one SQLite file shared by all runs."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = connect_wal(self.path)
            retry_locked(lambda: self._conn.execute(
                "CREATE TABLE IF NOT EXISTS responses ("
                " key TEXT PRIMARY KEY, response_json TEXT NOT NULL, created_at REAL NOT NULL)"
            ))
            self._conn.commit()
            columns = {r[1] for r in self._conn.execute("PRAGMA table_info(responses)")}
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"cannot open the request cache at {self.path}: {exc}",
                "choose a writable folder with --store or POISE_HOME",
            ) from exc
        if not {"key", "response_json"} <= columns:  # another tool's table of the same name
            self._conn.close()
            raise StoreError(
                f"the request cache at {self.path} holds a responses table poise did not write",
                "move it away (it only saves model calls), or choose another folder with --store",
            )
        self._lock = threading.Lock()

    def get(self, key: str) -> ChatResponse | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT response_json FROM responses WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        try:
            response = ChatResponse.model_validate_json(row[0])
        except ValidationError:  # damaged, or another tool's: a miss, asked again and replaced by put
            return None
        return response.model_copy(update={"cached": True, "cache_key": key})

    def put(self, key: str, response: ChatResponse) -> None:
        stored = response.model_copy(update={"cached": False, "cache_key": None})
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO responses (key, response_json, created_at) VALUES (?, ?, ?)",
                (key, stored.model_dump_json(), time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            count: int = self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            return count

    def close(self) -> None:
        with self._lock:
            self._conn.close()
