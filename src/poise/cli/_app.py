"""The ``poise`` command line: thin commands over the library, one line per error."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.panel import Panel

from .._errors import PoiseError
from ..catalog import load_catalog
from ..engine import SearchEngine
from ..engine import DEFAULT_GENERATE_CONFIG
from ..engine._template import PromptTemplate, default_template
from ..experiments import recommend as run_recommend
from ..models import DEFAULT_MODEL_SPEC, RequestCache, RetryPolicy, get_model
from ..store import STORE_ENV, Store, content_hash, store_dir
from ._render import emit_json, make_console, note, ranking_table, runs_table, safe

app = typer.Typer(
    name="poise",
    help="Measure and harden how LLM-powered search engines rank products.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
catalog_app = typer.Typer(help="List, show and validate catalogs.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")

out = make_console()


# -- shared options -----------------------------------------------------------------------------
CatalogOpt = Annotated[Optional[str], typer.Option(
    "--catalog", help="A .jsonl or .csv catalog or a folder of HTML pages (default: the bundled sample).")]
ModelOpt = Annotated[str, typer.Option(
    "--model", "-m", help="Model spec: local, llamacpp:PATH or openai:MODEL.")]
BaseUrlOpt = Annotated[Optional[str], typer.Option(
    "--base-url", envvar="OPENAI_BASE_URL", show_envvar=True,
    help="Endpoint for openai:MODEL specs (the key comes from OPENAI_API_KEY).")]
StoreOpt = Annotated[Optional[Path], typer.Option(
    "--store", envvar=STORE_ENV, show_envvar=True, help="Results folder (default ./poise-runs).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


TemplateOpt = Annotated[Optional[Path], typer.Option("--template", help="A prompt template TOML file.")]
MaxTokensOpt = Annotated[int, typer.Option("--max-tokens", min=1, help="Most tokens per answer.")]
MaxAttemptsOpt = Annotated[int, typer.Option(
    "--max-attempts", min=1, max=20, help="Tries per call on timeouts, 429 and 5xx (exponential backoff).")]
TimeoutOpt = Annotated[float, typer.Option(
    "--timeout", min=0.1, help="Seconds one answer from a model server may take; a call gives up after 3 x this, "
                               "retries and Retry-After waits included.")]
ReaderOpt = Annotated[str, typer.Option(
    "--reader", help="How answers are read: heuristic (default), a model spec (the model returns the ranking as "
                     "JSON under a schema), or heuristic+MODEL (kept only when both agree; the rest is ambiguous).")]
DefenseOpt = Annotated[Optional[list[str]], typer.Option(
    "--defense", help="Defend the engine: NAME[:key=value,...]; repeat to compose (the first wraps the engine). "
                      "See `poise defend --list`.")]
AllowOutsideOpt = Annotated[bool, typer.Option(
    "--allow-outside-files", help="Let a catalog you trust read files outside its own folder.")]


def open_model(spec: str, base_url: str | None, store: Store | None, use_cache: bool = True, max_attempts: int = 5,
               concurrency: int | None = None, timeout: float = 60.0):
    """The model a spec names. Building it checks the spec, the file or URL and the key without
    loading or calling anything, so commands build their models before they create a store
    (``store=None``) and attach the store's request cache after (``attach_cache``)."""
    cache = RequestCache(store.cache_path) if use_cache and store is not None else None
    retry = RetryPolicy(max_attempts=max_attempts, timeout_s=timeout)
    return get_model(spec, base_url=base_url, cache=cache, retry=retry,
                     max_concurrency=concurrency)


def open_reader(spec: str, base_url: str | None, max_attempts: int = 5, timeout: float = 60.0):
    """The ranking reader a spec names; a model reader's model is built (and checked) here,
    before any store exists, and gets the store's cache through ``attach_cache(store, reader_model(r))``."""
    from ..ranking import get_reader

    return get_reader(spec, lambda s: open_model(s, base_url, None, max_attempts=max_attempts, timeout=timeout))


def defended(engine, specs: list[str] | None, reader, base_url: str | None, max_attempts: int = 5,
             timeout: float = 60.0):
    """``engine`` wrapped by the defenses ``specs`` name, and the models those defenses opened
    (to get the store's cache). Everything is checked here, before any store exists."""
    from ..defenses import Context, defend

    opened: list = []

    def open_defense_model(spec: str):
        llm = open_model(spec, base_url, None, max_attempts=max_attempts, timeout=timeout)
        opened.append(llm)
        return llm

    return defend(engine, specs or [], Context(reader=reader, open_model=open_defense_model)), opened


