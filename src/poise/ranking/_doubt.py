"""Readings the reader commits to only when nothing in the answer speaks against them.

An answer that refers to a product only by its place in the context ("source [3] is hard to
beat", "Option D is my third pick", "the first link is my runner-up") names it in a way the
reader cannot map to a name: the products come to it in the catalog's order, not the order the
engine showed them in. Such an answer is ambiguous, not read without the product.

A structured answer (list items, headings, table rows, pick lines each about its own product)
ranks the products it is about. A product it names only in prose, and only in sentences that
hold a negation ("The X isn't sold in the US", "no lo recomendaría", "je ne les conseillerais
pas"), may be advice against it or a caveat about a pick: the reader cannot tell which, so it
calls the answer ambiguous rather than guess. On the 1,594 training answers of sets 1–15 it
turned 11 wrong readings and 1 right one into ambiguous ones; on the five sets written after it
(16–20), at first sight, only wrong readings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from ._cues import _SENTENCE
from ._mentions import Reader
from ._units import cut

__all__ = ["NEGATION", "NOT_AGAINST", "POSITION", "by_position", "negated_only", "place_references"]

# any negation, in the languages the reader knows; wider than advice against (``_NEGATIVE``)
NEGATION = re.compile(
    r"\b(?:not|no|never|nicht|kein\w*|pas|non|niet|geen|inte|ikke|nie|nunca|avoid|skip\w*|pass on|overkill"
    r"|unsuitable|lack\w*|without)\b|n['’]t\b",
    re.I,
)
# negations that praise or set a condition: "you won't go wrong", "not bad", "if you don't have a yard"
NOT_AGAINST = re.compile(r"\b(?:can['’]t|won['’]t|cannot|will not) go wrong\b|\bnot bad\b|\bno-brainer\b"
                         r"|\b(?:not|nicht|pas|no|non) (?:too|zu|trop|demasiado|troppo)\b"
                          r"|\b(?:if|unless|when) [^,;:.!?]*", re.I)


# a sentence that tells the reader to take the product: "if budget matters, pick the X - it doesn't ..."
_PICKS_IT = re.compile(r"\b(?:pick|choose|buy|grab|go (?:with|for)) the\b", re.I)


def negated_only(order: Sequence[int], text: str, reader: Reader) -> int | None:
    """The first product of ``order`` that a structured answer names only in prose sentences
    that all hold a negation, or None."""
    subjects = set()
    for unit in cut(text):
        if unit.kind != "para" and (about := reader.subjects(unit)):
            subjects.add(about[0])
    others = [p for p in order if p not in subjects]
    if not subjects or not others:
        return None
    mentions = reader.find(text)
    sentences = list(_SENTENCE.finditer(text))
    for p in others:
        starts = [x.start for x in mentions if x.product == p]
        own = [m.group() for m in sentences if any(m.start() <= at < m.end() for at in starts)]
        if own and all(NEGATION.search(NOT_AGAINST.sub("", s)) and not _PICKS_IT.search(s) for s in own):
            return p
    return None


# page numbers in a row, not a citation run ("[1][2]"): "[2] > [4] > [1]", "[4], [5], [3]", "[3] and [6]"
_PAGES = r"\[\s*\d{1,2}\s*\](?:\s*(?:,|>|→|->|and|or|then)\s*\[\s*\d{1,2}\s*\])*(?!\s*\[)"
# a product called by its place among the pages: "source [3]", "result 2", "Option B", "the third link"
POSITION = re.compile(
    r"\bsource\s*\[\s*\d{1,2}\s*\](?!\s*\[)"  # "source [2]", not a citation after a noun ("sources [1][2]")
    r"|\b(?:sources?|results?|options?|documents?|docs?|pages?|listings?|links?|entr(?:y|ies)|candidates?)"
    r"\s*(?:#\s*\d{1,2}\b|no\.\s*\d{1,2}\b|\d{1,2}\b(?![.,]\d)|(?-i:[A-H])\b(?!['’.]))"
    r"|\bthe (?:first|second|third|fourth|fifth|sixth|seventh|eighth|1st|2nd|3rd|[4-8]th)"
    r"(?: (?:and|or) (?:first|second|third|fourth|fifth|sixth|seventh|eighth))?"
    r" (?:search )?(?:results?|sources?|links?|pages?|listings?|options?|documents?)\b"
    # "the machine from [2]", "the gas trimmer in [1]"; not "the reviews in [3]" (a citation)
    r"|\bthe (?!(?:reviews?|tests?|testing|articles?|reports?|guides?|sources?|data|study|studies|owners?)\b)"
    r"(?:[\w-]+ ){1,4}(?:from|in|at) \[\s*\d{1,2}\s*\](?:\s*(?:,|and|or|&)\s*\[\s*\d{1,2}\s*\])*"
    # a page number under a pick's label: "**Overall pick:** [3]", "Also fine: [5]" (not "Sources: [1]")
    r"|\b(?:pick|choice|winner|best|top|runner-up|alternative|also fine|also good|budget|value|premium)\b[^:\n]{0,20}:"
    r"(?:\*\*|__)?[ \t]*\[\s*\d{1,2}\s*\](?!\s*\[)"
    # a ranking's label over page numbers, "Final: [4], [5], [3]", "**Recommendation order:** [2] > [4] > [1]"
    r"|\b(?:final|ranking|order|recommendations?|verdict|picks)\b[^:\n]{0,20}:(?:\*\*|__)?[ \t]*" + _PAGES +
    # a page number that opens a bulleted item: "- [3] and [6] are SATA drives", "- [2] is the fastest" (a line
    # that opens with one unbulleted is more often a source: "[1] EPA – Wildfire smoke and indoor air")
    # (not a list of sources: "[1] seriouseats.com – The Best Blenders", "[2] https://...")
    r"|^[ \t]*[-*•][ \t]+" + _PAGES + r"(?=[ \t]*[\w:–—])"
    r"(?![ \t]*(?:https?://|www\.|[\w.-]+\.(?:com|org|net|io|co|uk|de|fr|es|it|nl|edu|gov)\b))",
    re.I | re.M,
)


def place_references(text: str, reader: Reader) -> Iterator[tuple[int, re.Match[str]]]:
    """Each reference to a product by its place among the pages in a sentence that names no listed
    product, with the start of its sentence (a reference beside a name is a citation)."""
    if not POSITION.search(text):  # one search of the answer before one of each sentence
        return
    for m in _SENTENCE.finditer(text):
        refs = list(POSITION.finditer(m.group()))
        if refs and not reader.find(m.group()):
            for ref in refs:
                yield m.start(), ref


def by_position(text: str, reader: Reader) -> str | None:
    """Why the answer cannot be read by names alone, when a sentence that names no listed
    product refers to one by its place among the pages ("**source [3]** is hard to beat")."""
    if next(place_references(text, reader), None) is None:
        return None
    # the reason names no text of the answer: reasons are grouped and counted in reports
    return ("it refers to a product by its place among the pages (a source number, an option letter, "
            "'the third link'), which the reader cannot map to a name")
