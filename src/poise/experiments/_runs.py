"""Runs built before they start: ``natural_setup``, ``attack_setup`` and ``defend_setup``
check every input and build every model (without loading or calling one), the engine and
the configuration the run records. ``poise natural`` / ``attack`` / ``defend`` and the sweep's
jobs are built here, so the same options record the same run however it was started::

    setup = attack_setup(category, method="random", model="local", open_model=model_opener())
    with Store(path) as db:
        attach_cache(db, *setup.models)
        with db.open_run(setup.command, setup.config, close=setup.closing) as run:
            stored = setup.run(db, run.id)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._errors import PoiseError
from .._numbers import check_seed
from ..catalog import Category
from ..engine import DEFAULT_GENERATE_CONFIG, PromptTemplate, Recommender, SearchEngine
from ..models import ChatModel
from ..store import Store
from ._setup import (
    ModelOpener,
    catalog_ref,
    defended,
    defense_context,
    defense_identity,
    distinct,
    distinct_categories,
    engine_config,
    inputs_hash,
    open_reader,
    reader_identity,
    reader_models,
    run_config,
)

if TYPE_CHECKING:
    from ..attacks import Budget, Stealth
    from ..defenses import Context
    from ..ranking import RankingReader
    from ..store import StoredAttack, StoredCompete, StoredDefend
    from ._defend import AttackSettings, Configuration
    from ._natural import Rewriter
    from ._natural_result import NaturalResult

OnQuery = Callable[[], None]


@dataclass
class RunSetup:
    """A run ready to start: what it records (``command``, ``config``), its engine and reader,
    and the models it built: ``models`` get the store's cache, ``closing`` is closed with the
    run (``Store.open_run(..., close=setup.closing)``)."""

    command: str
    config: dict[str, object]
    engine: Recommender
    reader: RankingReader
    llm: ChatModel
    models: list[Any]
    closing: list[Any]
    most_queries: int  # at most this many model queries (a defense's own calls come on top)


def _engine(llm: ChatModel, template: PromptTemplate, max_tokens: int) -> tuple[SearchEngine, Any]:
    config = engine_config(max_tokens)
    return SearchEngine(llm, template=template, config=config), config


def _other(llm: ChatModel, model: str, spec: str | None, open_model: ModelOpener) -> ChatModel | None:
    """A second model (rewriter, attacker): the engine's own when the spec is the same."""
    return None if spec is None else llm if spec == model else open_model(spec)


# -- natural -------------------------------------------------------------------------------------------
@dataclass
class NaturalSetup(RunSetup):
    categories: list[Category] = field(default_factory=list)
    rewriter: Rewriter | None = None
    trials: int = 20
    seed: int = 0
    concurrency: int = 4
    model: str = ""
    bootstrap: int = 1000

    def run_trials(self, store: Store, run_id: str, on_done: OnQuery | None = None) -> None:
        """The trials not yet done, then a check that none is missing (resumable)."""
        from ._natural import run_natural
        from ._natural_result import check_trials_done

        run_natural(self.engine, self.categories, trials=self.trials, store=store, run_id=run_id, seed=self.seed,
                    concurrency=self.concurrency, rewriter=self.rewriter, reader=self.reader,
                    on_done=None if on_done is None else lambda *_: on_done())
        check_trials_done(store, run_id, self.trials * len(self.categories))

    def save(self, store: Store, run_id: str, bootstrap: int | None = None) -> NaturalResult:
        """The analysis and plots, written to the store."""
        from ._natural_result import save_natural

        return save_natural(store, run_id, model=self.model, trials=self.trials, seed=self.seed,
                            bootstrap=self.bootstrap if bootstrap is None else bootstrap, rewriter=self.rewriter)


