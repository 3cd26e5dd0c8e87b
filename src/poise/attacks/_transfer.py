"""Transfer: attack runs' best injections re-scored on another model, prompt template or
defended engine, without searching (the same fresh final orders as the attack's figures)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import CatalogError, PoiseError, StoreError
from ..catalog import Category, load_catalog
from ..engine import Recommender
from ..ranking import RankingReader
from ..store import ResultError, RunRecord, Store, StoredAttack, StoredTransfer, TransferItem
from ._evaluate import Evaluator, pages_sha
from ._run import final_scores
from .base import replaces_page

# what a transfer reads of an attack run's attack.json
SOURCE_FIELDS = ("category", "product", "injection", "score_before", "score_after")


@dataclass(frozen=True)
class TransferSource:
    """An attack run to carry over: its record, its attack.json and its category (read back
    from the catalog the attack ran on)."""

    record: RunRecord
    attack: StoredAttack
    category: Category


def load_sources(store: Store, run_ids: Sequence[str], allow_outside_files: bool = False) -> list[TransferSource]:
    """The attack runs ``run_ids`` as transfer sources; one clear error for a run that is not
    a finished attack or whose catalog is gone."""
    twice = next((rid for k, rid in enumerate(run_ids) if rid in run_ids[:k]), None)
    if twice is not None:
        raise PoiseError(f"run {twice} is named twice", "name each attack run once")
    return [_source(store, rid, allow_outside_files) for rid in run_ids]


def _source(store: Store, rid: str, allow_outside_files: bool) -> TransferSource:
    record = store.run(rid)
    record.readable_config()  # its catalog and seed are read from it
    try:
        attack = store.load_result(rid, StoredAttack, need=SOURCE_FIELDS) if record.command == "attack" else None
    except ResultError as exc:
        raise StoreError(f"the attack.json of run {rid} cannot be read: {exc.message}",
                         "run the attack again, or pass another attack run") from None
    if attack is None:
        raise _not_a_source(record)
    if attack.product is None or attack.injection is None:
        raise StoreError(f"the attack.json of run {rid} names no product or no injection",
                         "run the attack again, or pass another attack run")
    if attack.run_id is None:
        attack = attack.model_copy(update={"run_id": rid})
    cat = load_catalog(attack_catalog(record, store.dir), allow_outside_files=allow_outside_files)
    source = TransferSource(record, attack, cat.category(attack.category or ""))
    target_index(source)  # a catalog changed since the attack: refused before any run opens
    return source


def target_index(source: TransferSource) -> int:
    """The promoted product's index in the source's category, checked against the attack's record."""
    src, cat = source.attack, source.category
    assert src.product is not None  # checked by _source
    index = src.product.index if src.product.index is not None else -1
    if not 0 <= index < len(cat.products):
        raise PoiseError(f"the catalog of run {src.run_id} has changed: it has no product {index}",
                         "put back the catalog the attack ran on")
    p = cat.products[index]
    if (p.brand, p.model) != (src.product.brand, src.product.model):
        raise PoiseError(f"the catalog of run {src.run_id} has changed: product {index} is now {p.name!r}",
                         "put back the catalog the attack ran on")
    if src.pages_sha is not None and src.pages_sha != pages_sha(cat):  # an injection is measured on its pages
        raise PoiseError(f"the catalog of run {src.run_id} has changed: the products or pages of {cat.name!r} are "
                         "not the ones the attack ran on", "put back the catalog the attack ran on")
    return index


