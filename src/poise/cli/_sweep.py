"""``poise sweep FILE``: a grid of natural, attack and defend runs from one sweep file."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from ._options import JsonOpt, StoreOpt
from ._render import emit_json, make_console, out, progress_bar, safe

if TYPE_CHECKING:  # annotations only
    from ..sweep import Event, Outcome, Prepared


def sweep(
    file: Annotated[Path, typer.Argument(help="The sweep file (TOML): axes and fixed options; see the README.")],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the jobs, their state in the store and an estimate of queries and tokens; "
                          "run nothing.")] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=64, help="Jobs run at once.")] = 1,
    retries: Annotated[int, typer.Option(
        "--retries", min=0, max=10, help="Times a failed job is run again (resuming its run).")] = 1,
    base_url: Annotated[list[str] | None, typer.Option(
        "--base-url", envvar="OPENAI_BASE_URL", show_envvar=True,
        help="An endpoint for openai:MODEL specs; repeat to spread calls over several servers.")] = None,
    endpoint_limit: Annotated[int, typer.Option(
        "--endpoint-limit", min=1, max=256, help="Calls in flight at once per endpoint (with several).")] = 4,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a grid of ordinary runs (every category x model x template x method x defense x
    seed of a sweep file), resumably: a rerun skips finished jobs, resumes interrupted ones and
    retries failed ones."""
    from ..store import Store
    from ..sweep import LocalExecutor, ModelSource, close_models, load_sweep, prepare_all, store_states, totals

    plan = load_sweep(file)
    urls = [u for item in base_url or [] for u in item.split() if u]  # the env var may list several
    source = ModelSource(urls, endpoint_limit=endpoint_limit)
    prepared = prepare_all(plan.jobs(), source)
    try:
        if dry_run:
            if Store.exists(store):
                with Store(store, read_only=True) as db:
                    store_states(db, prepared)
            else:
                store_states(None, prepared)
            show_plan(prepared, as_json)
            return
        err = make_console(stderr=True)
        try:
            with Store(store) as db, progress_bar(err, transient=True) as progress:
                bar = progress.add_task(f"sweep {plan.path.name}", total=len(prepared))
                outcomes = LocalExecutor(db, jobs=jobs, retries=retries,
                                         on_event=_on_event(progress, bar)).run(prepared)
        except KeyboardInterrupt:
            _leave_now()
    finally:
        close_models(prepared)
        source.close()
    summary = totals(outcomes)
    if as_json:
        emit_json({"sweep": str(plan.path), "totals": summary, "jobs": [o.to_json() for o in outcomes],
                   "endpoints": source.stats()})
    else:
        out.print(outcome_table(outcomes))
        out.print(safe(_totals_line(summary), "dim"))
    failed = summary["states"].get("failed", 0)
    if failed:
        from .._errors import PoiseError

        raise PoiseError(f"{failed} of {len(outcomes)} jobs failed", "run the same sweep again to retry them")


def _leave_now() -> None:
    """Ctrl-C: the running jobs' runs are marked interrupted and every finished call is
    committed (the store is closed). Calls still in flight on worker threads are abandoned, not
    waited for (each could take up to --timeout): the process ends here, with the one line and
    exit code every command gives for Ctrl-C."""
    import os
    import sys

    from ._main import _INTERRUPT_LINE, INTERRUPTED, _fail

    _fail(_INTERRUPT_LINE, INTERRUPTED)
    sys.stdout.flush()
    os._exit(INTERRUPTED)


def _on_event(progress: Any, bar: Any) -> Any:
    def on_event(event: Event, job: Prepared) -> None:
        if event.kind in ("done", "failed"):
            progress.advance(bar)
        elif event.kind == "started":
            verb = "resuming" if event.resumed else "running"
            progress.update(bar, description=f"{verb} {job.job.label}")
    return on_event


def show_plan(prepared: list[Prepared], as_json: bool) -> None:
    rows: list[dict[str, Any]] = [
        {"job": p.job.label, "command": shlex.join(["poise", *p.job.argv()]), "state": p.state, "run_id": p.run_id,
         "most_queries": p.estimate()["queries"], "about_tokens": p.estimate()["tokens"]} for p in prepared]
    todo = [r for r in rows if r["state"] != "finished"]
    total = {"jobs": len(rows), "to_run": len(todo), "most_queries": sum(r["most_queries"] for r in todo),
             "about_tokens": sum(r["about_tokens"] for r in todo)}
    if as_json:
        emit_json({"jobs": rows, "totals": total})
        return
    table = Table(title=f"{len(rows)} jobs", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    for col in ("#", "job", "in store", "queries ≤", "tokens ≈"):
        table.add_column(col, justify="right" if col in ("#", "queries ≤", "tokens ≈") else "left", overflow="fold")
    for n, r in enumerate(rows, 1):
        table.add_row(str(n), safe(r["job"]), safe(r["state"]), str(r["most_queries"]), f"{r['about_tokens']:,}")
    out.print(table)
    out.print(safe(f"to run: {total['to_run']} of {total['jobs']} jobs, at most {total['most_queries']:,} "
                   f"queries, about {total['about_tokens']:,} tokens (a defense's extra calls come on top)"))


def outcome_table(outcomes: list[Outcome]) -> Table:
    table = Table(title="Sweep", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    for col in ("job", "state", "run", "tries", "queries", "score before→after / error"):
        table.add_column(col, justify="right" if col in ("tries", "queries") else "left", overflow="fold")
    style = {"done": "green", "skipped": "dim", "failed": "red", "interrupted": "yellow"}
    for o in outcomes:
        before, after = o.extra.get("score_before"), o.extra.get("score_after")
        note = o.error or (f"{before:.2f} → {after:.2f}" if before is not None and after is not None else "")
        table.add_row(safe(o.label), safe(o.state, style.get(o.state, "")), safe(o.run_id or "-"),
                      str(o.attempts), str(o.queries), safe(note))
    return table


def _totals_line(t: dict[str, Any]) -> str:
    states = ", ".join(f"{n} {s}" for s, n in t["states"].items())
    return (f"{t['jobs']} jobs: {states}; {t['queries']} queries ({t['calls']} model calls, "
            f"{t['cache_hits']} from cache), {t['tokens']:,} tokens")