def natural_setup(categories: Sequence[Category], *, model: str, open_model: ModelOpener, template: PromptTemplate,
                  trials: int = 20, seed: int = 0, concurrency: int = 4, catalog: str | None = None,
                  max_tokens: int = DEFAULT_GENERATE_CONFIG.max_tokens, rewrite_model: str | None = None,
                  reader: str = "heuristic", defenses: Sequence[str] | None = None,
                  bootstrap: int = 1000) -> NaturalSetup:
    """``poise natural``'s run, built and checked (``bootstrap``: the resamples ``save`` draws
    unless told otherwise)."""
    from ..attacks.base import check_count
    from ._natural import Rewriter

    check_seed(seed)
    check_count("--trials", trials, 2)
    check_count("--bootstrap", bootstrap, 0)
    if bootstrap == 1:  # one resample: every interval has no width, a "95% interval" of one value
        raise PoiseError("--bootstrap must be 0 (no intervals) or at least 2, not 1",
                         "one resample gives every interval zero width: draw 1000 (the default), or 0 for none")
    cats = distinct_categories(categories)
    llm = open_model(model, concurrency=concurrency)
    rewrite_llm = _other(llm, model, rewrite_model, open_model)
    read = open_reader(reader, open_model)
    plain, config = _engine(llm, template, max_tokens)
    engine, defense_models = defended(plain, defenses, read, open_model)
    rewriter = Rewriter(rewrite_llm)
    run_cfg = run_config(
        categories=[c.name for c in cats], trials=trials, model=model, seed=seed, rewrite=rewriter.kind,
        reader=read.name, defenses=engine.identity().get("defenses", []),
        catalog=catalog_ref(catalog), template=template.name, generate=config.model_dump(mode="json"),
        base_url=llm.identity().get("base_url"),
        inputs=inputs_hash(cats, template, llm.identity(), config,
                           rewrite_llm.identity() if rewrite_llm is not None else None, *defense_identity(engine),
                           *reader_identity(read)))
    return NaturalSetup(
        "natural", run_cfg, engine, read, llm, distinct([llm, rewrite_llm, *reader_models(read), *defense_models]),
        [llm, rewrite_llm, read, *defense_models], trials * len(cats) * (2 if rewrite_llm else 1),
        categories=cats, rewriter=rewriter, trials=trials, seed=seed, concurrency=concurrency, model=model,
        bootstrap=bootstrap)


# -- attack --------------------------------------------------------------------------------------------
@dataclass
class AttackSetup(RunSetup):
    category: Category | None = None
    method: str = "strategies"
    params: dict[str, Any] = field(default_factory=dict)
    attacker_llm: ChatModel | None = None
    budget: Budget | None = None
    product: str | None = None
    seed: int = 0
    responses: int = 2
    selection_orders: int = 4
    final_orders: int = 10
    confirm: int = 3
    stealth: Stealth | None = None
    shared_orders: bool = False
    early_stop: bool = False
    verify_stop: int = 0

    def run(self, store: Store, run_id: str, on_query: OnQuery | None = None) -> StoredAttack:
        """The attack (resumable: a query already made is read back), its result saved."""
        from ..attacks import get_method, run_attack, save_attack

        assert self.category is not None
        method = get_method(self.method, **self.params,
                            **({"attacker": self.attacker_llm} if self.attacker_llm is not None else {}))
        result = run_attack(self.engine, self.category, method, store=store, run_id=run_id, product=self.product,
                            seed=self.seed, budget=self.budget, responses_per_candidate=self.responses,
                            selection_orders=self.selection_orders, final_orders=self.final_orders,
                            confirm=self.confirm, on_query=on_query, reader=self.reader, stealth=self.stealth,
                            shared_orders=self.shared_orders, early_stop=self.early_stop,
                            verify_stop=self.verify_stop)
        return save_attack(result, store, self.seed)


