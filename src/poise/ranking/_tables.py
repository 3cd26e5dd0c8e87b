"""Tables: whether one only compares, the rows under a score the answer would not buy below,
and the rows the prose around a table advises against."""

from __future__ import annotations

import re

from ._cues import _SENTENCE, _negative_cue
from ._mentions import Reader
from ._units import Unit

__all__ = ["below_bar", "not_advised_against", "table_only"]


# a row that gives a verdict or a use ("✅ Best pick", "Budget option"): the table picks
_PICK_CELL = re.compile(r"[✅✔⭐🏆🥇]|\b(?:best|pick|recommend\w*|winner|budget|value|choice|option|buy)\b", re.I)


def table_only(units: list[Unit], reader: Reader) -> bool:
    """Whether the products appear only as rows of a table (a comparison, not picks)."""
    rows = [u for u in units if u.kind == "row" and reader.subjects(u)]
    return len(rows) >= 2 and not any(_PICK_CELL.search(u.text) for u in rows) \
        and not any(u.kind != "row" and u.kind != "para" and reader.subjects(u) for u in units)


# a score below which the answer advises against: "Anything under 3.5 stars I wouldn't buy"
_BELOW = re.compile(r"\b(?:anything|everything|any(?: one| model)?|all|those|ones?|models?)"
                    r"(?: (?:rated|scored|that scores?))? (?:under|below|less than|lower than|beneath)"
                    r"\s+(\d{1,3}(?:[.,]\d+)?)", re.I)


def below_bar(units: list[Unit], text: str) -> list[Unit]:
    """Scored table rows under the score an answer says it would not buy below, marked against."""
    for m in _SENTENCE.finditer(text) if "nder" in text or "elow" in text or "ess than" in text else ():
        if (bar := _BELOW.search(m.group())) and _negative_cue(m.group()):
            limit = float(bar.group(1).replace(",", "."))
            for u in units:
                u.against = u.against or (u.kind == "row" and u.score is not None and u.score < limit)
    return units


def not_advised_against(order: list[int], units: list[Unit], reader: Reader) -> list[int]:
    """A table's ranking without the rows the prose around it advises against ("the Linksys
    isn't recommended", "I wouldn't buy the Sunbeam")."""
    if not any(u.kind == "row" for u in units):
        return order
    against: set[int] = set()
    named: set[int] = set()  # named in prose otherwise too: the prose does not simply advise against it
    for u in units:
        if u.kind == "para":
            seen = set(reader.against)
            named.update(reader.mentions(u.text, skip_negative=True))
            against |= reader.against - seen
    return [p for p in order if p not in against - named]