def defense_identity(engine) -> list:
    """What a run's inputs hash adds for a defended engine (nothing for a plain one, so runs
    recorded before defenses existed keep their identity)."""
    return [engine.identity()] if engine.identity().get("defenses") else []


def reader_models(reader) -> list:
    """The models a reader asks (none for the heuristic one)."""
    parts = [reader.first, reader.second] if hasattr(reader, "second") else [reader]
    return [p.model for p in parts if hasattr(p, "model")]


def attach_cache(store: Store, *models, use_cache: bool = True) -> None:
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


def claim_or_start(db: Store, command: str, config: dict[str, object], err) -> tuple[str, bool]:
    """Resume the latest unfinished run of this configuration whose owner is gone, or start
    a new one; a run another live process is working on is never adopted (one line says so).
    Returns the run id and whether it was resumed."""
    run_id, live = db.claim_unfinished(command, config)
    if run_id:
        return run_id, True
    run_id = db.start_run(command, config)
    if live:
        other = live[0]
        note(err, f"run {other.id} with the same configuration is still running (pid {other.pid} on "
                  f"{other.host}); starting a new run {run_id}")
    return run_id, False


def load_template(path: Path | None) -> PromptTemplate:
    return PromptTemplate.from_file(path) if path else default_template()


def run_config(**items: object) -> dict[str, object]:
    """What a run records as its configuration: plain values, never a key."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in items.items()}


# -- recommend --------------------------------------------------------------------------------
@app.command()
def recommend(
    category: Annotated[str, typer.Option("--category", "-c", help="Category to ask about.")],
    query: Annotated[Optional[str], typer.Option("--query", "-q", help="The user's query (default: the category's).")] = None,
    model: ModelOpt = DEFAULT_MODEL_SPEC,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the context order and the model's sampling.")] = 0,
    catalog: CatalogOpt = None,
    allow_outside_files: AllowOutsideOpt = False,
    template: TemplateOpt = None,
    max_tokens: MaxTokensOpt = DEFAULT_GENERATE_CONFIG.max_tokens,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0, max=2.0)] = DEFAULT_GENERATE_CONFIG.temperature,
    base_url: BaseUrlOpt = None,
    store: StoreOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Ask the model even if this request was seen.")] = False,
    max_attempts: MaxAttemptsOpt = 5,
    timeout: TimeoutOpt = 60.0,
    reader: ReaderOpt = "heuristic",
    defense: DefenseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask the search engine to recommend products of a category; show the ranking."""
    cat = load_catalog(catalog, allow_outside_files=allow_outside_files).category(category)
    tmpl = load_template(template)
    llm = open_model(model, base_url, None, max_attempts=max_attempts, timeout=timeout)
    read = open_reader(reader, base_url, max_attempts, timeout)
    config = DEFAULT_GENERATE_CONFIG.model_copy(update={"max_tokens": max_tokens, "temperature": temperature})
    engine, defense_models = defended(SearchEngine(llm, template=tmpl, config=config), defense, read, base_url,
                                      max_attempts, timeout)
    with Store(store) as db:
        attach_cache(db, llm, *reader_models(read), *defense_models, use_cache=not no_cache)
        run_id = db.start_run("recommend", run_config(
            category=cat.name, query=query or cat.default_query, model=model, seed=seed, reader=read.name,
            defenses=engine.identity().get("defenses", []),
            catalog=catalog_ref(catalog), template=tmpl.name, generate=config.model_dump(mode="json"),
            base_url=getattr(llm, "identity")().get("base_url"),
            inputs=inputs_hash(cat, query or cat.default_query, tmpl, llm.identity(), config, seed,
                               *defense_identity(engine))))
        try:
            if not as_json:
                with out.status(safe(f"asking {model} about {cat.name} ..."), spinner="dots"):
                    rec = run_recommend(engine, cat, store=db, run_id=run_id, query=query, seed=seed, reader=read)
            else:
                rec = run_recommend(engine, cat, store=db, run_id=run_id, query=query, seed=seed, reader=read)
        except BaseException as exc:
            db.finish_run(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                          exc.one_line() if isinstance(exc, PoiseError) else type(exc).__name__)
            raise
        db.finish_run(run_id)
        llm.close()
        read.close()
    if as_json:
        emit_json(rec.to_json())
        return
    show_recommendation(rec)


