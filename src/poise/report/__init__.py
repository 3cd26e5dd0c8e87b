"""Reports built from the store: one self-contained HTML file or Markdown, and the figures."""

from ..experiments._natural_plots import f_statistics_figure, heatmap_figure, position_bias_figure, save_natural_plots
from ._attack_plots import attack_queries_figure, attack_rank_figure, transfer_figure
from ._data import ReportData, RunView, gather_report, resolve_runs
from ._html import render_html
from ._markdown import render_markdown
from ._sweep import SweepJob, SweepReport, gather_sweep, render_sweep_html, sweep_figure

__all__ = [
    "ReportData",
    "RunView",
    "SweepJob",
    "SweepReport",
    "attack_queries_figure",
    "attack_rank_figure",
    "f_statistics_figure",
    "gather_report",
    "gather_sweep",
    "heatmap_figure",
    "position_bias_figure",
    "render_html",
    "render_markdown",
    "render_sweep_html",
    "resolve_runs",
    "save_natural_plots",
    "sweep_figure",
    "transfer_figure",
]
