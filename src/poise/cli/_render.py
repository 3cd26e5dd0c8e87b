"""Terminal views. Product pages, responses and injections are untrusted: they are shown
as plain rich ``Text`` (never parsed as markup) with control characters removed, so an
answer cannot style, move or clear the terminal."""

from __future__ import annotations

import re

from rich.console import Console
from rich.table import Table
from rich.text import Text

# ANSI/VT escape sequences, C0/C1 controls (but \n and \t), and bidi overrides/isolates.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def inert(text: str) -> str:
    """Untrusted text with every escape sequence and control character removed."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def safe(text: str, style: str = "") -> Text:
    """Untrusted text as a rich Text: shown literally, never interpreted as markup."""
    return Text(inert(text), style=style)


def ranking_table(title: str, rows: list[dict]) -> Table:
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


def make_console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=False)
