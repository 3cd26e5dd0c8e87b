"""A product an answer names only in passing, when the answer marks its picks.

An answer that marks the products it is about (bold names, list items, headings, table rows,
"Label: name" lines) and names another product only in plain prose, in sentences with no word
that picks it ("Larger phones such as the OnePlus 12R are not compact", "Das Leica Disto X4 ist
sehr gut aber zu teuer", "GE och Whirlpool ... så dem skulle jag hoppa över"), may be advising
against it, comparing with it or adding it as an afterthought: the reader's phrase lists cannot
know every way of saying which. When its reading recommends such a product, the answer is
ambiguous rather than read.

Measured before it was written into the reader (a script outside the repository, the same
rule): on the first-sight readings of sets 26-29 (the reader of ad98418, which had not seen
them) it flagged 29 wrong readings and 2 right ones of 462; on the 3,274 training answers
with the reader of 300ff34, 44 wrong and 8 right.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from . import _signals as sig
from ._doubt import NEGATION, NOT_AGAINST
from ._mentions import Reader

__all__ = ["passing_only"]

_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__|(?<![*\w])\*(?!\s)([^*\n]+?)\*(?![*\w])", re.S)
# text that looks like JSON: its names are read by the JSON reader's own rules
_JSONISH = re.compile(r'[\[{,]\s*"[^"\n]{1,40}"\s*[:,\]]')
# what opens a marked line: a bullet, a number, a heading, a table cell, an emoji or other symbol
_LEAD = re.compile(r"(?:[-*•+]|\d+[.)]|#{1,6}|\||[^\w\s\"'“(\[])\s*(?:\*\*)?")
_LEAD_REACH = 40  # characters after a line's marker that still belong to its lead
# a label that marks what it names ("Budget: the X"), not a note's ("Note: the X lasts longer, but ...")
_LABEL = re.compile(r"(?!\W*(?:a |one |quick |small )?(?:notes?|tips?|p\.?s|caveats?|warnings?|heads[- ]up|fyi"
                    r"|disclaimer)\W*:)[^:\n.!?]{1,40}:\s*", re.I)
# a sentence that picks: any of these words and none of the negations below
_PICKS = re.compile(
    r"\b(?:also (?:worth|consider|good|great|a (?:good|great|solid|fine))|alternatives?|honou?rable|runner|second"
    r"|third|ranking|preference|followed by|then the|pick|choice|recommend|worth (?:it|considering|a look)"
    r"|go with|i['’]?d (?:get|buy|choose)|best|top"
    # the same in the other languages the reader knows
    r"|gute wahl|empfehl\w*|auch gut|tipp|bon(?:ne)? (?:choix|option)|recommand\w*|buena opción|recomiend\w*"
    r"|buona scelta|ottima scelta|consiglio|consigliat\w*|boa opção|recomendo|goed(?:e)? keuze|aanrader|bra val"
    r"|rekommender\w*|polecam|doporučuj\w*|öneririm)\b",
    re.I,
)
_NEGATED = re.compile(
    r"\b(?:not|no|never|avoid|skip|pass|wouldn['’]?t|won['’]?t|isn['’]?t|aren['’]?t|doesn['’]?t|don['’]?t"
    r"|can['’]?t|too(?!\s*(?:[.,;:!?)]|for\b|as well\b|$))|but|however|though|except|instead)\b|n['’]t\b",
    re.I,
)
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)")


def _marked_spans(text: str) -> list[tuple[int, int]]:
    """Where the answer marks what it is about: bold and italic text, line leads, labelled lines."""
    spans = [(m.start(), m.end()) for m in _BOLD.finditer(text)]
    pos = 0
    for line in text.splitlines(keepends=True):
        body = line.lstrip()
        start = pos + len(line) - len(body)
        lead = _LEAD.match(body)
        if lead and body.strip():
            spans.append((start, min(start + lead.end() + _LEAD_REACH, pos + len(line))))  # not into the next line
        if label := _LABEL.match(body, lead.end() if lead else 0):
            spans.append((start + label.end(), pos + len(line)))
        pos += len(line)
    return spans


def _picks(sentence: str) -> bool:
    """Whether a sentence picks: a picking word, and no negation outside a condition ("If you
    don't mind the noise, the X is also worth a look" picks)."""
    if not (_PICKS.search(sentence) or sig.GOOD_PICK.search(sentence) or sig.MORE_OPTIONS.search(sentence)):
        return False
    plain = NOT_AGAINST.sub("", sentence)
    return not _NEGATED.search(plain) and not NEGATION.search(plain)


def passing_only(order: Sequence[int], text: str, reader: Reader) -> str | None:
    """Why the reading is in doubt, when an answer that marks its picks names a product of
    ``order`` only in passing prose (no mark, no picking sentence); None otherwise."""
    mentions = reader.find(text)
    marked_spans = _marked_spans(text)
    marked = {m.product for m in mentions if any(a <= m.start < b for a, b in marked_spans)}
    unmarked = [p for p in order if p not in marked]
    if not marked or not unmarked or _JSONISH.search(text):  # most answers stop here: every pick is marked
        return None
    starts = {p: [m.start for m in mentions if m.product == p] for p in unmarked}
    sentences = [(m.start(), m.end(), m.group()) for m in _SENTENCE.finditer(text)]
    picked = {p for p, at in starts.items()
              if any(_picks(sentence) for a, b, sentence in sentences if any(a <= x < b for x in at))}
    passing = next((p for p in unmarked if p not in picked), None)
    if passing is None:
        return None
    # the reason names no text of the answer: reasons are grouped and counted in reports
    return (f"it marks its picks but names product {passing + 1} only in passing prose: a pick, a caveat or advice"
            " against it")
