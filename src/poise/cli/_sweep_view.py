"""``poise sweep``'s live view on stderr: jobs done, running and failed, queries, tokens and
each endpoint's throughput, redrawn a few times a second on a terminal; elsewhere (a pipe,
a log file, CI) one plain line per job event. Job labels and endpoint URLs are shown inert."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ._render import note, safe

if TYPE_CHECKING:
    from ..sweep import Event, Prepared, Tally

RUNNING_SHOWN = 8  # running jobs listed by name; the rest are counted


class SweepView:
    """A context: ``on_event`` is the executor's; ``tally`` counts what the view draws."""

    def __init__(self, console: Console, tally: Tally, name: str, *, live: bool | None = None) -> None:
        self.console, self.tally, self.name = console, tally, name
        self.live = console.is_terminal if live is None else live
        self._live: Live | None = None

    def __enter__(self) -> SweepView:
        if self.live:
            self._live = Live(get_renderable=self.render, console=self.console, refresh_per_second=4,
                              transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.__exit__(kind, exc, tb)

    def on_event(self, event: Event, job: Prepared) -> None:
        self.tally.on_event(event, job)
        if self.live or event.kind == "query":
            return
        c = self.tally.counts()
        done = c["done"] + c["failed"] + c["skipped"]
        what = {"started": "resuming" if event.resumed else "started", "retry": "will retry"}.get(event.kind,
                                                                                               event.kind)
        tail = f": {event.error}" if event.error else ""
        note(self.console, f"sweep {self.name} [{done}/{len(self.tally.labels)}] {what} {job.job.label}{tail}")

    def render(self) -> Group:
        s = self.tally.snapshot()
        states = ", ".join(f"{n} {state}" for state, n in s["states"].items() if n)
        head = Text.assemble(("sweep ", "bold"), safe(self.name, "bold"),
                             f": {states} of {s['jobs']} jobs · {s['queries']:,} queries "
                             f"({s['queries_per_s']:.2f}/s) · {s['tokens']:,} tokens · {s['seconds']:.0f} s")
        parts: list[Any] = [head]
        for label, queries in s["running"][:RUNNING_SHOWN]:
            parts.append(Text.assemble("  ", safe(label), (f"  {queries} queries", "dim")))
        if len(s["running"]) > RUNNING_SHOWN:
            parts.append(Text(f"  … and {len(s['running']) - RUNNING_SHOWN} more running", style="dim"))
        if s["endpoints"]:
            parts.append(endpoint_table(s["endpoints"]))
        return Group(*parts)


def endpoint_table(endpoints: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for col in ("endpoint", "model", "state", "calls", "calls/s", "in flight", "failures"):
        table.add_column(col, justify="right" if col in ("calls", "calls/s", "in flight", "failures") else "left")
    for e in endpoints:
        table.add_row(safe(e["url"]), safe(e["model"]), safe("up" if e["healthy"] else "down",
                                                             "green" if e["healthy"] else "red"),
                      str(e["calls"]), f"{e.get('calls_per_s') or 0:.2f}", str(e.get("in_flight", 0)),
                      str(e["failures"]))
    return table
