"""Runs started from Python, as a library user starts them (no CLI, no subprocess): the
builders of ``poise.experiments`` and ``Store.open_run``, against a wire fake or a real model.
For tests where the command line is not what is tested."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from poise.catalog import Category, sample_catalog
from poise.engine import default_template
from poise.experiments import (
    attach_cache,
    attack_setup,
    model_opener,
    natural_setup,
    transfer_setup,
)
from poise.store import RunContext, Store

CATALOG = sample_catalog()


def attack(store: Path, base_url: str | None, *, category: str | Category = "blender", model: str = "openai:fake",
           max_attempts: int = 5, **options: Any) -> tuple[dict[str, Any], RunContext]:
    """``poise attack --json`` in-process: the stored result (as JSON) and the run's context
    (``resumed`` tells whether it adopted an interrupted run)."""
    cat = CATALOG.category(category) if isinstance(category, str) else category
    return run_setup(store, attack_setup(cat, model=model, open_model=model_opener(base_url, max_attempts=max_attempts),
                                         template=default_template(), **options))


def run_setup(store: Path, setup: Any) -> tuple[dict[str, Any], RunContext]:
    """A built run (``attack_setup``, ``compete_setup`` ...) started or resumed in ``store`` as
    its command does: the stored result (as JSON) and the run's context."""
    with Store(store) as db:
        attach_cache(db, *setup.models)
        with db.open_run(setup.command, setup.config, close=setup.closing) as run:
            stored = setup.run(db, run.id)
    return stored.model_dump(mode="json"), run


def natural(store: Path, base_url: str | None, categories: list[str], *, catalog: Any = CATALOG,
            bootstrap: int = 1000, max_attempts: int = 5, **options: Any) -> tuple[dict[str, Any], RunContext]:
    """``poise natural --json`` in-process."""
    setup = natural_setup([catalog.category(c) for c in categories],
                          open_model=model_opener(base_url, max_attempts=max_attempts), template=default_template(),
                          **options)
    with Store(store) as db:
        attach_cache(db, *setup.models)
        with db.open_run(setup.command, setup.config, close=setup.closing) as run:
            setup.run_trials(db, run.id)
            result = setup.save(db, run.id, bootstrap=bootstrap)
    return result.stored.model_dump(mode="json"), run


def transfer(store: Path, base_url: str | None, run_ids: list[str], *, model: str = "openai:other",
             final_orders: int = 10, reader: str = "heuristic", defenses: list[str] | None = None) -> dict[str, Any]:
    """``poise transfer --json`` in-process."""
    from poise.attacks import load_sources

    with Store(store, read_only=True) as sources_db:
        sources = load_sources(sources_db, run_ids)
    setup = transfer_setup(sources, run_ids=run_ids, model=model, open_model=model_opener(base_url),
                           template=default_template(), final_orders=final_orders, reader=reader, defenses=defenses)
    with Store(store, create=False) as db:
        attach_cache(db, *setup.models)
        with db.open_run(setup.command, setup.config, close=setup.closing) as run:
            result = setup.run(db, run.id)
    return result.model_dump(mode="json")
