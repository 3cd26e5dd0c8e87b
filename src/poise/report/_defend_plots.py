"""The trade-off figure of a clean-only defense comparison (``defend-clean.json``): top-1
agreement with the plain engine's consensus and tokens per answer against the plain engine,
over the values of a listed parameter (``self-consistency:k=1|3|5``). Rendered off-screen
(Agg); every label goes through ``figure_label`` (drawn literally, never read as math)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .._text import figure_label

TOP1, TOKENS = "#4C72B0", "#DD8452"


def _value(x: Any) -> float:
    """A number to plot, NaN (a gap) for none."""
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else math.nan


def trade_off_figure(category: str, curve: Mapping[str, Any]) -> Figure | None:
    """One curve (see ``_defend_data.clean_curves``): top-1 agreement (left axis, %) and
    tokens × (right axis) at each value of its parameter, in the order listed. None without points."""
    points = list(curve.get("points") or [])
    if not points:
        return None
    x = list(range(len(points)))
    top1 = [100 * _value(p.get("top1")) for p in points]
    tokens = [_value(p.get("tokens_x")) for p in points]
    fig, left = plt.subplots(figsize=(max(5.5, 0.8 * len(points) + 3.5), 3.6))
    right = left.twinx()
    left.plot(x, top1, marker="o", color=TOP1, lw=1.8, label="top-1 agreement")
    right.plot(x, tokens, marker="s", color=TOKENS, lw=1.8, ls="--", label="tokens × plain")
    param = figure_label(curve.get("param", ""), 20)
    left.set_xticks(x, [figure_label(f"{param}={p.get('value', '')}", 24) for p in points],
                    rotation=30 if len(points) > 4 else 0, ha="right" if len(points) > 4 else "center")
    left.set_ylim(-3, 103)
    left.set_ylabel("top-1 agreement with the consensus (%)", color=TOP1)
    finite = [t for t in tokens if math.isfinite(t)]
    right.set_ylim(0, 1.2 * max([*finite, 1.0]))
    right.set_ylabel("tokens per answer × plain", color=TOKENS)
    left.set_title(figure_label(f"{category}: {curve.get('source', '')} over {curve.get('param', '')}", 70))
    lines = left.get_lines() + right.get_lines()
    left.legend(lines, [str(line.get_label()) for line in lines], frameon=False, fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


__all__ = ["trade_off_figure"]
