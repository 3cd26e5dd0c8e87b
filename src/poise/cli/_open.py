"""What commands build before a run: models, readers, defended engines, the run's
configuration. Everything here checks its input without loading or calling a model, so a
command fails on a bad spec before it creates a store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from ..engine._template import PromptTemplate, default_template
from ..models import RequestCache, RetryPolicy, get_model
from ..store import RunContext, Store, content_hash
from ._render import note


def open_model(spec: str, base_url: str | None, store: Store | None, use_cache: bool = True, max_attempts: int = 5,
               concurrency: int | None = None, timeout: float = 60.0) -> Any:
    """The model a spec names. Building it checks the spec, the file or URL and the key without
    loading or calling anything, so commands build their models before they create a store
    (``store=None``) and attach the store's request cache after (``attach_cache``)."""
    cache = RequestCache(store.cache_path) if use_cache and store is not None else None
    retry = RetryPolicy(max_attempts=max_attempts, timeout_s=timeout)
    return get_model(spec, base_url=base_url, cache=cache, retry=retry, max_concurrency=concurrency)


def open_reader(spec: str, base_url: str | None, max_attempts: int = 5, timeout: float = 60.0) -> Any:
    """The ranking reader a spec names; a model reader's model is built (and checked) here,
    before any store exists, and gets the store's cache through ``attach_cache(store, reader_model(r))``."""
    from ..ranking import get_reader

    return get_reader(spec, lambda s: open_model(s, base_url, None, max_attempts=max_attempts, timeout=timeout))


def defended(engine: Any, specs: list[str] | None, reader: Any, base_url: str | None, max_attempts: int = 5,
             timeout: float = 60.0) -> tuple[Any, list[Any]]:
    """``engine`` wrapped by the defenses ``specs`` name, and the models those defenses opened
    (to get the store's cache). Everything is checked here, before any store exists."""
    from ..defenses import Context, defend

    opened: list[Any] = []

    def open_defense_model(spec: str) -> Any:
        llm = open_model(spec, base_url, None, max_attempts=max_attempts, timeout=timeout)
        opened.append(llm)
        return llm

    return defend(engine, specs or [], Context(reader=reader, open_model=open_defense_model)), opened


def defense_identity(engine: Any) -> list[Any]:
    """What a run's inputs hash adds for a defended engine (nothing for a plain one, so runs
    recorded before defenses existed keep their identity)."""
    return [engine.identity()] if engine.identity().get("defenses") else []


def reader_models(reader: Any) -> list[Any]:
    """The models a reader asks (none for the heuristic one)."""
    parts = [reader.first, reader.second] if hasattr(reader, "second") else [reader]
    return [p.model for p in parts if hasattr(p, "model")]


def attach_cache(store: Store, *models: Any, use_cache: bool = True) -> None:
    """Give models built before the store (see ``open_model``) the store's request cache."""
    if use_cache:
        cache = RequestCache(store.cache_path)
        for llm in models:
            if llm is not None:
                llm.cache = cache


def inputs_hash(*parts: object) -> str:
    """The content hash a run records of everything that shapes its prompts (the categories
    with their products and documents, the template's text, the query, the model's identity,
    the sampling ...): a resume adopts only a run with the same inputs, never one whose
    catalog or template was edited, reordered or swapped for another of the same name."""
    return content_hash(*parts)


def catalog_ref(catalog: str | None) -> str:
    """How a run records its catalog: an absolute path (so a later `poise transfer` finds it
    from any folder), or 'sample' for the bundled one."""
    return str(Path(catalog).expanduser().resolve()) if catalog else "sample"


def load_template(path: Path | None) -> PromptTemplate:
    return PromptTemplate.from_file(path) if path else default_template()


def run_config(**items: object) -> dict[str, object]:
    """What a run records as its configuration: plain values, never a key."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in items.items()}


def say_started(err: Console, run: RunContext, resumed: str | None = None) -> None:
    """One line on stderr when a run resumes (``resumed``, default: the queries it already
    made), or when another live process holds a run of the same configuration (never
    adopted: this one starts its own)."""
    if run.resumed:
        note(err, f"resuming run {run.id}: {resumed or f'{run.done_tasks()} queries already made'}")
    elif run.live:
        other = run.live[0]
        note(err, f"run {other.id} with the same configuration is still running (pid {other.pid} on "
                  f"{other.host}); starting a new run {run.id}")
