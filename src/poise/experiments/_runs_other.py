"""``poise recommend``, ``poise transfer`` and ``poise defend --clean-only`` runs built before
they start, as the other commands' are in ``_runs``: every input checked and every model
built, the engine and the configuration the run records, so the CLI only parses, calls and
prints::

    setup = recommend_setup(category, model="local", open_model=model_opener(), template=default_template())
    with Store(path) as db:
        attach_cache(db, *setup.models)
        with db.open_run(setup.command, setup.config, resume=False, close=setup.closing) as run:
            rec = setup.run(db, run.id)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._errors import PoiseError
from .._numbers import check_seed
from ..catalog import Category, text_problem
from ..engine import DEFAULT_GENERATE_CONFIG, PromptTemplate, SearchEngine
from ._recommend import Recommendation, recommend
from ._runs import OnQuery, RunSetup
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
    from ..attacks import TransferSource
    from ..defenses import Context
    from ..models import ChatModel
    from ..store import Store, StoredDefendClean, StoredTransfer


@dataclass
class RecommendSetup(RunSetup):
    """One recommendation (``poise recommend``)."""

    category: Category | None = None
    query: str | None = None
    seed: int = 0

    def run(self, store: Store, run_id: str) -> Recommendation:
        assert self.category is not None
        return recommend(self.engine, self.category, store=store, run_id=run_id, query=self.query, seed=self.seed,
                         reader=self.reader)


def recommend_setup(category: Category, *, model: str, open_model: ModelOpener, template: PromptTemplate,
                    query: str | None = None, seed: int = 0, catalog: str | None = None,
                    max_tokens: int = DEFAULT_GENERATE_CONFIG.max_tokens,
                    temperature: float = DEFAULT_GENERATE_CONFIG.temperature, reader: str = "heuristic",
                    defenses: Sequence[str] | None = None) -> RecommendSetup:
    """``poise recommend``'s run, built and checked."""
    check_seed(seed)
    _check_query(query)
    llm = open_model(model)
    read = open_reader(reader, open_model)
    config = engine_config(max_tokens, temperature=temperature)
    engine, defense_models = defended(SearchEngine(llm, template=template, config=config), defenses, read, open_model)
    asked = query or category.default_query
    run_cfg = run_config(
        category=category.name, query=asked, model=model, seed=seed, reader=read.name,
        defenses=engine.identity().get("defenses", []), catalog=catalog_ref(catalog), template=template.name,
        generate=config.model_dump(mode="json"), base_url=llm.identity().get("base_url"),
        inputs=inputs_hash(category, asked, template, llm.identity(), config, seed, *defense_identity(engine),
                           *reader_identity(read)))
    return RecommendSetup("recommend", run_cfg, engine, read, llm,
                          distinct([llm, *reader_models(read), *defense_models]), [llm, read, *defense_models], 1,
                          category=category, query=query, seed=seed)


def _check_query(query: str | None) -> None:
    """A query given in place of the category's: some text (an unset shell variable is refused,
    never the category's query or a blank question silently), plain as a catalog's must be."""
    if query is None:
        return
    if not query.strip():
        raise PoiseError(f"--query is blank ({query!r})", "ask a question, or drop --query for the category's own")
    if problem := text_problem(query):
        raise PoiseError(f"--query {problem}", "a query must be plain text; remove the character")


@dataclass
class TransferSetup(RunSetup):
    """Attack runs' best injections re-scored on another engine (``poise transfer``)."""

    sources: list[TransferSource] = field(default_factory=list)
    final_orders: int = 10
    model: str = ""
    template: str = ""

    def run(self, store: Store, run_id: str, on_query: OnQuery | None = None) -> StoredTransfer:
        from ..attacks import run_transfer

        return run_transfer(self.engine, self.sources, store=store, run_id=run_id, final_orders=self.final_orders,
                            reader=self.reader, model=self.model, template=self.template, on_query=on_query)


