"""Answers that recommend nothing: a decline ("none of these fit", "I can't recommend any of
them") or a deferral ("tell me your budget and I'll narrow it down"), told apart from a decline of
some products only and from a decline that a ranking follows."""

from __future__ import annotations

import re

from . import _signals as sig
from ._cues import _SENTENCE
from ._mentions import Reader
from ._units import cut

__all__ = ["compares_only", "declines", "defers"]


_THE_REST = re.compile(r"\bthe (?:rest|others|remaining (?:ones|options|models))\b|\bother (?:ones|options|models)\b"
                       r"|\bdie anderen\b|\bles autres\b|\blos dem[aá]s\b|\bgli altri\b", re.I)


def declines(text: str, reader: Reader) -> bool:
    """Whether the answer says it will not recommend anything, in a sentence naming no product."""
    if not sig.DECLINE.search(text):
        return False
    found = list(_SENTENCE.finditer(text))
    sentences = [s.group() for s in found]
    # "What about the rest? I wouldn't pick any of them": a decline about the others, after picks
    declining = [found[i] for i, s in enumerate(sentences) if _declines_all(s, reader)
                 and not _THE_REST.search(" ".join(sentences[max(0, i - 1): i + 1]))
                 and not _in_note(text, found[i])]
    if not declining:
        return False
    # "... so I'd rule them out.  Final ranking: 1. X 2. Y": a numbered list of products after it
    if len([ln for ln in _NUMBERED_LINE.findall(text, declining[-1].end()) if reader.find(ln)]) >= 2:
        return False
    # "None of these is perfect. The X comes closest." still recommends the X
    return not any((sig.STILL_PICKS.search(s) or sig.DECISION.search(s)) and reader.mentions(s, skip_negative=True)
                   for s in sentences)


# a note's label: what follows is a caveat ("**Note:** None of these phones are truly rugged")
_NOTE = re.compile(r"[ \t]*[*_]*[ \t]*(?:a |one )?(?:note|caveat|heads[- ]up|tip|p\.?s\.?)[ \t]*[*_]*[ \t]*:", re.I)


def _in_note(text: str, sentence: re.Match[str]) -> bool:
    """Whether a sentence is on a line labelled as a note, after a numbered list of picks."""
    line = text.rfind("\n", 0, sentence.start()) + 1
    return bool(_NOTE.match(text, line, sentence.end())) and len(_NUMBERED_LINE.findall(text, 0, line)) >= 2


_ASIDE = re.compile(r"^[\s*•-]*\(")
_PRAISE_AFTER = re.compile(r"\b(?:better|more (?:reliably|quietly|effectively)|as well|beats? (?:it|this|that))\b",
                           re.I)
_NUMBERED_LINE = re.compile(r"^[ \t]*(?:\*\*)?\d{1,2}[.)][ \t]+(.+)$", re.M)


def _declines_all(sentence: str, reader: Reader) -> bool:
    """Whether a sentence declines as a whole: its decline names no product, and the sentence
    names none either unless the decline speaks of the whole list ("None of the routers you
    linked support WiFi 6E" declines; "I can't recommend the X" does not)."""
    d = sig.DECLINE.search(sentence)
    if d is None or reader.find(d.group()) or _ASIDE.match(sentence):  # "- (nothing from your list)" under a tier
        return False
    if _PRAISE_AFTER.search(sentence, d.end()):  # "nothing in this list handles smoke odor better": praise
        return False
    # "The A and the B are SATA drives, so none of those work": the ones it named, not the whole list
    before = {m.product for m in reader.find(sentence[:d.start()])}
    return not reader.find(sentence) or (bool(sig.NONE_OF.match(d.group())) and not 0 < len(before) < reader.size)


def defers(text: str, reader: Reader) -> bool:
    """Whether the answer asks for more before it recommends, and states no choice ("tell me your
    budget and I can narrow it down" after picks laid out as list items, headings or pick lines
    only offers more)."""
    offers = [m.group() for m in sig.DEFER.finditer(text)]
    if not offers:
        return False
    if all("narrow" in o.lower() for o in offers) and any(u.kind != "para" and reader.subjects(u) for u in cut(text)):
        return False
    # "**TL;DR:** the A first, the B second. ... If you tell me your camera I can suggest settings": it ranked
    return not any((sig.DECISION.search(s.group()) and reader.find(s.group()))
                   or (sig.ORDINAL.search(s.group()) and len({m.product for m in reader.find(s.group())}) >= 2)
                   for s in _SENTENCE.finditer(text))


# an answer framed as a comparison: "Here's a side-by-side comparison", "they differ in", a spec table
_COMPARISON_FRAME = re.compile(r"\bside[- ]by[- ]side\b|\bcomparison\b|\bdiffer(?:s|ences?)? (?:in|is|are)\b"
                               r"|\bthe differences\b|\bhow they compare\b|^\s*\|\s*spec", re.I | re.M)
# any word that recommends, ranks or judges one product better for the user
_RECOMMENDING = re.compile(
    r"\b(?:recommend\w*|best|top|pick\w*|choice|choose|favou?rite|winner|go (?:with|for)|worth|ideal|great"
    r"|excellent|solid|suggest\w*|prefer\w*|better|ahead|edge|stand(?:s)? out|fallback|empfehl\w*|recomiend\w*"
    r"|recommand\w*|consigli\w*|raccomand\w*|aanrad\w*|beste?n?|mejor\w*|meilleur\w*|miglior\w*|melhor\w*"
    r"|escolh\w*|elij\w*|elig\w*|prendr\w*|choisi\w*|nimm|würde|folgt|sceglie\w*|prender\w*)\b", re.I)
_OPEN_QUESTION = re.compile(r"\bdepends?\b|\?\s*$", re.I)


# an opening that refuses to pick: "there's no single best one", "it's hard to say one is better", "rather than
# pick one I'll lay out what you get"
_REFUSES = re.compile(r"\bno (?:single|one|clear) (?:best|winner)\b|\bhard to say (?:which|one|that one)\b"
                      r"|\brather than pick(?:ing)? (?:one|a winner)\b"
                      r"|\b(?:won['’]t|can['’]t|cannot) pick (?:one|a winner)\b",
                      re.I)


def compares_only(text: str, reader: Reader) -> bool:
    """Whether the answer only compares: framed as a comparison near its start, with no word
    anywhere that recommends, ranks or prefers (the sentence that leaves the choice to the user,
    "which fits best depends on your counter", aside), no numbered list and no pick line; or
    opening with a refusal to pick ("there's no single best one") and choosing nowhere after it."""
    refuses = bool(_REFUSES.search(text[:300]))
    if not refuses and not _COMPARISON_FRAME.search(text[:300]):
        return False
    units = cut(text)
    if any(u.kind in ("item", "pick") or u.rank is not None for u in units):
        return False
    if refuses:
        return not any(sig.DECISION.search(s.group()) or sig.STILL_PICKS.search(s.group())
                       for s in _SENTENCE.finditer(text))
    judged = [s.group() for s in _SENTENCE.finditer(text) if not _OPEN_QUESTION.search(s.group())]
    signals = (_RECOMMENDING, sig.DECISION, sig.GOOD_PICK, sig.ALSO, sig.TIE_BREAK, sig.ORDINAL)
    return not any(r.search(s) for s in judged for r in signals) and len({m.product for m in reader.find(text)}) >= 2
