"""One recommendation, recorded: engine -> ranking -> store."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import ModelError
from ..catalog import Category, Document
from ..engine import EngineResult, Recommender, context_order
from ..ranking import HEURISTIC, Ranking, RankingReader
from ..store import CallRecord, Store


@dataclass(frozen=True)
class Recommendation:
    """A response, the ranking read from it, and where it was recorded."""

    run_id: str
    call_id: int
    result: EngineResult
    ranking: Ranking

    def ranked_products(self) -> list[dict[str, Any]]:
        """Every product best first with its score; unlisted ones last with score 0."""
        products = self.result.products
        scores = self.ranking.scores if self.ranking.parseable else (0,) * len(products)
        listed = list(self.ranking.order)
        rest = [i for i in range(len(products)) if i not in listed]
        return [
            {"brand": products[i].brand, "model": products[i].model, "score": scores[i],
             "rank": j if i in listed else None}
            for j, i in enumerate(listed + rest, start=1)
        ]

    def to_json(self) -> dict[str, Any]:
        r = self.result
        return {
            "run_id": self.run_id,
            "category": r.category,
            "query": r.query,
            "model": self.result.response.model,
            "seed": r.seed,
            "template": r.template,
            "response": r.response.text,
            "context_order": [
                {"position": p, "brand": r.products[i].brand, "model": r.products[i].model}
                for p, i in enumerate(r.context_order, start=1)
            ],
            "parseable": self.ranking.parseable,
            "status": self.ranking.status,
            "unparseable_reason": self.ranking.reason,
            "reader": self.ranking.reader,
            "ranking": self.ranked_products(),
            "usage": {
                "prompt_tokens": r.response.usage.prompt_tokens,
                "completion_tokens": r.response.usage.completion_tokens,
                "latency_s": round(r.response.latency_s, 3),
                "cached": r.response.cached,
            },
        }


def call_record(task_key: str, result: EngineResult, ranking: Ranking, model_spec: str) -> CallRecord:
    response = result.response
    return CallRecord(
        task_key=task_key, category=result.category, query=result.query, model_spec=model_spec,
        model_name=response.model, template=result.template, seed=result.seed,
        context_order=result.context_order, messages=[m.model_dump() for m in result.messages],
        config=result.config.model_dump(mode="json"), response_text=response.text,
        finish_reason=response.finish_reason, prompt_tokens=response.usage.prompt_tokens,
        completion_tokens=response.usage.completion_tokens, latency_s=response.latency_s,
        cached=response.cached, cache_key=response.cache_key, parseable=ranking.parseable,
        unparseable_reason=ranking.stored_reason, ranking=ranking.order,
        products=[(p.brand, p.model) for p in result.products],
        meta={"reader": ranking.reader, "products": [[p.brand, p.model] for p in result.products]},
    )


def _sent_config(engine: Recommender, seed: int) -> Any:
    """The sampling a call was sent with: the engine's, seeded by the call's seed unless fixed."""
    return engine.config if engine.config.seed is not None else engine.config.model_copy(update={"seed": seed})


def _messages_for_the_record(engine: Recommender, category: Category, query: str, order: Sequence[int],
                             documents: Sequence[Document] | None) -> list[Any]:
    """The messages of a call that failed: a detection defense that cannot reach its own model
    either records what the engine under it would have been sent."""
    while True:
        try:
            return engine.build_messages(category, query, order, documents)
        except ModelError:
            inner = getattr(engine, "inner", None)
            if inner is None:
                raise
            engine = inner


def recommend(
    engine: Recommender,
    category: Category,
    *,
    store: Store,
    run_id: str,
    query: str | None = None,
    seed: int = 0,
    order: Sequence[int] | None = None,
    documents: Sequence[Document] | None = None,
    task_key: str | None = None,
    meta: dict[str, Any] | None = None,
    reader: RankingReader | None = None,
) -> Recommendation:
    """Ask the engine once, read the ranking, and record the call (a failure is recorded too)."""
    task_key = task_key or f"{category.name}/seed={seed}"
    try:
        result = engine.recommend(category, query=query, seed=seed, order=order, documents=documents)
    except ModelError as exc:
        order = list(order) if order is not None else context_order(len(category.products), seed)
        messages = _messages_for_the_record(engine, category, query or category.default_query, order, documents)
        store.record_call(run_id, CallRecord(
            task_key=task_key, category=category.name, query=query or category.default_query,
            model_spec=engine.model.spec, template=engine.template.name, seed=seed,
            context_order=order, messages=[m.model_dump() for m in messages],
            config=_sent_config(engine, seed).model_dump(mode="json"), error=exc.one_line(),
            products=[(p.brand, p.model) for p in category.products], meta=meta,
        ))
        raise
    # an aggregating defense gives its own ranking; any other answer is read
    ranking = getattr(result, "ranking", None) or (reader or HEURISTIC).read(result.response.text, result.products,
                                                                           context=result.context_order)
    record = call_record(task_key, result, ranking, engine.model.spec)
    # how many model calls the answer took (an aggregating defense asks several times), unless
    # the defense's own report says (a detector's calls included)
    calls = len(getattr(result, "calls", ()))
    defended = {"defenses": engine.identity().get("defenses", []), **({"model_calls": calls} if calls else {}),
                **getattr(result, "report", {})}
    if meta is not None or defended["defenses"]:
        record = dataclasses.replace(record, meta={**(meta or {}), **(record.meta or {}),
                                                    **({"defense": defended} if defended["defenses"] else {})})
    call_id = store.record_call(run_id, record)
    return Recommendation(run_id=run_id, call_id=call_id, result=result, ranking=ranking)
