"""Follow-ups, second batch: the request cache and the store opened by several at once, the
reason a sweep records after SIGTERM, the rounds of a competition in its Markdown report, and
what a detection defense under ``pairwise`` flagged. Each test failed before its fix; the model
is never loaded (wire fakes on loopback)."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from poise.models import RequestCache
from poise.models._types import ChatResponse
from poise.store import Store


# -- 1. the request cache and the store opened by several at once -------------------------------------------------
def open_cache(folder: Path) -> None:
    cache = RequestCache(folder / "cache.sqlite")
    cache.put(f"key-{os.getpid()}-{threading.get_ident()}", ChatResponse(text="1. Oster", model="m"))
    assert len(cache) >= 1
    cache.close()


def open_store(folder: Path) -> None:
    with Store(folder / "store") as store:
        store.start_run("natural", {"pid": os.getpid(), "thread": threading.get_ident()})
    open_cache(folder / "store")


@pytest.mark.parametrize(("opener", "db"), [(open_cache, "cache.sqlite"), (open_store, "store/poise.sqlite")])
def test_opening_waits_for_a_concurrent_opener_instead_of_failing(tmp_path, opener, db):
    """``PRAGMA journal_mode=WAL`` on a new file said "database is locked" at once (SQLite's
    busy timeout does not apply there) while another opener was converting the same file:
    here another connection is in the middle of a write, as that opener is, for 0.3 s."""
    path = tmp_path / db
    path.parent.mkdir(parents=True, exist_ok=True)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.3, lambda: (other.execute("ROLLBACK"), other.close()))
    timer.start()
    try:
        opener(tmp_path)
    finally:
        timer.join()


def _open_in_rounds(folder: str, rounds: int, barrier: Any, errors: Any) -> None:
    failed = []
    for n in range(rounds):
        barrier.wait()
        try:
            open_store(Path(folder) / str(n))
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the test
            failed.append(f"round {n}: {exc}")
    errors.put(failed)


def test_processes_opening_a_new_store_and_cache_together_all_succeed(tmp_path):
    """Six processes open the same new store and its request cache at once, then write, in
    each of 30 rounds (a new folder each round): before the fix about one round in ten lost
    an opener to "database is locked"."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(6)
    errors = context.Queue()
    workers = [context.Process(target=_open_in_rounds, args=(str(tmp_path), 30, barrier, errors)) for _ in range(6)]
    for worker in workers:
        worker.start()
    failed = [line for _ in workers for line in errors.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=60)
    assert failed == []
    assert all(worker.exitcode == 0 for worker in workers)

