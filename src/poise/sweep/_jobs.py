"""One job made ready to run: its models built (checked, not loaded), its engine, and the
configuration its run records — the same as ``poise natural`` / ``attack`` / ``defend``
record for the same options (``Job.argv``), so the store's resume rules apply to it and every
report and command reads it as an ordinary run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._errors import PoiseError
from ..catalog import Catalog, Category, load_catalog
from ..experiments._setup import ModelOpener, attach_cache, load_template
from ..models import ChatModel, RetryPolicy, check_model_spec, get_model
from ..store import RunContext, Store, config_hash
from ._base import Job, SweepError, in_file_terms
from ._endpoints import Endpoints, PooledModel

Tick = Callable[[], None]


class ModelSource:
    """Builds the models of a sweep's jobs: ``openai:`` specs over the given endpoints (all of
    them shared by every job when there are several), other specs as the commands do."""

    def __init__(self, base_urls: list[str], *, endpoint_limit: int = 4) -> None:
        self.base_urls = list(dict.fromkeys(base_urls))
        self.endpoint_limit = endpoint_limit
        self.pools: dict[str, Endpoints] = {}

    def open(self, spec: str, max_attempts: int, timeout: float, concurrency: int | None = None) -> ChatModel:
        retry = RetryPolicy(max_attempts=max_attempts, timeout_s=timeout)
        if check_model_spec(spec).startswith("openai:") and len(self.base_urls) > 1:
            name = spec.strip().removeprefix("openai:")
            if name not in self.pools:
                self.pools[name] = Endpoints(name, self.base_urls, limit=self.endpoint_limit, retry=retry)
            return PooledModel(spec.strip(), self.pools[name], retry=retry)
        base_url = self.base_urls[0] if self.base_urls else None
        return get_model(spec, base_url=base_url, retry=retry, max_concurrency=concurrency)

    def stats(self) -> dict[str, list[dict[str, Any]]]:
        return {name: pool.stats() for name, pool in self.pools.items()}

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()


@dataclass
class Prepared:
    """A job ready to run: ``run(store, run, tick)`` does the work inside ``store.open_run``."""

    job: Job
    command: str
    config: dict[str, Any]
    models: list[Any]
    run: Callable[[Store, RunContext, Tick], None]
    most_queries: int
    prompt_tokens: int  # a rough estimate per recommender query (characters / 4)
    state: str = "pending"
    run_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """How the store knows the run: its command and the hash of its configuration."""
        return self.command, config_hash(self.config)

    @property
    def in_process(self) -> bool:
        """Whether a model of this job runs in this process (llama.cpp): such jobs run one at a
        time (see ``LocalExecutor``)."""
        from ..models import LlamaCppModel

        return any(isinstance(m, LlamaCppModel) for m in self.models)

    def estimate(self) -> dict[str, int]:
        """At most how many model queries the job makes, and about how many tokens (each
        query's prompt estimated from its pages, plus at most max_tokens of answer); a
        defense's extra calls (a paraphrase, pairwise comparisons) come on top."""
        per_query = self.prompt_tokens + self.job.options.max_tokens
        return {"queries": self.most_queries, "tokens": self.most_queries * per_query}

    def usage(self) -> dict[str, int]:
        """What this job's models spent in this process (cache hits cost nothing)."""
        seen = {id(m): m for m in self.models if m is not None and hasattr(m, "usage")}
        calls = sum(m.usage.calls for m in seen.values())
        hits = sum(m.usage.cache_hits for m in seen.values())
        tokens = sum(m.usage.prompt_tokens + m.usage.completion_tokens for m in seen.values())
        return {"calls": calls, "cache_hits": hits, "tokens": tokens}


class _Catalogs:
    """Each catalog read once per sweep."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str | None, bool], Catalog] = {}

    def category(self, job: Job) -> Category:
        key = (job.options.catalog, job.options.allow_outside_files)
        if key not in self._cache:
            self._cache[key] = load_catalog(key[0], allow_outside_files=key[1])
        return self._cache[key].category(job.category)


def prepare_all(jobs: list[Job], source: ModelSource, where: str | None = None) -> list[Prepared]:
    """Every job built and checked (categories, methods, parameters, defenses, specs) before
    anything runs: a bad value stops the sweep here with one line. With ``where`` (the sweep
    file), that line names the file and the job, in the file's terms (``in_file_terms``)."""
    catalogs = _Catalogs()
    prepared = []
    for job in jobs:
        try:
            prepared.append(prepare(job, source, catalogs.category(job)))
        except PoiseError as exc:
            if where is None:
                raise
            raise SweepError(f"{where}: job {job.label!r}: {in_file_terms(exc.message)}",
                             in_file_terms(exc.hint) if exc.hint else None) from exc
    return _one_per_run(prepared)


def _one_per_run(prepared: list[Prepared]) -> list[Prepared]:
    """The first job of each run: jobs the grid tells apart (a category named 'blender' and
    'BLENDER') may be the same run, which would otherwise run twice (at once, with --jobs).
    The models of a job left out are closed."""
    kept: dict[tuple[str, str], Prepared] = {}
    for p in prepared:
        kept.setdefault(p.key, p)
    in_use = {id(m) for p in kept.values() for m in p.models}
    for p in prepared:
        if kept[p.key] is not p:
            for m in {id(m): m for m in p.models if m is not None and id(m) not in in_use}.values():
                m.close()
    return list(kept.values())


def prepare(job: Job, source: ModelSource, category: Category) -> Prepared:
    builder = {"natural": _natural, "attack": _attack, "defend": _defend}[job.kind]
    return builder(job, source, category)


def _opener(job: Job, source: ModelSource) -> ModelOpener:
    o = job.options

    def open_model(spec: str, *, concurrency: int | None = None) -> ChatModel:
        return source.open(spec, o.max_attempts, o.timeout, concurrency=concurrency)

    return open_model


def _common(job: Job, source: ModelSource) -> dict[str, Any]:
    """What every builder takes from a job, as the commands take it from their options."""
    o = job.options
    return {"model": job.model, "open_model": _opener(job, source), "seed": job.seed, "catalog": o.catalog,
            "template": load_template(None if job.template == "default" else job.template),
            "max_tokens": o.max_tokens, "reader": o.reader}


def _tokens(category: Category) -> int:
    text = sum(len(p.document.text) + len(p.brand) + len(p.model) for p in category.products)
    return (text + len(category.default_query) + 600) // 4


def _natural(job: Job, source: ModelSource, cat: Category) -> Prepared:
    from ..experiments import natural_setup

    o = job.options
    setup = natural_setup([cat], **_common(job, source), trials=o.trials, concurrency=o.concurrency,
                          rewrite_model=o.rewrite_model, defenses=job.defenses, bootstrap=o.bootstrap)

    def run(db: Store, ctx: RunContext, tick: Tick) -> None:
        setup.run_trials(db, ctx.id, tick)
        setup.save(db, ctx.id)

    return Prepared(job, setup.command, setup.config, setup.models, run, setup.most_queries, _tokens(cat))


def _attack(job: Job, source: ModelSource, cat: Category) -> Prepared:
    from ..experiments import attack_setup

    o = job.options
    setup = attack_setup(cat, **_common(job, source), method=job.method or "strategies", params=job.params,
                         product=o.product, attacker=o.attacker, budget=o.budget, attacker_budget=o.attacker_budget,
                         token_budget=o.token_budget, responses=o.responses, final_orders=o.final_orders,
                         selection_orders=o.selection_orders, confirm=o.confirm, defenses=job.defenses,
                         verify_stop=o.verify_stop, shared_orders=o.shared_orders, early_stop=o.early_stop)

    def run(db: Store, ctx: RunContext, tick: Tick) -> None:
        stored = setup.run(db, ctx.id, tick)
        prepared.extra.update({"score_before": stored.score_before, "score_after": stored.score_after,
                               "success": stored.success})

    prepared = Prepared(job, setup.command, setup.config, setup.models, run, setup.most_queries, _tokens(cat))
    return prepared


def _defend(job: Job, source: ModelSource, cat: Category) -> Prepared:
    from ..experiments import defend_setup

    o = job.options
    setup = defend_setup([cat], **_common(job, source), defenses=job.defenses, method=job.method or "strategies",
                         params=job.params, attacker=o.attacker, budget=o.budget, orders=o.orders,
                         final_orders=o.final_orders, selection_orders=o.selection_orders, responses=o.responses,
                         confirm=o.confirm, product=o.product, consensus_orders=o.consensus_orders)

    def run(db: Store, ctx: RunContext, tick: Tick) -> None:
        setup.run(db, ctx.id, lambda _: tick)

    return Prepared(job, setup.command, setup.config, setup.models, run, setup.most_queries, _tokens(cat))


def attach(db: Store, prepared: Prepared) -> None:
    """Give a job's models the store's request cache (as every command does)."""
    attach_cache(db, *prepared.models)
