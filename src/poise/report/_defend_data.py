"""What a defense comparison (``defend.json``) shows, read defensively: every field holds only
what it may (text, yes/no or a number), since the file may be hand-edited or foreign."""

from __future__ import annotations

from typing import Any

# -- defense comparisons --------------------------------------------------------------------------
# (row key, section of a configuration, key in it): what a row of the defense table shows
_DEFEND_FIELDS = (("tau", "clean", "tau"), ("top1", "clean", "top1"), ("position_f", "clean", "position_f"),
                  ("position_p", "clean", "position_p"), ("readable", "clean", "readable"),
                  ("answers", "clean", "answers"), ("success", "attack", "success"),
                  ("first_rate", "attack", "first_rate"), ("rank_gain", "attack", "rank_gain"),
                  ("transfer_gain", "attack", "transfer_gain"),
                  ("transfer_first_rate", "attack", "transfer_first_rate"),
                  ("injection", "attack", "injection"), ("calls_x", "cost", "calls_x"),
                  ("tokens_x", "cost", "tokens_x"), ("calls_per_answer", "cost", "calls_per_answer"),
                  ("tokens_per_answer", "cost", "tokens_per_answer"), ("tpr", "detection", "tpr"),
                  ("fpr", "detection", "fpr"), ("certified_share", "certificate", "certified_share"),
                  ("top1_certified", "certificate", "top1_certified"))
_CURVE_FIELDS = ("value", "label", "tau", "top1", "first_rate", "rank_gain", "tokens_x")
_POOLED_FIELDS = ("label", "categories", "success_rate", "first_rate", "rank_gain", "transfer_gain", "tau", "top1",
                  "tokens_x", "first_rate_cut", "rank_gain_cut")
_TEXT_FIELDS = frozenset({"product", "method", "model", "injection", "label", "value"})


def plain(value: Any, key: str = "") -> Any:
    """A string in a text field, a yes/no in ``success``, else a float (none past any float):
    whatever else a file holds there (a string where a number goes ...) is not shown."""
    if key in _TEXT_FIELDS:
        return value if isinstance(value, str) else None
    if key == "success":
        return value if isinstance(value, bool) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def items(value: Any) -> list[Any]:
    """A list a file holds, or none (a string or a number is no list of items)."""
    return value if isinstance(value, list) else []


def _missing(data: Any, keys: tuple[str, ...], what: str) -> str | None:
    if not isinstance(data, dict):
        return f"{what} is not an object"
    lacking = [k for k in keys if k not in data]
    return f"{what} lacks {', '.join(lacking)}" if lacking else None


def check_defend(data: dict[str, Any]) -> str | None:
    for cat in data["categories"]:
        problem = _missing(cat, ("category", "configs"), "a category")
        if problem or not isinstance(cat["configs"], list):
            return problem or "configs is not a list"
        for key in ("product", "method", "budget", "orders", "final_orders", "model", "consensus_orders",
                    "consensus_stability"):
            cat[key] = plain(cat.get(key), key)
        cat["rows"] = []
        for c in cat["configs"]:
            problem = _missing(c, ("label", "clean", "attack", "cost"), "a configuration")
            if problem:
                return problem
            sections = {k: c.get(k) if isinstance(c.get(k), dict) else {} for k in
                        ("clean", "attack", "cost", "detection", "certificate")}
            row = {"label": str(c["label"]), "kinds": ", ".join(str(k) for k in items(c.get("kinds"))),
                   "detection": bool(sections["detection"]), "certificate": bool(sections["certificate"])}
            row.update({key: plain(sections[section].get(name), key) for key, section, name in _DEFEND_FIELDS})
            cat["rows"].append(row)
        cat["curves"] = [{"source": str(cv.get("source", "")), "param": str(cv.get("param", "")),
                          "points": [{k: plain(p.get(k), k) for k in _CURVE_FIELDS} for p in items(cv.get("points"))
                                     if isinstance(p, dict)]}
                         for cv in items(cat.get("curves")) if isinstance(cv, dict)]
    data["pooled"] = [{k: plain(row.get(k), k) for k in _POOLED_FIELDS} for row in items(data.get("pooled"))
                      if isinstance(row, dict)]
    return None


# -- clean-only comparisons (defend-clean.json) ----------------------------------------------------
CONSENSUS_SHOWN = 3  # the consensus's first products named in its line
_CLEAN_FIELDS = ("tau", "top1", "position_f", "position_p", "answers", "readable", "calls", "tokens", "calls_x",
                 "tokens_x")
_CLEAN_POOLED = ("label", "categories", "tau", "top1", "position_f", "calls_x", "tokens_x")


def text(value: Any) -> str | None:
    """A string a file holds where text goes, else None."""
    return value if isinstance(value, str) else None


def check_defend_clean(data: dict[str, Any]) -> str | None:
    """``data`` (``defend-clean.json``) reduced to what the report shows, each field of its
    kind; a problem (a category or configuration without its fields) instead, or None."""
    for cat in data["categories"]:
        problem = _missing(cat, ("category", "configs", "consensus"), "a category")
        if problem or not isinstance(cat["configs"], list):
            return problem or "configs is not a list"
        problem = next(filter(None, (_missing(c, ("label",), "a configuration") for c in cat["configs"])), None)
        if problem:
            return problem
        cat["category"] = str(cat["category"])
        cat["model"], cat["orders"] = text(cat.get("model")), plain(cat.get("orders"))
        cat["consensus"] = _clean_consensus(cat["consensus"])
        cat["rows"] = [{"label": str(c["label"]), **{k: plain(c.get(k), k) for k in _CLEAN_FIELDS}}
                       for c in cat["configs"]]
        cat["curves"] = clean_curves(cat["configs"])
    data["pooled"] = [{k: plain(row.get(k), k) for k in _CLEAN_POOLED} for row in items(data.get("pooled"))
                      if isinstance(row, dict)]
    return None


def _clean_consensus(consensus: Any) -> dict[str, Any]:
    c = consensus if isinstance(consensus, dict) else {}
    products = [{"product": str(p.get("product")), "points": plain(p.get("points"))}
                for p in items(c.get("products")) if isinstance(p, dict)]
    return {"top": products[:CONSENSUS_SHOWN], "more": max(0, len(products) - CONSENSUS_SHOWN),
            **{k: plain(c.get(k)) for k in ("answers", "own_orders", "stability")}}


def clean_curves(configs: list[Any]) -> list[dict[str, Any]]:
    """The trade-off curves: the configurations a listed parameter expanded into (``k=1|3|5``),
    grouped by the spec they came from, in the order first met."""
    curves: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in configs:
        param, value = text(c.get("curve_param")), text(c.get("curve_value"))
        if param is not None and value is not None:
            curves.setdefault((str(c.get("source")), param), []).append(
                {"value": value, "label": str(c["label"]),
                 **{k: plain(c.get(k), k) for k in ("tau", "top1", "calls_x", "tokens_x")}})
    return [{"source": source, "param": param, "points": points} for (source, param), points in curves.items()]


__all__ = ["check_defend", "check_defend_clean", "clean_curves", "items", "plain"]
