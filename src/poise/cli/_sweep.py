"""``poise sweep FILE``: a grid of natural, attack and defend runs from one sweep file."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from .._errors import PoiseError
from ._options import JsonOpt, StoreOpt
from ._render import emit_json, make_console, out, safe
from ._sweep_view import SweepView

if TYPE_CHECKING:  # annotations only
    from ..store import Store
    from ..sweep import Job, ModelSource, Outcome, Prepared


def _sweep_file(value: str) -> Path:
    """The sweep file. An empty path (an unset shell variable) is refused: as a path it reads as
    '.', which was then called a folder."""
    if not value.strip():
        raise typer.BadParameter("is empty; name the sweep file (TOML)")
    return Path(value)


def _report_file(value: str) -> Path:
    """--report's file. An empty one (an unset shell variable) is refused: as a path it reads as
    '.', which was then called a folder."""
    if not value.strip():
        raise typer.BadParameter("is empty; pass the HTML file to write, or leave --report out")
    return Path(value)


def sweep(
    file: Annotated[Path, typer.Argument(
        parser=_sweep_file, help="The sweep file (TOML): axes and fixed options; see the README.")],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the jobs, their state in the store and an estimate of queries and tokens; "
                          "run nothing.")] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=64, help="Jobs run at once.")] = 1,
    retries: Annotated[int, typer.Option(
        "--retries", min=0, max=10, help="Times a failed job is run again (resuming its run).")] = 1,
    executor: Annotated[str, typer.Option(
        "--executor", help="local (threads of this process) or ray (Ray tasks; the store is written here "
                           "alone).")] = "local",
    address: Annotated[str | None, typer.Option(
        "--address", help="The Ray cluster to join (e.g. 10.0.0.5:6379; default: start a local one).",
        show_default=False)] = None,
    report: Annotated[Path | None, typer.Option(
        "--report", parser=_report_file, metavar="<path>", show_default=False,
        help="Write one HTML report of the whole sweep here (with --dry-run: of what the store holds, running "
             "nothing).")] = None,
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
    from ..sweep import ModelSource, close_models, load_sweep, prepare_all, totals

    _check_flags(executor, address, report, dry_run)
    plan = load_sweep(file)
    urls = [u for item in base_url or [] for u in item.split() if u]  # the env var may list several
    if base_url and not urls:  # --base-url "" (an unset shell variable): never OpenAI's API silently
        raise PoiseError(f"--base-url is blank ({base_url[0]!r})",
                         "pass the server's URL, like http://127.0.0.1:8080/v1, or drop --base-url for the default")
    source = ModelSource(urls, endpoint_limit=endpoint_limit)
    prepared = prepare_all(plan.jobs(), source, where=f"sweep file {file}")
    try:
        if dry_run:
            _dry_run(prepared, store, report, plan.path.name, as_json)
            return
        try:
            outcomes, endpoints, seconds = _run(plan.path.name, prepared, source, store, executor=executor,
                                                address=address, jobs=jobs, retries=retries, report=report)
        except KeyboardInterrupt:
            _leave_now()
    finally:
        close_models(prepared)
        source.close()
    summary = {**totals(outcomes), "seconds": round(seconds, 3),
               "queries_per_s": round(sum(o.queries for o in outcomes) / max(seconds, 1e-9), 3)}
    if as_json:
        emit_json({"sweep": str(plan.path), "executor": executor, "totals": summary,
                   "jobs": [o.to_json() for o in outcomes], "endpoints": endpoints,
                   **({"report": str(report)} if report else {})})
    else:
        out.print(outcome_table(outcomes))
        out.print(safe(_totals_line(summary), "dim"))
        if report:
            out.print(safe(f"report: {report}"))
    failed = summary["states"].get("failed", 0)
    if failed:
        raise PoiseError(f"{failed} of {len(outcomes)} jobs failed", "run the same sweep again to retry them")


def _check_flags(executor: str, address: str | None, report: Path | None, dry_run: bool) -> None:
    """Flags that do not fit, refused before anything is read or written."""
    if executor not in ("local", "ray"):
        raise PoiseError(f"unknown executor {executor!r}", "use --executor local or --executor ray")
    if address is not None and executor != "ray":
        raise PoiseError("--address names a Ray cluster", "add --executor ray, or drop --address")
    if address is not None:
        from ..sweep import check_ray_address

        check_ray_address(address)
    if executor == "ray" and not dry_run:
        from ..sweep import require_ray

        require_ray()
    if report is not None and (report.is_dir() or not report.parent.is_dir()):
        raise PoiseError(f"cannot write the report to {report}: "
                         + ("it is a folder" if report.is_dir() else "no such folder"),
                         "pass a file in an existing folder to --report")
    if report is not None:
        from ._report import check_target

        check_target(report, "--report")


def _dry_run(prepared: list[Prepared], store: Path | None, report: Path | None, name: str, as_json: bool) -> None:
    from ..store import Store
    from ..sweep import store_states

    if not Store.exists(store):
        if report is not None:
            raise PoiseError(f"no results store at {store or 'the default place'} to report on",
                             "run the sweep first (without --dry-run)")
        store_states(None, prepared)
        show_plan(prepared, as_json)
        return
    with Store(store, read_only=True) as db:
        store_states(db, prepared)
        if report is not None:
            _write_report(db, name, [(p.job, p.state, p.run_id) for p in prepared], report)
    show_plan(prepared, as_json)


def _run(name: str, prepared: list[Prepared], source: ModelSource, store: Path | None, *, executor: str,
         address: str | None, jobs: int, retries: int, report: Path | None,
         ) -> tuple[list[Outcome], dict[str, Any], float]:
    """Run the jobs with the live view on stderr; write the report; the outcomes, the
    endpoints' figures and the seconds the sweep took."""
    import time
    from contextlib import nullcontext

    from ..store import Store
    from ..sweep import LocalExecutor, RayExecutor, Tally, ray_session, store_states

    # a new store is created only once Ray is reached: a bad --address leaves nothing behind
    with ray_session(address) if executor == "ray" and not Store.exists(store) else nullcontext(), \
            Store(store) as db:
        store_states(db, prepared)
        ex: LocalExecutor | RayExecutor = LocalExecutor(db, jobs=jobs, retries=retries)
        if executor == "ray":
            ex = RayExecutor(db, jobs=jobs, retries=retries, address=address, base_urls=source.base_urls,
                             endpoint_limit=source.endpoint_limit)
        endpoints = ex.endpoint_stats if isinstance(ex, RayExecutor) else source.stats
        tally = Tally(prepared, tokens=ex.live_tokens, endpoints=endpoints)
        begun = time.monotonic()
        with SweepView(make_console(stderr=True), tally, name) as view:
            ex.on_event = view.on_event
            outcomes = ex.run(prepared)
        seconds = time.monotonic() - begun
        if report is not None:
            _write_report(db, name, [(p.job, o.state, o.run_id) for p, o in zip(prepared, outcomes, strict=True)],
                          report)
    return outcomes, endpoints(), seconds


def _write_report(db: Store, name: str, jobs: list[tuple[Job, str, str | None]], path: Path) -> None:
    from ..report import gather_sweep, render_sweep_html
    from ._report import write_text

    write_text(path, render_sweep_html(gather_sweep(db, name, jobs)), flag="--report")


def _leave_now() -> None:
    """Ctrl-C (or SIGTERM): the running jobs' runs are marked interrupted and every finished
    call is committed (the store is closed). Calls still in flight on worker threads are
    abandoned, not waited for (each could take up to --timeout): the process ends here, with the
    one line and exit code every command gives for Ctrl-C (or SIGTERM)."""
    import os
    import sys

    from ._main import interrupted

    code = interrupted()
    sys.stdout.flush()
    os._exit(code)


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