def transfer_setup(sources: Sequence[TransferSource], *, run_ids: Sequence[str], model: str,
                   open_model: ModelOpener, template: PromptTemplate, final_orders: int = 10,
                   max_tokens: int = DEFAULT_GENERATE_CONFIG.max_tokens, reader: str = "heuristic",
                   defenses: Sequence[str] | None = None) -> TransferSetup:
    """``poise transfer``'s run over ``sources`` (:func:`poise.attacks.load_sources` of
    ``run_ids``), built and checked."""
    from ..attacks.base import check_count

    check_count("--final-orders", final_orders, 1)
    llm = open_model(model)
    config = engine_config(max_tokens)
    read = open_reader(reader, open_model)
    engine, defense_models = defended(SearchEngine(llm, template=template, config=config), defenses, read, open_model)
    attacks: list[Any] = [(s.attack.model_dump(mode="json", exclude={"schema_version"}, exclude_unset=True), s.category)
                          for s in sources]
    run_cfg = run_config(
        source_runs=list(run_ids), model=model, template=template.name, final_orders=final_orders,
        generate=config.model_dump(mode="json"), base_url=llm.identity().get("base_url"), reader=read.name,
        defenses=engine.identity().get("defenses", []),
        inputs=inputs_hash(attacks, template, llm.identity(), config, *defense_identity(engine),
                           *reader_identity(read)))
    return TransferSetup("transfer", run_cfg, engine, read, llm, distinct([llm, *reader_models(read), *defense_models]),
                         [llm, read, *defense_models], 2 * final_orders * len(sources), sources=list(sources),
                         final_orders=final_orders, model=model, template=template.name)


@dataclass
class DefendCleanSetup(RunSetup):
    """Clean utility and cost of each defense configuration, no attack (``poise defend
    --clean-only``): :func:`poise.experiments.run_defend_clean` on every category."""

    categories: list[Category] = field(default_factory=list)
    specs: list[str] = field(default_factory=list)
    context: Context | None = None
    orders: int = 10
    seed: int = 0
    consensus_orders: int = 0

    def run(self, store: Store, run_id: str, on_query: Callable[[Category], OnQuery | None] | None = None,
            ) -> StoredDefendClean:
        """Every category's clean comparison (resumable), the result saved; ``on_query(category)``
        gives the callback for one category's queries."""
        from ..store import StoredDefendClean
        from ._defend_clean import defend_clean_json, run_defend_clean

        results = [run_defend_clean(self.engine, c, self.specs, store=store, run_id=run_id, reader=self.reader,
                                    orders=self.orders, seed=self.seed, context=self.context,
                                    consensus_orders=self.consensus_orders,
                                    on_query=None if on_query is None else on_query(c))
                   for c in self.categories]
        stored = StoredDefendClean.model_validate({"run_id": run_id, **defend_clean_json(results)})
        store.save_result(run_id, stored)
        return stored


def defend_clean_setup(categories: Sequence[Category], *, model: str, open_model: ModelOpener,
                       template: PromptTemplate, defenses: Sequence[str] | None = None, orders: int = 10,
                       consensus_orders: int = 0, seed: int = 0, catalog: str | None = None,
                       max_tokens: int = DEFAULT_GENERATE_CONFIG.max_tokens,
                       reader: str = "heuristic") -> DefendCleanSetup:
    """``poise defend --clean-only``'s run, built and checked (every defense spec and count)
    before any store exists; ``defenses`` default to every registered one. Its run (command
    ``defend-clean``) records what ``poise defend``'s records but the attack's settings, which
    it has none of: a resume with other inputs (server, pages, orders, consensus) is a new run."""
    from ..defenses import DEFENSES
    from ._defend import check_clean_counts, configurations, consensus_orders_of

    check_seed(seed)
    check_clean_counts(orders, consensus_orders)
    cats = distinct_categories(categories)
    specs = list(defenses) if defenses else sorted(DEFENSES)
    llm = open_model(model)
    read = open_reader(reader, open_model)
    config = engine_config(max_tokens)
    engine = SearchEngine(llm, template=template, config=config)
    opened: list[ChatModel] = []
    context = defense_context(read, open_model, opened)
    labels = [c.label for c, _ in configurations(engine, specs, context)]
    for c in cats:
        consensus_orders_of(c, orders, consensus_orders, seed)  # enough orders in every category
    run_cfg = run_config(
        categories=[c.name for c in cats], defenses=labels, orders=orders, seed=seed, model=model,
        catalog=catalog_ref(catalog), template=template.name, reader=read.name,
        generate=config.model_dump(mode="json"), base_url=llm.identity().get("base_url"),
        inputs=inputs_hash(cats, template, llm.identity(), config, labels, *reader_identity(read)),
        **({"consensus_orders": consensus_orders} if consensus_orders else {}))
    return DefendCleanSetup(
        "defend-clean", run_cfg, engine, read, llm, distinct([llm, *reader_models(read), *opened]),
        [llm, read, *opened], len(cats) * (consensus_orders + orders * len(labels)), categories=cats,
        specs=specs, context=context, orders=orders, seed=seed, consensus_orders=consensus_orders)
