"""Re-read a stored run with another reader: a new run holding the same answers with new
readings, and no recommender call (every copied call is marked cached, so it costs nothing)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .._errors import StoreError
from ..ranking import Ranking, RankingReader, status_of_reason
from ..store import CallRecord, Store
from ._setup import reader_models


@dataclass
class RereadResult:
    """What re-reading changed: statuses before and after, and how many readings differ."""

    source_run: str
    run_id: str
    reader: str
    calls: int = 0
    changed: int = 0
    before: Counter[str] = field(default_factory=Counter)
    after: Counter[str] = field(default_factory=Counter)
    skipped: int = 0  # failed calls, and calls whose product list the store does not hold
    reasons: Counter[str] = field(default_factory=Counter)  # why answers are not read now
    resumed: int = 0  # calls an interrupted re-reading of the same run with the same reader had copied

    def to_json(self) -> dict[str, Any]:
        return {"source_run": self.source_run, "run_id": self.run_id, "reader": self.reader,
                "calls": self.calls, "changed": self.changed, "before": dict(self.before),
                "after": dict(self.after), "skipped": self.skipped, "unread_reasons": dict(self.reasons),
                "resumed": self.resumed}


def _product_lists(store: Store, run_id: str, calls: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """The product list of each category of a run: recorded with each call (this version),
    or rebuilt from the scores of its readable calls (stores written before)."""
    lists: dict[str, list[tuple[str, str]]] = {}
    for call in calls:
        meta = json.loads(call.get("meta_json") or "{}")
        if meta.get("products"):
            lists.setdefault(call["category"], _pairs(run_id, call, meta["products"]))
    rows: dict[tuple[str, int], tuple[str, str]] = {}
    for row in store.scores(run_id):
        rows[(row["category"], row["product_index"])] = (row["brand"], row["model"])
    for (category, index), name in sorted(rows.items()):
        if category in lists and len(lists[category]) > index:
            continue
        lists.setdefault(category, [])
        if len(lists[category]) == index:
            lists[category].append(name)
    return lists


def reread_run(store: Store, run_id: str, reader: RankingReader) -> RereadResult:
    """Read every answer of ``run_id`` again with ``reader`` into a new run of the same kind;
    an interrupted re-reading of the same run with the same reader is resumed (the calls it
    copied are kept, not read or copied again)."""
    source = store.run(run_id)
    calls = store.calls(run_id)
    _check_calls(run_id, calls)  # before the new run opens: a damaged row leaves nothing half-copied
    products = _product_lists(store, run_id, calls)
    _check_orders(run_id, calls, products)
    # the reader's models by their identity (endpoint and model, or file hash): a re-reading
    # resumed against another server or model file is another input, so another run
    models = [m.identity() for m in reader_models(reader)]
    config = {**{k: v for k, v in source.readable_config().items() if k != "reader_models"},
              "reread_of": run_id, "reader": reader.name, **({"reader_models": models} if models else {})}
    with store.open_run(source.command, config) as run:
        copied = {json.loads(c["meta_json"] or "{}").get("reread_of_call"): c for c in store.calls(run.id)}
        result = RereadResult(source_run=run_id, run_id=run.id, reader=reader.name, resumed=len(copied))
        for call in calls:
            names = products.get(call["category"])
            if call["error"] is not None or call["response_text"] is None or not names:
                result.skipped += 1
                continue
            done, ranking = copied.get(call["id"]), None
            if done is None:
                ranking = reader.read(call["response_text"], names, context=json.loads(call["context_order"]))
            new, old = _reading(ranking if ranking is not None else done), _reading(call)
            result.calls += 1
            result.before[old[0]] += 1
            result.after[new[0]] += 1
            result.changed += old[:2] != new[:2]
            if new[2]:
                result.reasons[new[2].split(" (")[0]] += 1
            if ranking is not None:
                store.record_call(run.id, _copy(call, ranking, names, run_id))
    return result


#: the JSON columns a copied call is rebuilt from, and what each holds
_JSON_COLUMNS = {"context_order": list, "messages_json": list, "config_json": dict, "ranking_json": list}


def _check_calls(run_id: str, calls: list[dict[str, Any]]) -> None:
    """StoreError naming the first answered call whose JSON columns cannot be read (a row another
    tool wrote); failed calls are skipped, never copied."""
    for call in (c for c in calls if c["error"] is None):
        for column, kind in _JSON_COLUMNS.items():
            text: Any = call.get(column)
            if text is None and column == "ranking_json":
                continue
            try:
                value = json.loads(text)
            except (TypeError, ValueError, RecursionError):  # not text, not JSON, nested without end
                value = None
            if not isinstance(value, kind):
                raise _damaged(run_id, call, column, f"not a JSON {'list' if kind is list else 'object'}")


def _pairs(run_id: str, call: dict[str, Any], products: Any) -> list[tuple[str, str]]:
    """A call's recorded product list as (brand, model) pairs; StoreError when it holds anything else."""
    if isinstance(products, list) and all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
                                          for p in products):
        return [(b, m) for b, m in products]
    raise _damaged(run_id, call, "product list", "not a list of [brand, model] pairs")


def _check_orders(run_id: str, calls: list[dict[str, Any]], products: dict[str, list[tuple[str, str]]]) -> None:
    """StoreError naming the first call to be read whose context order is not an order of its
    category's products (the reader takes it to find "source [3]")."""
    for call in calls:
        names = products.get(call["category"])
        if call["error"] is not None or call["response_text"] is None or not names:
            continue  # skipped, never read
        order = json.loads(call["context_order"])
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in order) \
                or sorted(order) != list(range(len(names))):
            raise _damaged(run_id, call, "context_order", f"not an order of its {len(names)} products")


def _damaged(run_id: str, call: dict[str, Any], column: str, why: str) -> StoreError:
    return StoreError(f"call {call['id']} of run {run_id} has a {column} that cannot be read ({why})",
                      "another tool changed the store: start a new one (--store DIR) or restore a copy")


def _reading(of: dict[str, Any] | Ranking | None) -> tuple[str, list[int] | None, str | None]:
    """(status, order or None, stored reason) of a stored call or of a new reading."""
    assert of is not None
    if isinstance(of, Ranking):
        return of.status, list(of.order) if of.parseable else None, of.stored_reason if of.reason else None
    if of["parseable"]:
        return "ranked", json.loads(of["ranking_json"]) if of["ranking_json"] else None, None
    return status_of_reason(of["unparseable_reason"]), None, of["unparseable_reason"]


def _copy(call: dict[str, Any], ranking: Any, names: list[tuple[str, str]], source: str) -> CallRecord:
    meta = json.loads(call.get("meta_json") or "{}")
    meta.update({"reader": ranking.reader, "reread_of": source, "reread_of_call": call["id"],
                 "products": [list(n) for n in names]})
    return CallRecord(
        task_key=call["task_key"], category=call["category"], query=call["query"],
        model_spec=call["model_spec"], model_name=call["model_name"], template=call["template"],
        seed=call["seed"], context_order=json.loads(call["context_order"]),
        messages=json.loads(call["messages_json"]), config=json.loads(call["config_json"]),
        response_text=call["response_text"], finish_reason=call["finish_reason"],
        prompt_tokens=call["prompt_tokens"], completion_tokens=call["completion_tokens"],
        latency_s=call["latency_s"], cached=True, cache_key=call["cache_key"],
        parseable=ranking.parseable, unparseable_reason=ranking.stored_reason,
        ranking=ranking.order if ranking.parseable else None, products=names, meta=meta,
    )