def _needs_attacker(method: str, params: dict[str, Any], attacker: str | None = None,
                    method_flag: str = "--method") -> bool:
    """The method and its parameters checked; whether it asks an attacker model. ``method_flag``:
    the option that chose the method, for the message."""
    from ..attacks import check_method

    if attacker is not None and not attacker.strip():  # an unset shell variable: never the --model silently
        raise PoiseError("--attacker is empty", "name the attacker model spec, e.g. --attacker openai:gpt-4o-mini, "
                                                "or drop --attacker to use the --model")
    return check_method(method, params, attacker=attacker is not None, method_flag=method_flag).needs_attacker


def attack_setup(category: Category, *, model: str, open_model: ModelOpener, template: PromptTemplate,
                 method: str = "strategies", params: dict[str, Any] | None = None, product: str | None = None,
                 attacker: str | None = None, budget: int = 46, attacker_budget: int = 100,
                 token_budget: int | None = None, responses: int = 2, final_orders: int = 10,
                 selection_orders: int = 4, confirm: int = 3, seed: int = 0, catalog: str | None = None,
                 max_tokens: int = DEFAULT_GENERATE_CONFIG.max_tokens, reader: str = "heuristic",
                 defenses: Sequence[str] | None = None,
                 stealth: Callable[[], Stealth] | None = None,
                 shared_orders: bool = False, early_stop: bool = False, verify_stop: int = 0) -> AttackSetup:
    """``poise attack``'s run, built and checked: the method and its parameters, the product
    and the budget before any model; ``stealth`` builds the stealth scorer (after the checks).
    ``shared_orders`` / ``early_stop``: the opt-in speed-ups, recorded in the run's
    configuration only when on (runs stored without them resume as before); so is ``verify_stop``
    (re-ask a candidate at the stop score that many times before stopping)."""
    from ..attacks import Budget, find_product
    from ..attacks.base import check_attack_counts

    check_seed(seed)
    check_attack_counts(responses=responses, final_orders=final_orders, selection_orders=selection_orders,
                        confirm=confirm, verify_stop=verify_stop)
    params = dict(params or {})
    needs_attacker = _needs_attacker(method, params, attacker)
    if product is not None:
        find_product(category, product)
    the_budget = Budget(recommender_queries=budget, attacker_queries=attacker_budget, tokens=token_budget)
    watch = stealth() if stealth is not None else None
    llm = open_model(model)
    attacker_llm = _other(llm, model, attacker or model, open_model) if needs_attacker else None
    read = open_reader(reader, open_model)
    plain, config = _engine(llm, template, max_tokens)
    engine, defense_models = defended(plain, defenses, read, open_model)  # the search runs against it
    run_cfg = run_config(
        category=category.name, product=product, method=method, params=params, model=model,
        attacker=(attacker or model) if attacker_llm else None, budget=budget, attacker_budget=attacker_budget,
        token_budget=token_budget, responses=responses, final_orders=final_orders,
        selection_orders=selection_orders, confirm=confirm, seed=seed, catalog=catalog_ref(catalog),
        stealth=None if watch is None else {"detectors": list(watch.detector_specs),
                                            "max_perplexity_ratio": watch.max_ratio},
        template=template.name, reader=read.name, defenses=engine.identity().get("defenses", []),
        generate=config.model_dump(mode="json"), base_url=llm.identity().get("base_url"),
        inputs=inputs_hash(category, template, llm.identity(), config,
                           attacker_llm.identity() if attacker_llm is not None else None, *defense_identity(engine),
                           *reader_identity(read)),
        **({"shared_orders": True} if shared_orders else {}), **({"early_stop": True} if early_stop else {}),
        **({"verify_stop": verify_stop} if verify_stop else {}))
    most = (0 if product else selection_orders) + budget + 2 * final_orders
    scorer = getattr(watch, "scorer", None)
    return AttackSetup(
        "attack", run_cfg, engine, read, llm, distinct([llm, attacker_llm, *reader_models(read), *defense_models]),
        [llm, attacker_llm, read, *defense_models, scorer], most + (attacker_budget if needs_attacker else 0),
        category=category, method=method, params=params, attacker_llm=attacker_llm, budget=the_budget,
        product=product, seed=seed, responses=responses, selection_orders=selection_orders,
        final_orders=final_orders, confirm=confirm, stealth=watch, shared_orders=shared_orders,
        early_stop=early_stop, verify_stop=verify_stop)