def show_recommendation(rec) -> None:
    r = rec.result
    usage = r.response.usage
    origin = "from cache" if r.response.cached else f"{r.response.latency_s:.1f} s"
    out.print(Panel(safe(r.response.text), title=safe(f"{r.category}: {r.query}"), title_align="left",
                    subtitle=safe(f"{r.response.model} | {usage.prompt_tokens}+{usage.completion_tokens} tokens | {origin}"),
                    subtitle_align="right"))
    if rec.ranking.ambiguous:
        out.print(safe(f"The answer can be read more than one way ({rec.ranking.reason}); it is stored as ambiguous "
                       "and not scored.", "yellow"))
    elif not rec.ranking.parseable:
        out.print(safe(f"No ranking could be read: {rec.ranking.reason}. The call is stored as unparseable.", "yellow"))
    out.print(ranking_table("Extracted ranking (score n - rank + 1; unlisted 0)", rec.ranked_products()))
    out.print(safe(f"run {rec.run_id}", "dim"))


# -- catalog ----------------------------------------------------------------------------------
@catalog_app.command("list")
def catalog_list(catalog: CatalogOpt = None, allow_outside_files: AllowOutsideOpt = False,
                 as_json: JsonOpt = False) -> None:
    """List the categories of a catalog."""
    cat = load_catalog(catalog, allow_outside_files=allow_outside_files)
    if as_json:
        emit_json({name: {"products": len(c.products), "query": c.default_query}
                   for name, c in cat.categories.items()})
        return
    from rich.table import Table

    table = Table(title=safe(f"{len(cat)} categories in {cat.source}"), title_justify="left")
    table.add_column("category")
    table.add_column("products", justify="right")
    table.add_column("default query")
    for name, c in cat.categories.items():
        table.add_row(safe(name), str(len(c.products)), safe(c.default_query))
    out.print(table)


@catalog_app.command("show")
def catalog_show(
    category: Annotated[str, typer.Argument(help="Category name.")],
    catalog: CatalogOpt = None,
    allow_outside_files: AllowOutsideOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the products and documents of one category."""
    cat = load_catalog(catalog, allow_outside_files=allow_outside_files).category(category)
    if as_json:
        emit_json(cat.model_dump(mode="json"))
        return
    out.print(safe(f"{cat.name}: {len(cat.products)} products; query: {cat.default_query}", "bold"))
    for i, p in enumerate(cat.products):
        source = p.document.source_url or "no source URL"
        out.print(Panel(safe(p.document.text), title=safe(f"[{i}] {p.brand} | {p.model}"), title_align="left",
                        subtitle=safe(f"{len(p.document.text)} chars | {source}"), subtitle_align="right"))


@catalog_app.command("validate")
def catalog_validate(path: Annotated[str, typer.Argument(help="A .jsonl or .csv file or an HTML folder.")],
                     allow_outside_files: AllowOutsideOpt = False) -> None:
    """Check a catalog; name the file, line and field of the first problem."""
    cat = load_catalog(path, allow_outside_files=allow_outside_files)
    n = sum(len(c.products) for c in cat.categories.values())
    out.print(safe(f"ok: {len(cat)} categories, {n} products in {cat.source}", "green"))


# -- runs -------------------------------------------------------------------------------------
@app.command()
def runs(
    store: StoreOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List the runs in the results store, newest first."""
    if not Store.exists(store):  # listing must not create an empty store
        emit_json([]) if as_json else out.print(safe(f"No results store in {store_dir(store)} yet."))
        return
    with Store(store, read_only=True) as db:
        records = db.runs(limit)
        where = db.db_path
    if as_json:
        emit_json([{
            "id": r.id, "command": r.command, "status": r.status, "created": r.created,
            "calls": r.calls, "failed_calls": r.failed_calls, "cached_calls": r.cached_calls,
            "unparseable_calls": r.unparseable_calls, "ambiguous_calls": r.ambiguous_calls,
            "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
            "latency_s": round(r.latency_s, 3), "config": r.config} for r in records])
        return
    out.print(runs_table(records, where, out.width) if records else safe(f"No runs yet in {where}."))


# -- demo ---------------------------------------------------------------------------------------
@app.command()
def demo(
    model: ModelOpt = DEFAULT_MODEL_SPEC,
    categories: Annotated[int, typer.Option("--categories", min=1, max=10, help="How many categories to tour.")] = 2,
    base_url: BaseUrlOpt = None,
    store: StoreOpt = None,
) -> None:
    """A short end-to-end tour on the bundled model: catalog, recommendations, rankings, cache."""
    from ._demo import run_demo

    run_demo(out, model=model, n_categories=categories, base_url=base_url, store_path=store)

from . import _natural  # noqa: E402,F401  (registers `poise natural`)
from . import _attack  # noqa: E402,F401  (registers `poise attack` and `poise transfer`)
from . import _report  # noqa: E402,F401  (registers `poise report`)
from . import _reread  # noqa: E402,F401  (registers `poise reread`)
from . import _defend  # noqa: E402,F401  (registers `poise defend`)
