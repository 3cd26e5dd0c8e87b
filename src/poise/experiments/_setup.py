"""What a run is built from before it starts: models, readers, defended engines and the
configuration it records. Everything here checks its input without loading or calling a
model, so a run fails on a bad spec before a store is created. The commands and the sweep
both build their runs from here (see ``_runs.py``), so a run records the same configuration
however it was started."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .._errors import PoiseError
from ..catalog import Category
from ..engine import DEFAULT_GENERATE_CONFIG, PromptTemplate, Recommender, default_template
from ..models import MAX_TOKENS, ChatModel, GenerateConfig, RequestCache, RetryPolicy, get_model
from ..store import Store, content_hash

if TYPE_CHECKING:
    from ..defenses import Context
    from ..ranking import RankingReader


class ModelOpener(Protocol):
    """Turns a model spec into a model: built and checked, never loaded or called."""

    def __call__(self, spec: str, *, concurrency: int | None = None) -> ChatModel: ...


def model_opener(base_url: str | None = None, *, max_attempts: int = 5, timeout: float = 60.0) -> ModelOpener:
    """Opens models as the commands do: ``openai:`` specs at ``base_url``, every model with the
    same retries and timeout, and no cache yet (the store's comes later: :func:`attach_cache`)."""

    def open_model(spec: str, *, concurrency: int | None = None) -> ChatModel:
        retry = RetryPolicy(max_attempts=max_attempts, timeout_s=timeout)
        return get_model(spec, base_url=base_url, retry=retry, max_concurrency=concurrency)

    return open_model


def open_reader(spec: str, open_model: ModelOpener) -> RankingReader:
    """The ranking reader a spec names; a model reader's model is built (and checked) here.
    An empty spec is refused (an unset shell variable), never read as the heuristic."""
    from ..ranking import get_reader

    if not spec.strip():
        raise PoiseError("--reader is empty", "name a reader: heuristic, a model spec, or heuristic+MODEL, "
                                              "or drop --reader for the heuristic")
    return get_reader(spec, lambda s: open_model(s))


def defended(engine: Recommender, specs: Sequence[str] | None, reader: RankingReader,
             open_model: ModelOpener) -> tuple[Recommender, list[ChatModel]]:
    """``engine`` wrapped by the defenses ``specs`` name, and the models those defenses opened."""
    from ..defenses import defend

    opened: list[ChatModel] = []
    return defend(engine, list(specs or []), defense_context(reader, open_model, opened)), opened


def defense_context(reader: RankingReader, open_model: ModelOpener, opened: list[ChatModel]) -> Context:
    """What defenses are built with: the reader, and one model per spec however many
    defenses ask for it (each model opened is appended to ``opened``)."""
    from ..defenses import Context

    by_spec: dict[str, ChatModel] = {}

    def open_defense_model(spec: str) -> ChatModel:
        if spec not in by_spec:
            by_spec[spec] = open_model(spec)
            opened.append(by_spec[spec])
        return by_spec[spec]

    return Context(reader=reader, open_model=open_defense_model)


def defense_identity(engine: Recommender) -> list[Any]:
    """What a run's inputs hash adds for a defended engine (nothing for a plain one, so runs
    recorded before defenses existed keep their identity)."""
    return [engine.identity()] if engine.identity().get("defenses") else []


def reader_models(reader: Any) -> list[Any]:
    """The models a reader asks (none for the heuristic one)."""
    parts = [reader.first, reader.second] if hasattr(reader, "second") else [reader]
    return [p.model for p in parts if hasattr(p, "model")]


def reader_identity(reader: Any) -> list[dict[str, Any]]:
    """The identities (endpoint and model, or file hash) of the models a reader asks: a run's inputs, so a
    run resumed with the same reader spec at another server starts anew (none for the heuristic reader)."""
    return [m.identity() for m in reader_models(reader)]


def attach_cache(store: Store, *models: Any, use_cache: bool = True) -> None:
    """Give models built before the store the store's request cache."""
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


def catalog_ref(catalog: str | Path | None) -> str:
    """How a run records its catalog: an absolute path (so a later `poise transfer` finds it
    from any folder), or 'sample' for the bundled one."""
    return str(Path(catalog).expanduser().resolve()) if catalog else "sample"


def load_template(path: str | Path | None) -> PromptTemplate:
    """The prompt template in a TOML file, or the default one (``None``)."""
    return PromptTemplate.from_file(Path(path)) if path else default_template()


def engine_config(max_tokens: object, **more: object) -> GenerateConfig:
    """The engine's sampling (DEFAULT_GENERATE_CONFIG) with ``max_tokens`` and ``more``, checked:
    a value out of bounds is one line here, never sent to a model (``model_copy`` would not check)."""
    from pydantic import ValidationError

    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= MAX_TOKENS:
        raise PoiseError(f"--max-tokens must be a whole number from 1 to {MAX_TOKENS:,}, not {max_tokens!r}",
                         f"give --max-tokens 1 to {MAX_TOKENS}")
    try:
        return GenerateConfig.model_validate({**DEFAULT_GENERATE_CONFIG.model_dump(), "max_tokens": max_tokens, **more})
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise PoiseError(f"--{where.replace('_', '-')}: {problem['msg']}, not {problem.get('input')!r}") from None


def run_config(**items: object) -> dict[str, object]:
    """What a run records as its configuration: plain values, never a key."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in items.items()}


def distinct(models: Iterable[Any]) -> list[Any]:
    """The models given, each once, without the ``None`` ones."""
    return list({id(m): m for m in models if m is not None}.values())


def distinct_categories(categories: Iterable[Category]) -> list[Category]:
    """The categories given, each once (``-c blender -c Blender`` names one category): a run
    that measured one twice would pool it as two, or write its trials' keys twice."""
    return list({c.name: c for c in categories}.values())
