"""The ``poise`` command line: thin commands over the library, one line per error."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.panel import Panel

from ..catalog import load_catalog
from ..engine import DEFAULT_GENERATE_CONFIG
from ..models import DEFAULT_MODEL_SPEC
from ..store import Store, store_dir
from . import _attack, _defend, _natural, _report, _reread, _sweep
from ._options import (
    AllowOutsideOpt,
    BaseUrlOpt,
    CatalogOpt,
    DefenseOpt,
    JsonOpt,
    LimitOpt,
    MaxAttemptsOpt,
    MaxTokensOpt,
    ModelOpt,
    ReaderOpt,
    SeedOpt,
    StoreOpt,
    TemplateOpt,
    TimeoutOpt,
)
from ._render import emit_json, make_console, note, out, ranking_table, runs_table, safe

if TYPE_CHECKING:  # annotations only
    from ..experiments import Recommendation

__all__ = ["app"]

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


# -- recommend --------------------------------------------------------------------------------
@app.command()
def recommend(
    category: Annotated[str, typer.Option("--category", "-c", help="Category to ask about.")],
    query: Annotated[str | None, typer.Option(
        "--query", "-q", help="The user's query (default: the category's).")] = None,
    model: ModelOpt = DEFAULT_MODEL_SPEC,
    seed: SeedOpt = 0,
    catalog: CatalogOpt = None,
    allow_outside_files: AllowOutsideOpt = False,
    template: TemplateOpt = None,
    max_tokens: MaxTokensOpt = DEFAULT_GENERATE_CONFIG.max_tokens,
    temperature: Annotated[float, typer.Option(
        "--temperature", min=0.0, max=2.0)] = DEFAULT_GENERATE_CONFIG.temperature,
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
    from ..experiments import attach_cache, load_template, model_opener, recommend_setup

    cat = load_catalog(catalog, allow_outside_files=allow_outside_files).category(category)
    setup = recommend_setup(cat, model=model, open_model=model_opener(base_url, max_attempts=max_attempts,
                                                                      timeout=timeout),
                            template=load_template(template), query=query, seed=seed, catalog=catalog,
                            max_tokens=max_tokens, temperature=temperature, reader=reader, defenses=defense)
    with Store(store) as db:
        attach_cache(db, *setup.models, use_cache=not no_cache)
        with db.open_run(setup.command, setup.config, resume=False, close=setup.closing) as run:
            if not as_json:
                with out.status(safe(f"asking {model} about {cat.name} ..."), spinner="dots"):
                    rec = setup.run(db, run.id)
            else:
                rec = setup.run(db, run.id)
    if as_json:
        emit_json(rec.to_json())
        return
    show_recommendation(rec)


def show_recommendation(rec: Recommendation) -> None:
    r = rec.result
    usage = r.response.usage
    origin = "from cache" if r.response.cached else f"{r.response.latency_s:.1f} s"
    out.print(Panel(safe(r.response.text), title=safe(f"{r.category}: {r.query}"), title_align="left",
                    subtitle=safe(f"{r.response.model} | {usage.prompt_tokens}+{usage.completion_tokens} tokens"
                                  f" | {origin}"),
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
    limit: LimitOpt = 20,
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
            "latency_s": round(r.latency_s, 3), "config": None if r.config_problem else r.config,
            **({"config_problem": r.config_problem} if r.config_problem else {})} for r in records])
        return
    out.print(runs_table(records, where, out.width) if records else safe(f"No runs yet in {where}."))
    err = make_console(stderr=True)
    for r in records:
        if r.config_problem:
            note(err, f"note: the configuration of run {r.id} cannot be read ({r.config_problem})")


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

for _command in (_natural.natural, _attack.attack, _attack.transfer, _report.report, _reread.reread,
                 _defend.defend, _sweep.sweep):
    app.command()(_command)
