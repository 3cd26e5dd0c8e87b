"""Terminal views. Product pages, responses and injections are untrusted: they are shown
as plain rich ``Text`` (never parsed as markup) with control characters removed, so an
answer cannot style, move or clear the terminal, open a link or crash a view with ``[/]``.
Spinners and progress bars too: their texts are ``Text`` or columns with markup off."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from .._text import escape_unsafe_json, shown

if TYPE_CHECKING:  # only for annotations: rendering never loads the store
    from ..store import RunRecord


class OutputClosed(Exception):
    """stdout was closed by its reader (``poise ... | head``): the command stops quietly.

    Not an ``OSError``, so click's own EPIPE handling (exit 1, stdout left half-closed)
    never sees it; ``poise.cli.main`` ends such a run with exit code 0 and no message.
    """


def inert(text: str) -> str:
    """Untrusted text with every escape sequence and control, bidi and invisible character
    removed, and hidden tag characters written out (``⟦hidden: ...⟧``, as the reports show them)."""
    return shown(str(text))


def safe(text: str, style: str = "") -> Text:
    """Untrusted text as a rich Text: shown literally, never interpreted as markup."""
    return Text(inert(text), style=style)


def note(console: Console, text: str) -> None:
    """One line on the console (stderr, usually), never wrapped into several: a newline in
    untrusted text (a label, a name) becomes a space."""
    console.print(safe(" ".join(inert(text).split())), soft_wrap=True)


def ranking_table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=safe(title), title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("product")
    table.add_column("score", justify="right")
    for row in rows:
        listed = row["rank"] is not None
        table.add_row(
            str(row["rank"]) if listed else "-",
            safe(f"{row['brand']} {row['model']}", "" if listed else "dim"),
            str(row["score"]),
        )
    return table


def runs_table(records: list[RunRecord], where: object, width: int) -> Table:
    """The runs, one row each, readable at any width: the counts cell wraps by words, and
    below 90 columns the tokens and time columns (also in --json and the report) are left out."""
    table = Table(title=safe(f"Runs in {where}"), title_justify="left", box=None, header_style="bold",
                  pad_edge=False)
    extra = [c for c, least in (("tokens", 90), ("time", 100)) if width >= least]
    for col in ("run", "command", "status", "started"):
        table.add_column(col, no_wrap=True)
    table.add_column("calls", min_width=9, overflow="fold")
    for col in extra:
        table.add_column(col, justify="right", no_wrap=True)
    for r in records:
        style = {"finished": "green", "failed": "red", "interrupted": "yellow"}.get(r.status, "")
        counts = [f"{r.calls}"] + [f"{n} {label}" for n, label in (
            (r.cached_calls, "cached"), (r.failed_calls, "failed"), (r.unparseable_calls, "unparsed"),
            (r.ambiguous_calls, "ambiguous")) if n]
        cells = {"tokens": str(r.prompt_tokens + r.completion_tokens), "time": f"{r.latency_s:.1f}s"}
        table.add_row(safe(r.id), safe(r.command), safe(r.status, style), r.created[5:16], ", ".join(counts),
                      *[cells[c] for c in extra])
    return table


class InertDescription(ProgressColumn):
    """A task's description as plain text: never markup, no escape or control characters
    (descriptions often name a category or a product)."""

    def render(self, task: Task) -> Text:
        return safe(str(task.description))


class _Progress(Progress):
    def stop(self) -> None:
        """rich ends a bar on a file or pipe with an empty line, even when it is transient and
        showed nothing (``--json``): stderr then held a blank line before an error's one line."""
        if self.live.transient and not self.disable and not self.console.is_interactive:
            self.live.stop()
            return
        super().stop()


def progress_bar(console: Console, transient: bool = False) -> Progress:
    """A progress bar whose description is inert untrusted text."""
    return _Progress(SpinnerColumn(), InertDescription(), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=transient)


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader closed stdout: stop quietly (rich's default exits 1)."""
        self.quiet = True
        _stdout_to_devnull()
        raise OutputClosed()


def make_console(stderr: bool = False) -> Console:
    return _Console(stderr=stderr, highlight=False, soft_wrap=False)


out = make_console()  # what commands print to (stdout)


def emit_json(data: Any) -> None:
    """One JSON document on stdout; unsafe characters (bidi overrides, C1 controls ...) are
    written as \\u escapes, so the JSON decodes to the same data and shows nothing raw."""
    emit(escape_unsafe_json(json.dumps(data, ensure_ascii=False)))


def emit(text: str) -> None:
    """A line on stdout; a closed pipe ends the command quietly (``OutputClosed``)."""
    try:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()
        raise OutputClosed() from None


def _stdout_to_devnull() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, AttributeError, ValueError):
        pass
