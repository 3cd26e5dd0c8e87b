"""``poise recommend`` and ``poise transfer`` runs built before they start, as the other
commands' are in ``_runs``: every input checked and every model built, the engine and the
configuration the run records, so the CLI only parses, calls and prints::

    setup = recommend_setup(category, model="local", open_model=model_opener(), template=default_template())
    with Store(path) as db:
        attach_cache(db, *setup.models)
        with db.open_run(setup.command, setup.config, resume=False, close=setup.closing) as run:
            rec = setup.run(db, run.id)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._numbers import check_seed
from ..catalog import Category
from ..engine import DEFAULT_GENERATE_CONFIG, PromptTemplate, SearchEngine
from ._recommend import Recommendation, recommend
from ._runs import OnQuery, RunSetup
from ._setup import (
    ModelOpener,
    catalog_ref,
    defended,
    defense_identity,
    distinct,
    engine_config,
    inputs_hash,
    open_reader,
    reader_models,
    run_config,
)

if TYPE_CHECKING:
    from ..attacks import TransferSource
    from ..store import Store, StoredTransfer


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
    llm = open_model(model)
    read = open_reader(reader, open_model)
    config = engine_config(max_tokens, temperature=temperature)
    engine, defense_models = defended(SearchEngine(llm, template=template, config=config), defenses, read, open_model)
    asked = query or category.default_query
    run_cfg = run_config(
        category=category.name, query=asked, model=model, seed=seed, reader=read.name,
        defenses=engine.identity().get("defenses", []), catalog=catalog_ref(catalog), template=template.name,
        generate=config.model_dump(mode="json"), base_url=llm.identity().get("base_url"),
        inputs=inputs_hash(category, asked, template, llm.identity(), config, seed, *defense_identity(engine)))
    return RecommendSetup("recommend", run_cfg, engine, read, llm,
                          distinct([llm, *reader_models(read), *defense_models]), [llm, read, *defense_models], 1,
                          category=category, query=query, seed=seed)


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
        inputs=inputs_hash(attacks, template, llm.identity(), config, *defense_identity(engine)))
    return TransferSetup("transfer", run_cfg, engine, read, llm, distinct([llm, *reader_models(read), *defense_models]),
                         [llm, read, *defense_models], 2 * final_orders * len(sources), sources=list(sources),
                         final_orders=final_orders, model=model, template=template.name)