# -- compete -------------------------------------------------------------------------------------------
@dataclass
class CompeteSetup(RunSetup):
    """``poise attack --compete K``'s run: K searches built like ``attack``'s (``attack``), then
    measured together."""

    attack: AttackSetup | None = None
    k: int = 2
    products: list[str] | None = None
    rounds: int = 1

    def run(self, store: Store, run_id: str, on_query: OnQuery | None = None) -> StoredCompete:
        """The competition (resumable: a query already made is read back), its result saved."""
        from ..attacks import run_compete, save_compete

        a = self.attack
        assert a is not None and a.category is not None
        params = {**a.params, **({"attacker": a.attacker_llm} if a.attacker_llm is not None else {})}
        result = run_compete(self.engine, a.category, a.method, k=self.k, products=self.products, params=params,
                             store=store, run_id=run_id, seed=a.seed, budget=a.budget,
                             responses_per_candidate=a.responses, selection_orders=a.selection_orders,
                             final_orders=a.final_orders, confirm=a.confirm, on_query=on_query, reader=self.reader,
                             stealth=a.stealth, rounds=self.rounds)
        return save_compete(result, store, a.seed)


def compete_setup(category: Category, *, compete: int, products: Sequence[str] | None = None, rounds: int = 1,
                  **options: Any) -> CompeteSetup:
    """``poise attack --compete K``'s run, built and checked: ``compete``, the ``products``
    (none, or exactly K) and the ``rounds`` before anything else, then every option as
    :func:`attack_setup` takes it (its ``product`` excepted); each search has the whole
    ``budget``, in every round. ``rounds`` is recorded in the run's configuration only above 1
    (runs stored before rounds existed resume as before)."""
    from ..attacks import AttackParameterError, check_compete, check_rounds

    if options.get("product") is not None:
        raise AttackParameterError("a competition names its products with products=[...], not product=",
                                   "pass the K products as products, or none to attack the K lowest-ranked")
    options.pop("product", None)
    if options.get("shared_orders") or options.get("early_stop") or options.get("verify_stop"):
        raise AttackParameterError("--shared-orders, --early-stop and --verify-stop are not available with "
                                   "--compete yet",
                                   "drop them, or attack one product at a time")
    named = list(products) if products else None
    check_compete(category, compete, named)
    check_rounds(rounds)
    a = attack_setup(category, **options)
    config = {**{k: v for k, v in a.config.items() if k != "product"}, "compete": compete, "products": named,
              **({"rounds": rounds} if rounds > 1 else {})}
    budget, final = options.get("budget", 46), options.get("final_orders", 10)
    most = ((0 if named else options.get("selection_orders", 4)) + rounds * compete * budget
            + (compete + 2 + (rounds > 1)) * final)
    searches = rounds * compete * options.get("attacker_budget", 100) if a.attacker_llm is not None else 0
    return CompeteSetup("compete", run_config(**config), a.engine, a.reader, a.llm, a.models, a.closing,
                        most + searches, attack=a, k=compete, products=named, rounds=rounds)


# -- defend --------------------------------------------------------------------------------------------
@dataclass
class DefendSetup(RunSetup):
    categories: list[Category] = field(default_factory=list)
    specs: list[str] = field(default_factory=list)
    settings: AttackSettings | None = None
    context: Context | None = None
    configurations: list[Configuration] = field(default_factory=list)
    orders: int = 10
    seed: int = 0
    product: str | None = None
    consensus_orders: int = 0

    def run(self, store: Store, run_id: str, on_query: Callable[[Category], OnQuery | None] | None = None,
            ) -> StoredDefend:
        """Every category's comparison (resumable), the result saved; ``on_query(category)``
        gives the callback for one category's queries."""
        from ..store import StoredDefend
        from ._defend import defend_json, run_defend

        results = [run_defend(self.engine, c, self.specs, store=store, run_id=run_id, reader=self.reader,
                              attack=self.settings, orders=self.orders, seed=self.seed, product=self.product,
                              context=self.context, on_query=None if on_query is None else on_query(c),
                              consensus_orders=self.consensus_orders)
                   for c in self.categories]
        stored = StoredDefend.model_validate({"run_id": run_id, **defend_json(results)})
        store.save_result(run_id, stored)
        return stored


