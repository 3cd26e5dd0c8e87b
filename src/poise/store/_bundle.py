"""A run as plain data, to carry between stores: its record, its calls (with what their
scores are computed from) and the files of its folder.

A sweep's Ray workers run a job against a private store seeded with the driver's rows of
that run (so a resumed job asks nothing twice), and send back what the driver alone writes
into the real store. ``export_run`` reads a bundle; ``import_run`` merges one, in one
transaction: the run is created (with its id) when the store lacks it, else its status is
updated; the bundle's calls are added (their ids are the receiving store's own); its files
are written whole into the run's folder.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import StoreError
from ._results import ResultError, StoredNatural, parse_result, write_whole
from ._schema import check_run_id, process_start
from ._store import CallRecord, _insert_call, config_hash

if TYPE_CHECKING:
    from ._store import Store

_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
STATUSES = ("running", "finished", "failed", "interrupted")


@dataclass(frozen=True)
class RunBundle:
    """One run's rows and files: what ``Store.export_run`` gives and ``Store.import_run`` takes."""

    id: str
    command: str
    config: dict[str, Any]
    status: str
    created_at: float
    finished_at: float | None = None
    error: str | None = None
    poise_version: str = ""
    calls: tuple[CallRecord, ...] = ()
    files: dict[str, bytes] = field(default_factory=dict)  # name in the run's folder -> content


def export_run(store: Store, run_id: str, *, calls: bool = True) -> RunBundle:
    """The run ``run_id`` as a bundle (without its calls when ``calls`` is false)."""
    rows = store._dicts("SELECT * FROM runs WHERE id = ?", (run_id,))
    if not rows:
        raise StoreError(f"no run {run_id!r} in {store.db_path}", "run `poise runs` to list the runs")
    run = rows[0]
    records = tuple(_records(store, run_id)) if calls else ()
    folder = store.dir / "runs" / run_id
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir())
             if p.is_file() and _FILE_NAME.fullmatch(p.name)} if folder.is_dir() else {}
    return RunBundle(id=run["id"], command=run["command"], config=json.loads(run["config_json"]),
                     status=run["status"], created_at=run["created_at"], finished_at=run["finished_at"],
                     error=run["error"], poise_version=run["poise_version"], calls=records, files=files)


def _records(store: Store, run_id: str) -> list[CallRecord]:
    """Every call of a run, oldest first, as the CallRecord that wrote it."""
    products: dict[int, list[tuple[str, str]]] = {}
    for s in store._dicts("SELECT s.call_id, s.brand, s.model FROM scores s JOIN calls c ON c.id = s.call_id"
                          " WHERE c.run_id = ? ORDER BY s.call_id, s.product_index", (run_id,)):
        products.setdefault(s["call_id"], []).append((s["brand"], s["model"]))
    out = []
    for c in store.calls(run_id):
        out.append(CallRecord(
            task_key=c["task_key"], category=c["category"], query=c["query"], model_spec=c["model_spec"],
            context_order=json.loads(c["context_order"]), messages=json.loads(c["messages_json"]),
            config=json.loads(c["config_json"]), model_name=c["model_name"], template=c["template"],
            seed=c["seed"], response_text=c["response_text"], finish_reason=c["finish_reason"],
            prompt_tokens=c["prompt_tokens"], completion_tokens=c["completion_tokens"], latency_s=c["latency_s"],
            cached=bool(c["cached"]), cache_key=c["cache_key"],
            parseable=None if c["parseable"] is None else bool(c["parseable"]),
            unparseable_reason=c["unparseable_reason"],
            ranking=None if c["ranking_json"] is None else json.loads(c["ranking_json"]), error=c["error"],
            products=tuple(products.get(c["id"], ())),
            meta=None if c.get("meta_json") is None else json.loads(c["meta_json"])))
    return out


def import_run(store: Store, bundle: RunBundle) -> None:
    """Merge ``bundle`` into ``store``: the run created or its status updated, its calls added,
    in one transaction; then its files written (each whole)."""
    if bundle.status not in STATUSES:
        raise StoreError(f"a run bundle with an unknown status {bundle.status!r}")
    bad = [name for name in bundle.files if not _FILE_NAME.fullmatch(name)]
    if bad:
        raise StoreError(f"a run bundle names a file outside its run's folder: {bad[0]!r}")
    check_run_id(bundle.id)  # before anything is written: '..' would put its files in the store's folder
    where = store.dir / "runs" / bundle.id
    files = {name: _moved(name, data, where) for name, data in bundle.files.items()}  # a damaged one: nothing written
    with store._tx() as c:
        row = c.execute("SELECT command, config_hash FROM runs WHERE id = ?", (bundle.id,)).fetchone()
        if row is None:
            from .. import __version__

            c.execute("INSERT INTO runs (id, command, status, config_json, config_hash, created_at, finished_at,"
                      " error, poise_version, host, pid, owner_start) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (bundle.id, bundle.command, bundle.status, json.dumps(bundle.config, sort_keys=True, default=str),
                       config_hash(bundle.config), bundle.created_at, bundle.finished_at, bundle.error,
                       bundle.poise_version or __version__, socket.gethostname(), os.getpid(),
                       process_start(os.getpid())))
        elif tuple(row) != (bundle.command, config_hash(bundle.config)):
            raise StoreError(f"run {bundle.id} in {store.db_path} is another run than the bundle's "
                             "(a different command or configuration)")
        else:
            c.execute("UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                      (bundle.status, bundle.finished_at, bundle.error, bundle.id))
        for call in bundle.calls:
            _insert_call(c, bundle.id, call)
    folder = store.run_dir(bundle.id) if files else None
    for name, data in files.items():
        assert folder is not None
        write_whole(folder / name, data)


def _moved(name: str, data: bytes, folder: Path) -> bytes:
    """A file's content in its new folder: natural.json names its plots by path."""
    if name != StoredNatural.FILE:
        return data
    try:
        stored = parse_result(StoredNatural, json.loads(data))
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, nested without end
        raise StoreError(f"a run bundle's {name} cannot be read ({type(exc).__name__})") from None
    except ResultError as exc:
        raise StoreError(f"a run bundle's {name} cannot be read ({exc.message})") from None
    stored.plots = [str(folder / p.replace("\\", "/").rsplit("/", 1)[-1]) for p in stored.plots]
    return json.dumps(stored.model_dump(mode="json"), ensure_ascii=False, indent=1).encode("utf-8")
