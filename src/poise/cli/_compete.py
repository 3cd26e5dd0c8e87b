"""What ``poise attack --compete K`` prints: one row per competing product (its rank without
injection, with its own injection alone and with every competitor's together), the injections,
and who is named first together. Every name and injection is untrusted text: printed inert."""

from __future__ import annotations

import math
from typing import Any

from ._render import out, safe


def brief(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON a terminal gets: everything but the candidates' full answers."""
    return {**data, "products": [{**p, "candidates": [{k: v for k, v in c.items() if k != "responses"}
                                                      for c in p["candidates"]]} for p in data["products"]]}


def _num(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def _gain(x: float | None) -> str:
    return "-" if x is None else ("+" if x > 0 else "") + f"{x:.2f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def name_of(p: dict[str, Any]) -> str:
    return f"{p.get('brand') or ''} {p.get('model') or ''}".strip()


def show_compete(d: dict[str, Any]) -> None:
    from rich.panel import Panel
    from rich.table import Table

    table = Table(title=safe(f"{d['category']}: {d['k']} products attacked at once ({d['method']}, "
                             f"{d['final_orders']} fresh orders)"), title_justify="left", header_style="bold")
    for col in ("product", "rank: none", "alone", "together", "gain alone", "gain together", "first alone",
                "first together"):
        table.add_column(col, justify="left" if col == "product" else "right")
    for p in d["products"]:
        table.add_row(safe(name_of(p)), _num(p["baseline"]["rank"]), _num(p["alone"]["rank"]),
                      _num(p["together"]["rank"]), _gain(p["gain_alone"]), _gain(p["gain_together"]),
                      _pct(p["alone"]["first_rate"]), _pct(p["together"]["first_rate"]))
    out.print(table)
    for p in d["products"]:
        out.print(Panel(safe(p["injection"] or "(no injection found)"), title=safe(f"{name_of(p)}'s injection"),
                        title_align="left"))
    out.print(safe(f"together, named first most often: {d['winner'] or 'none of them'}; a product not competing "
                   f"first in {_pct(d['first_other'])}, unreadable {_pct(d['unread_together'])}."))
    out.print(safe(f"{d['recommender_queries']} recommender queries ({d['search_queries']} in the searches), "
                   f"{d['attacker_queries']} attacker queries; rank: n + 1 - mean score (1 = first); gain: ranks "
                   "gained over no injection."))
    out.print(safe(f"run {d['run_id']}", "dim"))
