"""``poise reread``: read a stored run's answers again with another reader (no recommender call)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from .._errors import PoiseError
from ..store import Store
from ._options import BaseUrlOpt, JsonOpt, MaxAttemptsOpt, StoreOpt, TimeoutOpt
from ._render import emit_json, make_console, note, out, safe


def reread(
    run_id: Annotated[str, typer.Argument(
        help="The run whose answers to read again: its id or a unique prefix (see `poise runs`).")],
    reader: Annotated[str, typer.Option(
        "--reader", help="heuristic, a model spec, or heuristic+MODEL (kept only when both agree).")] = "heuristic",
    base_url: BaseUrlOpt = None,
    store: StoreOpt = None,
    max_attempts: MaxAttemptsOpt = 5,
    timeout: TimeoutOpt = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Read every answer of a stored run again with another reader, into a new run of the
    same kind: no recommender call is made, and `poise report` shows the new readings (of an
    attack, transfer or defend run, their counts: its figures are not recomputed). Resumable."""
    from ..experiments import attach_cache, model_opener, open_reader, reader_models, reread_run
    from ..report import resolve_runs

    if not Store.exists(store):
        raise PoiseError("there is no results store here", "pass --store DIR, or run a command that writes one first")
    read = open_reader(reader, model_opener(base_url, max_attempts=max_attempts, timeout=timeout))
    with Store(store) as db:
        run_id = resolve_runs(db, [run_id])[0].id  # an id or a unique prefix, as `poise report` takes it
        attach_cache(db, *reader_models(read))
        result = reread_run(db, run_id, read)
        read.close()
    if result.resumed:
        note(make_console(stderr=True), f"resuming run {result.run_id}: {result.resumed} answers already read")
    if as_json:
        emit_json(result.to_json())
        return
    table = Table(title=safe(f"{run_id} read again by {result.reader}: run {result.run_id}"), title_justify="left",
                  header_style="bold")
    for col in ("", "ranked", "unparseable", "ambiguous"):
        table.add_column(col, justify="right" if col else "left")
    for side, counts in (("before", result.before), ("after", result.after)):
        table.add_row(side, *(str(counts.get(k, 0)) for k in ("ranked", "unparseable", "ambiguous")))
    out.print(table)
    out.print(safe(f"{result.changed} of {result.calls} readings changed; {result.skipped} calls skipped "
                   "(failed, or no product list in the store)."))
    for reason, n in result.reasons.most_common(5):
        out.print(safe(f"  {n} x {reason}", "dim"))
