"""Figures of a natural run: F-statistics per category, the position-bias curve, and the
mean score of each product at each context position. Rendered off-screen (Agg)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .._text import figure_label
from ._natural_analysis import FACTORS, POOLED, Analysis

COLORS = {"product": "#4C72B0", "document": "#DD8452", "position": "#55A868"}


def f_statistics_figure(analyses: Mapping[str, Analysis]) -> Figure:
    """Grouped bars: the one-way F of product name, document and position per category."""
    cats = [c for c in analyses if c != POOLED]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(cats) + 2), 4.2))
    x = np.arange(len(cats))
    width = 0.26
    for k, factor in enumerate(FACTORS):
        values = [analyses[c].one_way[factor].f for c in cats]
        values = [v if math.isfinite(v) else 0.0 for v in values]
        ax.bar(x + (k - 1) * width, values, width, label=factor, color=COLORS[factor])
    ax.axhline(1.0, color="#888", lw=0.8, ls="--")
    ax.set_xticks(x, [_short(c, 30) for c in cats], rotation=30, ha="right")
    ax.set_ylabel("one-way F")
    ax.set_title("What drives the ranking: F-statistic per factor")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def position_bias_figure(analyses: Mapping[str, Analysis]) -> Figure:
    """Mean score at each context position, per category, with the pooled curve and its CI."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, a in analyses.items():
        positions = np.arange(1, len(a.position_curve) + 1)
        if name == POOLED:
            low = [i.low for i in a.position_curve_ci]
            high = [i.high for i in a.position_curve_ci]
            ax.fill_between(positions, low, high, color="black", alpha=0.12, lw=0)
            ax.plot(positions, a.position_curve, color="black", lw=2.2, marker="o", label="pooled (95% CI)")
        else:
            ax.plot(positions, a.position_curve, lw=1, alpha=0.6, marker=".", label=_short(name, 30))
    ax.set_xlabel("context position of the product's document (1 = first)")
    ax.set_ylabel("mean ranking score")
    ax.set_title("Position bias")
    ax.legend(fontsize=7, frameon=False, ncol=2)
    fig.tight_layout()
    return fig


def heatmap_figure(analyses: Mapping[str, Analysis]) -> Figure:
    """Per category: mean score of each product (rows) at each context position (columns)."""
    cats = [c for c, a in analyses.items() if a.heatmap is not None]
    cols = min(3, max(1, len(cats)))
    rows = max(1, math.ceil(len(cats) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.4 * cols + 0.8, 3.6 * rows), squeeze=False, layout="constrained")
    vmax = max([np.nanmax(np.asarray(analyses[c].heatmap, dtype=float)) for c in cats
                if np.isfinite(np.asarray(analyses[c].heatmap, dtype=float)).any()] or [1.0])
    image = None
    for ax, c in zip(axes.flat, cats, strict=False):  # the grid may have spare cells (turned off below)
        a = analyses[c]
        table = np.asarray(a.heatmap, dtype=float)
        image = ax.imshow(table, cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
        ax.set_title(_short(c, 40), fontsize=9)
        ax.set_xticks(range(table.shape[1]), [str(p + 1) for p in range(table.shape[1])], fontsize=7)
        ax.set_yticks(range(table.shape[0]), [_short(n) for n in a.products], fontsize=7)
        ax.set_xlabel("context position", fontsize=8)
    for ax in list(axes.flat)[len(cats):]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="mean score")
    fig.suptitle("Mean score by product and context position (white: no trial put it there)")
    return fig


def _short(name: str, width: int = 22) -> str:
    """A figure label (``figure_label``), narrower by default."""
    return figure_label(name, width)


def save_natural_plots(analyses: Mapping[str, Analysis], folder: Path) -> list[Path]:
    """Write the three figures as PNG files into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in (("f_statistics.png", f_statistics_figure), ("position_bias.png", position_bias_figure),
                       ("product_position_heatmap.png", heatmap_figure)):
        fig = make(analyses)
        path = folder / name
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths
