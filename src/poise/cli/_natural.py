"""``poise natural``: what drives the rankings when nobody attacks them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ..engine import DEFAULT_GENERATE_CONFIG
from ..models import DEFAULT_MODEL_SPEC
from ._open import say_started
from ._options import (
    AllowOutsideOpt,
    BaseUrlOpt,
    CatalogOpt,
    DefenseOpt,
    JsonOpt,
    MaxAttemptsOpt,
    MaxTokensOpt,
    ModelOpt,
    ReaderOpt,
    SeedOpt,
    StoreOpt,
    TemplateOpt,
    TimeoutOpt,
)
from ._render import emit_json, make_console, out, progress_bar, safe

if TYPE_CHECKING:  # annotations only: the CLI imports these where it uses them
    from ..experiments import Analysis
    from ..stats import FTest


def natural(
    category: Annotated[list[str] | None, typer.Option(
        "--category", "-c", help="A category to analyse (repeat for several).")] = None,
    all_categories: Annotated[bool, typer.Option("--all", help="Analyse every category of the catalog.")] = False,
    trials: Annotated[int, typer.Option("--trials", "-n", min=2, help="Trials per category.")] = 20,
    model: ModelOpt = DEFAULT_MODEL_SPEC,
    seed: SeedOpt = 0,
    concurrency: Annotated[int, typer.Option("--concurrency", "-k", min=1, max=64,
                                             help="Trials in flight at once (HTTP backends).")] = 4,
    catalog: CatalogOpt = None,
    allow_outside_files: AllowOutsideOpt = False,
    template: TemplateOpt = None,
    max_tokens: MaxTokensOpt = DEFAULT_GENERATE_CONFIG.max_tokens,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the intervals.")] = 1000,
    rewrite_model: Annotated[str | None, typer.Option(
        "--rewrite-model", help="Rewrite documents with this model spec instead of substituting names.")] = None,
    base_url: BaseUrlOpt = None,
    store: StoreOpt = None,
    max_attempts: MaxAttemptsOpt = 5,
    timeout: TimeoutOpt = 60.0,
    reader: ReaderOpt = "heuristic",
    defense: DefenseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure what drives the rankings: product name, document or context position.

    Each trial gives every product a randomly chosen document (rewritten to present it)
    and a random context order. Running the same command again resumes an interrupted run.
    """
    from ..catalog import load_catalog
    from ..experiments import attach_cache, load_template, model_opener, natural_setup
    from ..store import Store

    cat = load_catalog(catalog, allow_outside_files=allow_outside_files)
    if all_categories == bool(category):
        raise typer.BadParameter("name categories with --category, or pass --all", param_hint="--category")
    categories = list(cat.categories.values()) if all_categories else [cat.category(c) for c in category or []]
    err = make_console(stderr=True)
    # every model is built (spec, file, URL, key checked) before anything is created
    setup = natural_setup(categories, model=model, open_model=model_opener(base_url, max_attempts=max_attempts,
                                                                           timeout=timeout),
                          template=load_template(template), trials=trials, seed=seed, concurrency=concurrency,
                          catalog=catalog, max_tokens=max_tokens, rewrite_model=rewrite_model, reader=reader,
                          defenses=defense, bootstrap=bootstrap)
    total = trials * len(categories)
    with Store(store) as db:
        attach_cache(db, *setup.models)
        with db.open_run(setup.command, setup.config, close=setup.closing) as run:
            done = run.done_tasks() if run.resumed else 0
            say_started(err, run, f"{done} of {total} trials already done")
            with progress_bar(err, transient=as_json) as progress:
                task = progress.add_task(f"natural trials on {model}", total=total, completed=done)
                setup.run_trials(db, run.id, lambda: progress.advance(task))
            with err.status("analysing ..."):
                result = setup.save(db, run.id)
    if as_json:
        emit_json(result.stored.model_dump(mode="json"))
        return
    show_natural(result.analyses, run.id, result.plots)


def _f(test: FTest) -> str:
    if not math.isfinite(test.f):
        return "-"
    stars = "***" if test.p < 0.001 else "**" if test.p < 0.01 else "*" if test.p < 0.05 else ""
    return f"{test.f:.2f}{stars}"


def _eta(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "-"


def show_natural(analyses: Mapping[str, Analysis], run_id: str, plots: list[Path]) -> None:
    from ..experiments import FACTORS, POOLED

    table = Table(title="What drives the rankings: one-way F (* p<.05 ** p<.01 *** p<.001)",
                  title_justify="left", header_style="bold")
    table.add_column("category", no_wrap=True)
    table.add_column("trials", justify="right", no_wrap=True)
    for _factor, label in zip(FACTORS, ("F prod", "F doc", "F pos"), strict=True):
        table.add_column(label, justify="right", no_wrap=True)
    table.add_column("ηp² p/d/p", justify="right", no_wrap=True)
    names = list(analyses)
    for name, a in analyses.items():
        table.add_row(safe(name, "bold" if name == POOLED else ""), str(a.trials),
                      *[_f(a.one_way[f]) for f in FACTORS],
                      "/".join(_eta(a.joint[f].partial_eta_sq) for f in FACTORS),
                      end_section=POOLED in analyses and len(names) > 1 and name == names[-2])
    out.print(table)
    for cat, a in analyses.items():
        if cat != POOLED and (a.unparseable or a.ambiguous or a.failed):
            why = "; ".join(f"{reason} ({k})" for reason, k in a.unread_reasons.items())
            out.print(safe(f"{cat}: {a.unparseable} unparseable and {a.ambiguous} ambiguous answers left out, "
                           f"{a.failed} failed trials" + (f" — {why}" if why else ""), "yellow"))
    out.print(safe("F: one-way ANOVA of product name, document, context position (as in the paper). "
                   "ηp²: partial eta squared of product/document/position in the joint Type II ANOVA.", "dim"))
    curve = Table(title="Position bias: mean score by context position", title_justify="left", header_style="bold")
    curve.add_column("category")
    n = max(len(a.position_curve) for a in analyses.values())
    for p in range(1, n + 1):
        curve.add_column(str(p), justify="right")
    for name, a in analyses.items():
        curve.add_row(safe(name), *[f"{v:.2f}" if math.isfinite(v) else "-" for v in a.position_curve])
    out.print(curve)
    for path in plots:
        out.print(safe(f"plot: {path}", "dim"))
    out.print(safe(f"run {run_id}", "dim"))
