"""One job made ready to run: its models built (checked, not loaded), its engine, and the
configuration its run records — the same as ``poise natural`` / ``attack`` / ``defend``
record for the same options (``Job.argv``), so the store's resume rules apply to it and every
report and command reads it as an ordinary run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..catalog import Catalog, Category, load_catalog
from ..engine import DEFAULT_GENERATE_CONFIG, SearchEngine
from ..models import ChatModel, RetryPolicy, get_model
from ..store import RunContext, Store, config_hash
from ._base import Job
from ._endpoints import Endpoints, PooledModel

# What every command builds before a run (shared with the CLI, so a job records its run
# exactly as the command does).
from ..cli._open import (attach_cache, catalog_ref, defense_identity, inputs_hash,  # isort: skip
                         load_template, reader_models, run_config)

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
        if spec.strip().startswith("openai:") and len(self.base_urls) > 1:
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


def prepare_all(jobs: list[Job], source: ModelSource) -> list[Prepared]:
    """Every job built and checked (categories, methods, parameters, defenses, specs) before
    anything runs: a bad value stops the sweep here with one line."""
    catalogs = _Catalogs()
    return [prepare(job, source, catalogs.category(job)) for job in jobs]


def prepare(job: Job, source: ModelSource, category: Category) -> Prepared:
    builder = {"natural": _natural, "attack": _attack, "defend": _defend}[job.kind]
    return builder(job, source, category)


def _reader(job: Job, source: ModelSource) -> Any:
    from ..ranking import get_reader

    o = job.options
    return get_reader(o.reader, lambda spec: source.open(spec, o.max_attempts, o.timeout))


def _engine(job: Job, source: ModelSource, llm: ChatModel, read: Any) -> tuple[Any, list[Any], Any]:
    from ..defenses import Context, defend

    o = job.options
    opened: list[ChatModel] = []

    def open_defense_model(spec: str) -> ChatModel:
        model = source.open(spec, o.max_attempts, o.timeout)
        opened.append(model)
        return model

    tmpl = load_template(None if job.template == "default" else job.template)  # type: ignore[arg-type]
    config = DEFAULT_GENERATE_CONFIG.model_copy(update={"max_tokens": o.max_tokens})
    plain = SearchEngine(llm, template=tmpl, config=config)
    specs = list(job.defenses) if job.kind != "defend" else []
    engine = defend(plain, specs, Context(reader=read, open_model=open_defense_model))
    return engine, opened, (tmpl, config)


def _tokens(category: Category) -> int:
    text = sum(len(p.document.text) + len(p.brand) + len(p.model) for p in category.products)
    return (text + len(category.default_query) + 600) // 4


def _natural(job: Job, source: ModelSource, cat: Category) -> Prepared:
    from ..experiments import Rewriter, check_trials_done, run_natural, save_natural

    o = job.options
    llm = source.open(job.model, o.max_attempts, o.timeout, concurrency=o.concurrency)
    rewrite_llm = (None if o.rewrite_model is None else llm if o.rewrite_model == job.model
                   else source.open(o.rewrite_model, o.max_attempts, o.timeout))
    read = _reader(job, source)
    engine, defense_models, (tmpl, config) = _engine(job, source, llm, read)
    rewriter = Rewriter(rewrite_llm)
    run_cfg = run_config(
        categories=[cat.name], trials=o.trials, model=job.model, seed=job.seed, rewrite=rewriter.kind,
        reader=read.name, defenses=engine.identity().get("defenses", []),
        catalog=catalog_ref(o.catalog), template=tmpl.name, generate=config.model_dump(mode="json"),
        base_url=llm.identity().get("base_url"),
        inputs=inputs_hash([cat], tmpl, llm.identity(), config,
                           rewrite_llm.identity() if rewrite_llm is not None else None, *defense_identity(engine)))

    def run(db: Store, ctx: RunContext, tick: Tick) -> None:
        run_natural(engine, [cat], trials=o.trials, store=db, run_id=ctx.id, seed=job.seed,
                    concurrency=o.concurrency, on_done=lambda *_: tick(), rewriter=rewriter, reader=read)
        check_trials_done(db, ctx.id, o.trials)
        save_natural(db, ctx.id, model=job.model, trials=o.trials, seed=job.seed, bootstrap=o.bootstrap,
                     rewriter=rewriter)

    models = [llm, rewrite_llm, *reader_models(read), *defense_models]
    return Prepared(job, "natural", run_cfg, models, run, o.trials * (2 if rewrite_llm else 1), _tokens(cat))


def _attack(job: Job, source: ModelSource, cat: Category) -> Prepared:
    from ..attacks import Budget, check_method, find_product, get_method, run_attack, save_attack

    o = job.options
    method = job.method or "strategies"
    needs_attacker = check_method(method, job.params, attacker=o.attacker is not None).needs_attacker
    if o.product is not None:
        find_product(cat, o.product)
    llm = source.open(job.model, o.max_attempts, o.timeout)
    attacker_llm = None
    if needs_attacker:
        attacker_llm = llm if (o.attacker or job.model) == job.model else source.open(
            o.attacker or job.model, o.max_attempts, o.timeout)
    read = _reader(job, source)
    engine, defense_models, (tmpl, config) = _engine(job, source, llm, read)
    run_cfg = run_config(
        category=cat.name, product=o.product, method=method, params=job.params, model=job.model,
        attacker=(o.attacker or job.model) if attacker_llm else None, budget=o.budget,
        attacker_budget=o.attacker_budget, token_budget=o.token_budget, responses=o.responses,
        final_orders=o.final_orders, selection_orders=o.selection_orders, confirm=o.confirm, seed=job.seed,
        catalog=catalog_ref(o.catalog), stealth=None, template=tmpl.name, reader=read.name,
        defenses=engine.identity().get("defenses", []), generate=config.model_dump(mode="json"),
        base_url=llm.identity().get("base_url"),
        inputs=inputs_hash(cat, tmpl, llm.identity(), config,
                           attacker_llm.identity() if attacker_llm is not None else None, *defense_identity(engine)))

    def run(db: Store, ctx: RunContext, tick: Tick) -> None:
        the_method = get_method(method, **job.params, **({"attacker": attacker_llm} if needs_attacker else {}))
        budget = Budget(recommender_queries=o.budget, attacker_queries=o.attacker_budget, tokens=o.token_budget)
        result = run_attack(engine, cat, the_method, store=db, run_id=ctx.id, product=o.product, seed=job.seed,
                            budget=budget, responses_per_candidate=o.responses, selection_orders=o.selection_orders,
                            final_orders=o.final_orders, confirm=o.confirm, on_query=tick, reader=read)
        stored = save_attack(result, db, job.seed)
        ctx_extra = {"score_before": stored.score_before, "score_after": stored.score_after,
                     "success": stored.success}
        prepared.extra.update(ctx_extra)

    most = (0 if o.product else o.selection_orders) + o.budget + 2 * o.final_orders
    models = [llm, attacker_llm, *reader_models(read), *defense_models]
    prepared = Prepared(job, "attack", run_cfg, models, run, most + (o.attacker_budget if needs_attacker else 0),
                        _tokens(cat))
    return prepared


def _defend(job: Job, source: ModelSource, cat: Category) -> Prepared:
    from ..attacks import check_method, find_product
    from ..defenses import DEFENSES, Context
    from ..experiments import AttackSettings, check_defend_inputs, run_defend

    o = job.options
    method = job.method or "strategies"
    needs_attacker = check_method(method, job.params).needs_attacker
    if o.product is not None:
        find_product(cat, o.product)
    specs = list(job.defenses) if job.defenses else sorted(DEFENSES)
    settings = AttackSettings(method=method, params=job.params, budget=o.budget, responses=o.responses,
                              selection_orders=o.selection_orders, final_orders=o.final_orders, confirm=o.confirm)
    llm = source.open(job.model, o.max_attempts, o.timeout)
    attacker_llm = None
    if needs_attacker:
        attacker_llm = llm if (o.attacker or job.model) == job.model else source.open(
            o.attacker or job.model, o.max_attempts, o.timeout)
        settings = AttackSettings(**{**settings.__dict__, "params": {**job.params, "attacker": attacker_llm}})
    read = _reader(job, source)
    engine, _, (tmpl, config) = _engine(job, source, llm, read)
    opened: list[ChatModel] = []
    by_spec: dict[str, ChatModel] = {}

    def open_defense_model(spec: str) -> ChatModel:
        if spec not in by_spec:
            by_spec[spec] = source.open(spec, o.max_attempts, o.timeout)
            opened.append(by_spec[spec])
        return by_spec[spec]

    context = Context(reader=read, open_model=open_defense_model)
    configs = check_defend_inputs(engine, specs, o.orders, settings, context)
    run_cfg = run_config(
        categories=[cat.name], defenses=[c.label for c in configs], method=method, params=job.params,
        attacker=(o.attacker or job.model) if attacker_llm else None, budget=o.budget, orders=o.orders,
        final_orders=o.final_orders, selection_orders=o.selection_orders, responses=o.responses,
        confirm=o.confirm, product=o.product, seed=job.seed, model=job.model, catalog=catalog_ref(o.catalog),
        template=tmpl.name, reader=read.name, generate=config.model_dump(mode="json"),
        base_url=llm.identity().get("base_url"),
        inputs=inputs_hash([cat], tmpl, llm.identity(), config, [c.label for c in configs],
                           attacker_llm.identity() if attacker_llm is not None else None))

    def run(db: Store, ctx: RunContext, tick: Tick) -> None:
        from ..experiments import defend_json
        from ..store import StoredDefend

        result = run_defend(engine, cat, specs, store=db, run_id=ctx.id, reader=read, attack=settings,
                            orders=o.orders, seed=job.seed, product=o.product, context=context, on_query=tick)
        db.save_result(ctx.id, StoredDefend.model_validate({"run_id": ctx.id, **defend_json([result])}))

    per_config = o.orders + o.budget + 2 * o.final_orders
    most = (0 if o.product else o.selection_orders) + per_config * (len(configs) + 1)
    return Prepared(job, "defend", run_cfg, [llm, attacker_llm, *reader_models(read), *opened], run, most,
                    _tokens(cat))


def attach(db: Store, prepared: Prepared) -> None:
    """Give a job's models the store's request cache (as every command does)."""
    attach_cache(db, *prepared.models)
