"""One report for a whole sweep: its totals (jobs by state, queries, tokens), the headline
before/after table across categories x engines x methods x defenses (seeds pooled), and the
paper's main figure (per category, the promoted product's mean score before and after each
method). Read from the store: every job is an ordinary run, and its ``attack.json`` holds
the scores. One self-contained HTML file, as ``poise report`` writes (no scripts, no remote
loads, run text escaped and cleaned)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from .._text import figure_label
from ..store import ResultError, Store, StoredAttack
from ._attack_plots import AFTER, BEFORE

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

    from ..sweep import Job


@dataclass
class SweepJob:
    """One job of the sweep as the report shows it."""

    job: Job
    state: str
    run_id: str | None
    engine: str  # model, and the template when it is not the default
    method: str
    defenses: str
    calls: int = 0
    tokens: int = 0
    before: float | None = None
    after: float | None = None
    success: bool | None = None
    product: str = ""
    note: str = ""  # why its scores are not shown (its attack.json cannot be read)


@dataclass
class SweepReport:
    name: str
    kind: str
    jobs: list[SweepJob]
    totals: dict[str, Any] = field(default_factory=dict)
    headline: list[dict[str, Any]] = field(default_factory=list)
    version: str = __version__


def gather_sweep(db: Store | None, name: str, jobs: Sequence[tuple[Job, str, str | None]]) -> SweepReport:
    """The report of a sweep's jobs, given as (job, state, run id) from the executor's outcomes."""
    records = {r.id: r for r in db.runs()} if db is not None else {}
    rows = []
    for job, state, run_id in jobs:
        engine = job.model + ("" if job.template == "default" else f" ({job.template.rsplit('/', 1)[-1]})")
        method = (job.method or "-") + "".join(f", {k}={v}" for k, v in sorted(job.params.items()))
        row = SweepJob(job, state, run_id, engine, method, "+".join(job.defenses) or "none")
        record = records.get(run_id or "")
        if record is not None and db is not None:
            row.calls, row.tokens = record.calls, record.prompt_tokens + record.completion_tokens
            try:
                stored = db.load_result(record.id, StoredAttack) if job.kind == "attack" else None
            except ResultError as exc:
                stored, row.note = None, f"{StoredAttack.FILE} cannot be read: {exc.message}"
            if stored is not None:
                row.before, row.after, row.success = stored.score_before, stored.score_after, stored.success
                row.product = stored.product.name if stored.product else ""
        rows.append(row)
    kind = jobs[0][0].kind if jobs else "attack"
    return SweepReport(name, kind, rows, sweep_totals(rows), headline(rows))


def sweep_totals(rows: Sequence[SweepJob]) -> dict[str, Any]:
    """Jobs by state, and the calls and tokens their runs hold in the store (cache hits cost no tokens)."""
    states: dict[str, int] = {}
    for r in rows:
        states[r.state] = states.get(r.state, 0) + 1
    return {"jobs": len(rows), "states": states, "calls": sum(r.calls for r in rows),
            "tokens": sum(r.tokens for r in rows)}


def headline(rows: Sequence[SweepJob]) -> list[dict[str, Any]]:
    """Mean score before and after per category x engine x method x defenses, over seeds."""
    groups: dict[tuple[str, str, str, str], list[SweepJob]] = defaultdict(list)
    for r in rows:
        if r.before is not None and r.after is not None:
            groups[(r.job.category, r.engine, r.method, r.defenses)].append(r)
    out = []
    for (category, engine, method, defenses), members in sorted(groups.items()):
        before = float(np.mean([m.before for m in members]))
        after = float(np.mean([m.after for m in members]))
        out.append({"category": category, "engine": engine, "method": method, "defenses": defenses,
                    "product": members[0].product, "n": len(members), "before": before, "after": after,
                    "change": after - before, "successes": sum(1 for m in members if m.success)})
    return out


def sweep_figure(rows: Sequence[dict[str, Any]]) -> MplFigure | None:
    """Per category: the promoted product's mean score before, and after each method (with
    its defenses when the sweep has several); higher is better for the attacker."""
    if not rows:
        return None
    import matplotlib.pyplot as plt

    cats = sorted({r["category"] for r in rows})
    series = sorted({(r["method"], r["defenses"]) for r in rows})
    several = len({d for _, d in series}) > 1
    width = 0.8 / (len(series) + 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(cats) * (len(series) + 1) / 2 + 2.5), 4.4))
    x = np.arange(len(cats))
    before = [float(np.mean([r["before"] for r in rows if r["category"] == c])) for c in cats]
    ax.bar(x - 0.4 + width / 2, before, width, label="before", color=BEFORE)
    for k, (method, defenses) in enumerate(series, 1):
        after = [_mean([r["after"] for r in rows if r["category"] == c and (r["method"], r["defenses"])
                        == (method, defenses)]) for c in cats]
        label = method + (f" / {defenses}" if several else "")
        ax.bar(x - 0.4 + width / 2 + k * width, after, width, label=figure_label(f"after: {label}", 50),
               color=AFTER if len(series) == 1 else plt.cm.Reds(0.35 + 0.6 * k / len(series)))
    ax.set_xticks(x, [figure_label(c) for c in cats], rotation=30 if len(cats) > 3 else 0,
                  ha="right" if len(cats) > 3 else "center")
    ax.set_ylabel("mean score of the promoted product\n(n = recommended first; higher: promoted)")
    ax.set_title("Ranking manipulation across the sweep: before and after, per category")
    ax.legend(frameon=False, fontsize=8, ncol=min(4, len(series) + 1), loc="upper left")
    ax.set_ylim(0, 1.3 * max([*before, *[r["after"] for r in rows], 1.0]))
    fig.tight_layout()
    return fig


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def render_sweep_html(report: SweepReport) -> str:
    """The sweep's report as one self-contained HTML document."""
    from ._html import CSP, Figure, _env

    figure = Figure("The promoted product's mean score before and after, per category",
                    lambda: sweep_figure(report.headline))
    return _env().get_template("sweep.html.j2").render(data=report, figure=figure, csp=CSP)
