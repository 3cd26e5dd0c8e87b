"""Units an answer advises against: rows and items marked so ("❌ Skip"), a line that advises
against what follows it ("What I'd avoid:", "## Avoid"), sponsored slots and echoed pages."""

from __future__ import annotations

import re

from . import _signals as sig
from ._cues import _SENTENCE, _negative_cue
from ._doubt import NEGATION, NOT_AGAINST
from ._mentions import Reader
from ._units import LIST_KINDS, Unit

__all__ = ["advised_for"]


def _verdict_against(unit: Unit, reader: Reader) -> bool:
    """Whether a unit's own text gives it a verdict against ("Feels like a gimmick — skip.")
    in a sentence naming no other product."""
    if not sig.VERDICT_AGAINST.search(unit.text):
        return False
    subjects = set(reader.subjects(unit))
    for line in unit.body:
        for m in _SENTENCE.finditer(line):
            sentence = m.group()
            if sig.VERDICT_AGAINST.search(sentence) and {x.product for x in reader.find(sentence)} <= subjects:
                return True
    return False


def _last_sentence(text: str) -> str:
    """The sentence that leads into what follows ("... too big for two. Here's what I'd do:")."""
    sentences = [m.group() for m in _SENTENCE.finditer(text) if m.group().strip()]
    return sentences[-1] if sentences else text


# "so I've left that product out": a line about a product named before, not over what follows
_POINTS_BACK = re.compile(r"\b(?:that|this) (?:product|model|one|page|listing)\b"
                          # "... so I've excluded it.", "..., so they are not included.": a statement, not a
                          # title ("Not worth it") or a line over a list ("I'd skip them all:")
                          r"|^(?=(?:\W*\w+\b){6}).*\b(?:it|them|they)\b(?=[^:]*$)", re.I)
# a short title over a second group, after the picks, that holds a negation or a caution: "**One to be
# careful with**", "Models that may not fit your needs:", "Eher nicht für dich:", "### What to watch out for"
_CAUTION = re.compile(r"\b(?:careful|caution|watch(?:ing)? out|beware|think twice|wary|drawbacks?|downsides?"
                      r"|less (?:suitable|suited|ideal|recommended)|weaker (?:picks|options|choices)"
                      r"|vorsicht|attention à|cuidado|attenzione)\b", re.I)
# negations that neither advise against nor caution: "in no particular order", "won't break the bank"
_NOT_CONTRAST = re.compile(r"\bno particular order\b|\bbreak the bank\b|\bwithout\b|\black\w*|\bnot only\b"
                           r"|\bno matter\b|\bno-frills\b|\bnot sure\b", re.I)
_CONTRAST_WORDS = 9  # a title, not a sentence that sets up the picks ("For home use you don't need a pro drill")


def _contrast_title(own: str) -> bool:
    """Whether a short line naming no product, after the answer's picks, puts what follows aside."""
    plain = _NOT_CONTRAST.sub("", NOT_AGAINST.sub("", own))
    if len(own.split()) > _CONTRAST_WORDS or sig.GOOD_PICK.search(own) or sig.MORE_OPTIONS.search(own):
        return False
    return bool(NEGATION.search(plain) or _CAUTION.search(plain))


# a paragraph that opens with a question in bold: "**What about the Dyson?** ... I wouldn't buy it"
_BOLD_QUESTION = re.compile(r"^\W*(?:\*\*|__)[^*_\n]{3,80}\?\s*(?:\*\*|__)")


def _asks_about(unit: Unit) -> bool:
    """Whether a heading, or a paragraph's bold opening, asks about what it names."""
    if unit.kind == "heading":
        return unit.head.rstrip(" *_").endswith("?")
    return unit.kind == "para" and bool(_BOLD_QUESTION.match(unit.text))


def _asked(unit: Unit, reader: Reader) -> list[int]:
    """What a question names: a heading's subjects, or the one product a paragraph names."""
    if unit.kind == "heading":
        return reader.subjects(unit)
    named = list(dict.fromkeys(m.product for m in reader.find(unit.text)))
    return named if len(named) == 1 else []


def advised_for(units: list[Unit], reader: Reader) -> list[Unit]:
    """Without units marked against ("❌ Skip" rows) and the items under a line that advises
    against them ("What I'd avoid:", "## Avoid"), up to the next heading or paragraph."""
    out: list[Unit] = []
    against = echo = False
    ranked = False  # a ranked list or table came before
    picked = False  # a unit kept as the answer's own came before
    for unit in units:
        if unit.kind != "para" and sig.AGAINST_TITLE.match(unit.head) and (named := reader.find(unit.head)):
            reader.against.update(m.product for m in named)  # "Avoid: the X"
            continue
        if sig.SPONSORED.match(unit.head if unit.kind != "para" else unit.text) and (named := reader.find(unit.text)):
            reader.against.update(m.product for m in named)  # a paid slot, not the answer's pick
            continue
        if unit.kind == "bullet" and unit.head != unit.text and sig.AGAINST_TITLE.match(unit.head) \
                and re.fullmatch(r"\W*\w+(?: \w+)?\W*", unit.head):
            reader.against.update(m.product for m in reader.find(unit.text))  # "- **Skip:** the A and the B"
            continue
        ranked = ranked or (unit.rank is not None and unit.kind in ("item", "row"))
        if unit.kind == "para" and sig.COMPARE_INTRO.match(unit.text) and reader.find(unit.text):
            continue  # "For reference: compared with the X, both have ...": comparisons
        if unit.kind in ("para", "heading"):
            echo = bool(sig.ECHO_INTRO.search(unit.text) or sig.SOURCES.match(unit.text)
                        or sig.COMPARE_INTRO.match(unit.text)
                        or sig.NOTES.match(unit.head if unit.kind == "heading" else unit.text))
            # a short line, naming no product, that advises against what follows (a heading: its
            # title, over the items or the paragraph under it: "### Skip" / "The **Archer C7** ...")
            own = unit.head if unit.kind == "heading" else unit.text
            lead = _last_sentence(own)
            against = (unit.kind == "heading" or len(unit.body) <= 1) and len(lead) <= 120 \
                and not _POINTS_BACK.search(lead) \
                and (_negative_cue(lead) or bool(sig.LEFT_OUT.match(own))
                     or (unit.kind == "heading" and bool(sig.AGAINST_TITLE.match(unit.head)))
                     or bool(sig.SPONSORED.match(own)) or (picked and _contrast_title(own))) \
                and not reader.find(own)
            if against and unit.kind == "heading" and unit.body:
                reader.against.update(m.product for m in reader.find(unit.text))
                continue
            if _asks_about(unit) and _negative_cue(unit.text) and (asked := _asked(unit, reader)):
                reader.against.update(asked)  # "### What about the X?" over "... so I've left it out"
                continue
        elif echo and unit.kind in LIST_KINDS:
            continue  # the pages echoed, not the answer's recommendation
        elif against or unit.against or (unit.kind in ("item", "bullet", "heading") and _verdict_against(unit, reader)):
            reader.against.update(reader.subjects(unit))
            continue
        out.append(unit)
        picked = picked or (unit.kind != "para" and bool(reader.subjects(unit)))
    return out
