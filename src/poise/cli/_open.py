"""What the commands say when a run starts. Everything a run is built from (models, readers,
defended engines, its configuration) lives in the library: :mod:`poise.experiments`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console

from ._render import note

if TYPE_CHECKING:
    from ..store import RunContext


def say_started(err: Console, run: RunContext, resumed: str | None = None) -> None:
    """One line on stderr when a run resumes (``resumed``, default: the queries it already
    made), when the command's last run stopped with other inputs (a new run starts), or when
    another live process holds a run of the same configuration (never adopted: this one starts
    its own)."""
    if run.resumed:
        note(err, f"resuming run {run.id}: {resumed or f'{run.done_tasks()} queries already made'}")
    elif run.stopped_other:
        stopped, keys = run.stopped_other
        shown = ", ".join(keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
        note(err, f"starting a new run {run.id}: run {stopped} stopped with other inputs ({shown} differ); "
                  "the same inputs as that run resume it")
    elif run.live:
        other = run.live[0]
        note(err, f"run {other.id} with the same configuration is still running (pid {other.pid} on "
                  f"{other.host}); starting a new run {run.id}")
