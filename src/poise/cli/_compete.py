"""What ``poise attack --compete K`` prints: one row per competing product (its rank without
injection, with its own injection alone and with every competitor's together), the injections,
and who is named first together; with ``--rounds R``, the gain together after round 1 beside the
one after round R, and each search's best score per round. Every name and injection is
untrusted text: printed inert."""

from __future__ import annotations

import math
from typing import Any

from ._render import out, safe


def _short(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in c.items() if k != "responses"} for c in candidates]


def brief(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON a terminal gets: everything but the candidates' full answers."""
    def product(p: dict[str, Any]) -> dict[str, Any]:
        rounds = [{**r, "candidates": _short(r["candidates"])} if "candidates" in r else r for r in p.get("rounds", [])]
        return {**p, "candidates": _short(p["candidates"]), **({"rounds": rounds} if "rounds" in p else {})}

    return {**data, "products": [product(p) for p in data["products"]]}


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

    rounds = d.get("rounds") or 1
    table = Table(title=safe(f"{d['category']}: {d['k']} products attacked at once ({d['method']}, "
                             f"{f'{rounds} rounds, ' if rounds > 1 else ''}{d['final_orders']} fresh orders)"),
                  title_justify="left", header_style="bold")
    together = ("gain together: round 1", f"round {rounds}") if rounds > 1 else ("gain together",)
    for col in ("product", "rank: none", "alone", "together", "gain alone", *together, "first alone",
                "first together"):
        table.add_column(col, justify="left" if col == "product" else "right")
    for p in d["products"]:
        gains = (_gain(p["gain_together_round1"]), _gain(p["gain_together"])) if rounds > 1 else \
            (_gain(p["gain_together"]),)
        table.add_row(safe(name_of(p)), _num(p["baseline"]["rank"]), _num(p["alone"]["rank"]),
                      _num(p["together"]["rank"]), _gain(p["gain_alone"]), *gains,
                      _pct(p["alone"]["first_rate"]), _pct(p["together"]["first_rate"]))
    out.print(table)
    if rounds > 1:
        show_rounds(d, rounds)
    for p in d["products"]:
        out.print(Panel(safe(p["injection"] or "(no injection found)"), title=safe(f"{name_of(p)}'s injection"),
                        title_align="left"))
    out.print(safe(f"together, named first most often: {d['winner'] or 'none of them'}; a product not competing "
                   f"first in {_pct(d['first_other'])}, unreadable {_pct(d['unread_together'])}."))
    out.print(safe(f"{d['recommender_queries']} recommender queries ({d['search_queries']} in the searches), "
                   f"{d['attacker_queries']} attacker queries; rank: n + 1 - mean score (1 = first); gain: ranks "
                   "gained over no injection."))
    out.print(safe(f"run {d['run_id']}", "dim"))


def show_rounds(d: dict[str, Any], rounds: int) -> None:
    """Each product's best search score per round: round 1 alone, later rounds with the others'
    injections of the round before in place (a round that found nothing keeps the last)."""
    from rich.table import Table

    table = Table(title="best search score per round (mean score on the search orders; round 1 alone, then "
                        "against the others' injections)", title_justify="left", header_style="bold")
    table.add_column("product")
    for r in range(1, rounds + 1):
        table.add_column(f"round {r}", justify="right")
    for p in d["products"]:
        table.add_row(safe(name_of(p)), *(_num(r["best_search_score"]) + ("" if r["injection"] else " (none found)")
                                          for r in p["rounds"]))
    out.print(table)