def defend_setup(categories: Sequence[Category], *, model: str, open_model: ModelOpener, template: PromptTemplate,
                 defenses: Sequence[str] | None = None, method: str = "strategies",
                 params: dict[str, Any] | None = None, attacker: str | None = None, budget: int = 46,
                 orders: int = 10, final_orders: int = 10, selection_orders: int = 4, responses: int = 2,
                 confirm: int = 3, product: str | None = None, seed: int = 0, catalog: str | None = None,
                 max_tokens: int = DEFAULT_GENERATE_CONFIG.max_tokens, reader: str = "heuristic",
                 consensus_orders: int = 0) -> DefendSetup:
    """``poise defend``'s run, built and checked (every defense spec, parameter and count)
    before any store exists; ``defenses`` default to every registered one. ``consensus_orders``
    is recorded in the run's configuration only when set (runs stored before it resume)."""
    from ..attacks import find_product
    from ..defenses import DEFENSES
    from ._defend import AttackSettings, check_defend_inputs, consensus_orders_of

    check_seed(seed)
    cats = distinct_categories(categories)
    params = dict(params or {})
    needs_attacker = _needs_attacker(method, params, attacker, method_flag="--attack")
    if product is not None:
        for c in cats:
            find_product(c, product)
    specs = list(defenses) if defenses else sorted(DEFENSES)
    llm = open_model(model)
    attacker_llm = _other(llm, model, attacker or model, open_model) if needs_attacker else None
    settings = AttackSettings(method=method, params={**params, **({"attacker": attacker_llm} if attacker_llm else {})},
                              budget=budget, responses=responses, selection_orders=selection_orders,
                              final_orders=final_orders, confirm=confirm)
    read = open_reader(reader, open_model)
    engine, config = _engine(llm, template, max_tokens)
    opened: list[ChatModel] = []
    context = defense_context(read, open_model, opened)
    configs = check_defend_inputs(engine, specs, orders, settings, context, consensus_orders)
    for c in cats:
        consensus_orders_of(c, orders, consensus_orders, seed)  # enough orders in every category
    run_cfg = run_config(
        categories=[c.name for c in cats], defenses=[c.label for c in configs], method=method, params=params,
        attacker=(attacker or model) if attacker_llm else None, budget=budget, orders=orders,
        final_orders=final_orders, selection_orders=selection_orders, responses=responses, confirm=confirm,
        product=product, seed=seed, model=model, catalog=catalog_ref(catalog), template=template.name,
        reader=read.name, generate=config.model_dump(mode="json"), base_url=llm.identity().get("base_url"),
        inputs=inputs_hash(cats, template, llm.identity(), config, [c.label for c in configs],
                           attacker_llm.identity() if attacker_llm is not None else None, *reader_identity(read)),
        **({"consensus_orders": consensus_orders} if consensus_orders else {}))
    per_config = orders + budget + 2 * final_orders
    most = len(cats) * ((0 if product else selection_orders) + consensus_orders + per_config * (len(configs) + 1))
    return DefendSetup(
        "defend", run_cfg, engine, read, llm, distinct([llm, attacker_llm, *reader_models(read), *opened]),
        [llm, attacker_llm, read, *opened], most, categories=cats, specs=specs, settings=settings,
        context=context, configurations=configs, orders=orders, seed=seed, product=product,
        consensus_orders=consensus_orders)