def _not_a_source(record: RunRecord) -> StoreError:
    """Why a run cannot be transferred, and what to pass or do instead."""
    if record.command == "attack" and record.status != "finished":
        return StoreError(f"run {record.id} is an attack that did not finish ({record.status})",
                          "run the same `poise attack` command again to finish it, then transfer it")
    if record.command == "attack" and record.config.get("reread_of"):  # `poise reread` writes no attack.json
        source = record.config["reread_of"]
        return StoreError(f"run {record.id} is a re-reading of attack run {source} (`poise reread`): it holds the "
                          "answers read again, not an injection to transfer", f"transfer run {source} itself")
    if record.command == "attack":  # finished, but its result file is gone
        return StoreError(f"run {record.id} is a finished attack, but its attack.json is missing from the store",
                          "restore the store's runs folder from a copy, or pass another attack run")
    if record.command == "compete":
        return StoreError(f"run {record.id} is a competition: transfer carries over one attack's injection",
                          "pass the id of a run of `poise attack` without --compete")
    return StoreError(f"run {record.id} is not a finished attack run", "pass the id of a run of `poise attack`")


def attack_catalog(record: RunRecord, store_dir: Path) -> str | None:
    """The catalog an attack ran on: the bundled one (None), or its path. Runs since this
    version record an absolute path; an older run's relative path is tried against the folder
    the store lives in (where the attack most likely ran), the store itself, then here."""
    ref = record.config.get("catalog")
    if ref in (None, "sample"):
        return None
    path = Path(ref).expanduser()
    tried = [path] if path.is_absolute() else list(dict.fromkeys(
        p.resolve() for p in (store_dir.parent / path, store_dir / path, Path.cwd() / path)))
    for candidate in tried:
        if candidate.exists():
            return str(candidate)
    raise CatalogError(
        f"the catalog of attack run {record.id} is not found: {ref!r} (looked at "
        + ", ".join(str(p) for p in tried) + ")",
        "put the catalog back where the attack read it, or run `poise transfer` from the folder the attack ran in")


def _finite(value: Any) -> Any:
    """NaN (no readable answer) as null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def transfer_one(engine: Recommender, source: TransferSource, *, store: Store, run_id: str, final_orders: int,
                 reader: RankingReader | None = None, on_query: Callable[[], None] | None = None) -> TransferItem:
    """One source's injection, and no injection, on ``final_orders`` fresh orders of ``engine``."""
    src, cat = source.attack, source.category
    assert src.product is not None and src.injection is not None  # checked by load_sources
    index = target_index(source)
    p = cat.products[index]
    ev = Evaluator(engine, cat, store=store, run_id=run_id, query=src.query, seed=source.record.config.get("seed", 0),
                   reader=reader, on_query=on_query)
    ev.target = index
    ev.replaces_page = replaces_page(src.method)  # a rewritten page replaces the page, as in its attack
    final = final_scores(ev, final_orders, src.injection, key=lambda side, k: f"{src.run_id}/{side}/order={k}",
                         phase="transfer", meta={"source_run": src.run_id}, ask_without=True)
    fb, fa = final["before"], final["after"]
    return TransferItem(**{k: _finite(v) for k, v in {
        "category": cat.name, "product": p.name, "source_run": src.run_id, "injection": src.injection,
        "source_before": src.score_before, "source_after": src.score_after,
        "target_before": fb.mean_score, "target_after": fa.mean_score,
        "target_before_ci": fb.ci(0), "target_after_ci": fa.ci(1),
        "target_rank_before": fb.mean_rank, "target_rank_after": fa.mean_rank,
        "target_first_rate_after": fa.first_rate,
        "target_unparseable_before": fb.unparseable, "target_unparseable_after": fa.unparseable}.items()})


def run_transfer(engine: Recommender, sources: Sequence[TransferSource], *, store: Store, run_id: str,
                 final_orders: int = 10, reader: RankingReader | None = None, model: str | None = None,
                 template: str | None = None, on_query: Callable[[], None] | None = None) -> StoredTransfer:
    """Re-score every source's best injection on ``engine``; writes ``transfer.json`` into the
    run's folder and returns it. Resumable: a query the run already made is read back."""
    items = [transfer_one(engine, src, store=store, run_id=run_id, final_orders=final_orders, reader=reader,
                          on_query=on_query) for src in sources]
    result = StoredTransfer(run_id=run_id, source_runs=[s.record.id for s in sources], model=model,
                            template=template, items=items)
    store.save_result(run_id, result)
    return result
