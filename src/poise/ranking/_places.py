"""Products called by their place among the pages ("source [3]", "Option C", "the third result"),
named, when the reader knows the order the engine showed the pages in.

The engine numbers its pages ([1], [2], ...) and an answer may point at one by that number
instead of by name. Without the context order such a reference cannot be mapped (the products
come in the catalog's order), and the answer is ambiguous (``_doubt.by_position``). With it,
each reference in a sentence that names no listed product is replaced by the product's name,
and the answer is read as if it had named it. A place outside the pages stays as it is (and so
the answer stays ambiguous).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ._doubt import place_references
from ._mentions import Reader

__all__ = ["check_context", "name_places"]

_ORDINAL = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
            "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "6th": 6, "7th": 7, "8th": 8}
_NUMBER = re.compile(r"\d{1,2}")
_LETTER = re.compile(r"\s(?-i:[A-H])\b")
_WORDS = re.compile(r"[a-z0-9]+", re.I)
_BRACKET = re.compile(r"\[\s*(\d{1,2})\s*\]")


def check_context(context: Sequence[int] | None, n: int) -> tuple[int, ...] | None:
    """The context order as a tuple, checked to be an order of all ``n`` products."""
    if context is None:
        return None
    order = tuple(context)
    if sorted(order) != list(range(n)):
        raise ValueError(f"the context order {list(order)} is not an order of the {n} products")
    return order


def _places(reference: str) -> list[int]:
    """The 1-based places a reference names ("the first and second results", "the monitors in [1]
    and [2]": both)."""
    words = [w.lower() for w in _WORDS.findall(reference)]
    if ordinals := [_ORDINAL[w] for w in words if w in _ORDINAL]:
        return ordinals
    if numbers := _NUMBER.findall(reference):
        return [int(x) for x in numbers]
    if letter := _LETTER.search(reference):
        return [ord(letter.group().strip()) - ord("A") + 1]
    return []


def name_places(text: str, names: Sequence[tuple[str, str]], context: Sequence[int], reader: Reader) -> str:
    """``text`` with each by-place reference in a sentence naming no listed product replaced by
    the name of the product the engine showed at that place."""
    out, last = [], 0
    for at, ref in place_references(text, reader):
        places = _places(ref.group())
        if not places or not all(1 <= place <= len(context) for place in places):
            continue
        start, end = at + ref.start(), at + ref.end()
        if ":" in ref.group() or ref.group().lstrip(" \t-*•").startswith("["):
            # a label or a list item's opening: keep them, name each page where it stands ("[2] > [4]")
            named = _BRACKET.sub(lambda m: " ".join(names[context[int(m.group(1)) - 1]]), ref.group())
        else:
            named = " and ".join(" ".join(names[context[place - 1]]) for place in places)
        out += [text[last:start], named]
        last = end
    return "".join(out) + text[last:]
