"""One self-contained HTML file: no network, no scripts, figures inline.

Templates are jinja2 with autoescape on: every piece of run text (responses, documents,
injections, product names) is HTML-escaped where it is written, and every string a template
writes first loses its control characters, bidi overrides and zero-width characters
(``poise._text``), as in the Markdown report and the terminal, and text hidden in Unicode tag
characters is written out (``⟦hidden: ...⟧``), as in the Markdown report. A Content-Security-Policy
forbids scripts and every remote load as a second line of defence. Figures are SVG,
embedded as data: images, so nothing in them can run or reach the page.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable
from typing import Any

import jinja2
import markupsafe
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from .._text import shown
from ..experiments import FACTORS, POOLED
from ..experiments._natural_plots import f_statistics_figure, heatmap_figure, position_bias_figure
from ._attack_plots import attack_queries_figure, attack_rank_figure, transfer_figure
from ._data import ReportData, RunView
from ._defend_plots import trade_off_figure

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")


def render_html(data: ReportData) -> str:
    """The report of ``data`` (see ``gather_report``) as one HTML document."""
    figures = {run.id: run_figures(run) for run in data.runs}
    combined = attack_figures(data) if data.attacks else []
    return _env().get_template("report.html.j2").render(
        data=data, figures=figures, combined=combined, csp=CSP)


# -- figures -------------------------------------------------------------------------------------
class Figure:
    """A rendered figure: an SVG data URI, or the reason it could not be drawn."""

    def __init__(self, title: str, make: Callable[[], Any]) -> None:
        self.title, self.uri, self.error = title, None, None
        try:
            fig = make()
        except Exception as exc:  # noqa: BLE001 - one bad figure must not cost the whole report
            self.error = f"{type(exc).__name__}: {exc}"
            return
        if fig is not None:
            self.uri = svg_uri(fig)


def svg_uri(fig: Any) -> str:
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "poise", "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def run_figures(run: RunView) -> list[Figure]:
    if run.natural is not None:
        a = run.natural.analyses
        return [f for f in (Figure("F-statistic per factor and category", lambda: f_statistics_figure(a)),
                            Figure("Position bias: mean score by context position", lambda: position_bias_figure(a)),
                            Figure("Mean score by product and context position", lambda: heatmap_figure(a)))
                if f.uri or f.error]
    if run.defend_clean is not None:
        return defend_clean_figures(run.defend_clean)
    if run.transfer is not None:
        transfer = run.transfer
        return [f for f in (Figure("Source against target", lambda: transfer_figure(transfer)),)
                if f.uri or f.error]
    return []


def defend_clean_figures(d: dict[str, Any]) -> list[Figure]:
    """A trade-off figure per curve of each category, in order: curve k of the run is figure k
    (the template places each beside its table)."""
    def figure(cat: dict[str, Any], cv: dict[str, Any]) -> Figure:
        return Figure(f"{cat['category']}: top-1 agreement and tokens over {cv['param']} ({cv['source']})",
                      lambda: trade_off_figure(cat["category"], cv))

    return [figure(cat, cv) for cat in d["categories"] for cv in cat["curves"]]


def attack_figures(data: ReportData) -> list[Figure]:
    attacks = data.attacks
    return [f for f in (Figure("Average rank of the promoted product, before and after",
                               lambda: attack_rank_figure(attacks)),
                        Figure("Success against recommender queries", lambda: attack_queries_figure(attacks)))
            if f.uri or f.error]


# -- the template environment ----------------------------------------------------------------------
_ENV: jinja2.Environment | None = None


def _env() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        env = jinja2.Environment(loader=jinja2.PackageLoader("poise.report", "templates"), autoescape=True,
                                 undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                                 finalize=clean)
        env.filters.update(num=fmt_num, pval=fmt_p, ci=fmt_ci, secs=fmt_secs, stars=stars)
        env.globals.update(factors=FACTORS, pooled=POOLED)
        _ENV = env
    return _ENV


def clean(value: Any) -> Any:
    """What every ``{{ ... }}`` writes: untrusted strings without control, bidi or invisible
    characters (then autoescaped); markup the templates build themselves is left alone."""
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return shown(value)
    return value


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def fmt_num(x: Any, digits: int = 2) -> str:
    if isinstance(x, bool) or x is None:
        return "-" if x is None else ("yes" if x else "no")
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:,.{digits}f}" if _finite(x) else ("∞" if x == math.inf else "-")


def fmt_p(p: Any) -> str:
    if not _finite(p):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_ci(pair: Any, digits: int = 2) -> str:
    if hasattr(pair, "low"):
        lo, hi = pair.low, pair.high
    elif isinstance(pair, (list, tuple)) and len(pair) == 2:
        lo, hi = pair
    else:
        return "-"
    return f"[{fmt_num(lo, digits)}, {fmt_num(hi, digits)}]" if _finite(lo) and _finite(hi) else "-"


def fmt_secs(s: Any) -> str:
    if not _finite(s):
        return "-"
    if s < 120:
        return f"{s:.1f} s"
    return f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def stars(p: Any) -> str:
    if not _finite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""
