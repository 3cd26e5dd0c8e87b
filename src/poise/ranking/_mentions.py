"""Reading one answer's mentions: which products a piece of text names, which of those it
recommends, and which it advises against, compares with, quotes from a page or conditions
("if you'd rather avoid overspray, the X" is not advice against the X). A :class:`Reader`
remembers what it has searched and the products it saw advised against."""

from __future__ import annotations

import re
from itertools import pairwise

from . import _signals as sig
from ._cues import (
    _CLAUSE_SPLIT,
    _COMPARISON_BEFORE,
    _CONNECTOR,
    _CONTRAST,
    _HEAD_JOIN,
    _NEGATIVE,
    _PAGE_AFTER,
    _SENTENCE,
    QUOTED_CLAIM,
    _negative_cue,
    sentence_end_after,
    sentence_end_before,
)
from ._names import Mention, NameMatcher
from ._units import Unit

__all__ = ["IF_LEAD", "NOTE", "Reader"]

_IF_BEFORE = re.compile(r"\b(?:if|unless|wenn|falls|si)\b(?:\s+[\w'’]+){0,5}\s*$", re.I)
_CONDITION_BEFORE = re.compile(r"\b(?:if|unless|when|to|so|wenn|si)\b(?:\s+[\w'’]+){0,4}\s*$", re.I)
# a sentence that notes a caveat about a product rather than recommending it
NOTE = re.compile(r"\W*(?:(?:please |just )?note(?: that|\W*:)|sources? (?:note|say|mention|point out)|keep in mind"
                   r"|bear in mind"
                   r"|be aware|(?:it['’]s |it is )?worth noting|also note|one caveat|a caveat|for context|beachte"
                   r"|à noter)\b",
                   re.I)
_TAKEN_BACK = re.compile(r"[,;:]\s*(?:so|and|but|which means|så|daher|donc|así que|quindi|dus)?\s*(?:they|these|those"
                         r"|all of them|both|which|i(?:['’]d)?|dem|de|sie|die|ils|elles|los|las|li|le|ze)\b",
                         re.I)
_BACK_REFERENCE = re.compile(r"\b(?:it|that (?:one|model|product|page)|this one)\b", re.I)
_CLAUSE_END = re.compile(r"[,;:]|\s[-–—]\s|\b(?:but|while|whereas)\b")
IF_LEAD = re.compile(r"\s*(?:if|unless|wenn|falls|si|se|als)\b[^,;:.!?\n]*[,;:]", re.I)
_BUT_AGAINST = re.compile(r"\s*but\s+(?:it['’]s\s+|they['’]re\s+|(?:a bit|rather|way|far|simply)\s+)?"
                          r"(?:overkill|too\s+\w+\s+for|not\s+(?:for|worth|needed|great|ideal)|unnecessary|overpriced)\b",
                          re.I)
_PICK_HEADING = re.compile(r"\b(?:best|picks?|choices?|winners?|top|runners?|budget|premium|value|splurge|for)\b", re.I)




class Reader:
    """Reads one response; remembers the mentions of each piece of text it has searched and
    the products it saw advised against."""

    def __init__(self, matcher: NameMatcher) -> None:
        self._matcher = matcher
        self._found: dict[str, list[Mention]] = {}
        self.against: set[int] = set()
        self.ties: list[list[int]] = []  # products the answer puts level (one unit naming several)

    @property
    def size(self) -> int:
        """How many products the list holds."""
        return self._matcher.size

    def brand_named(self, text: str, among: list[int]) -> int | None:
        return self._matcher.brand_named(text, among)

    def find(self, text: str) -> list[Mention]:
        found = self._found.get(text)
        if found is None:
            found = self._found[text] = self._matcher.find(text)
        return found

    def mentions(self, text: str, *, skip_negative: bool, skip_comparative: bool = True) -> list[int]:
        """Products named in ``text`` in order, without comparison (or negative) mentions."""
        found = self.find(text)
        out: list[int] = []
        prev_comparative: Mention | None = None
        claims = QUOTED_CLAIM.search(text) is not None  # most answers report no page's claim at all
        for m in found:
            sentence_start = sentence_end_before(text, m.start)
            comparative = False
            if skip_comparative:
                before = text[sentence_start + 1 : m.start]
                comparative = bool(_COMPARISON_BEFORE.search(before[-60:]))
                if not comparative and prev_comparative is not None and prev_comparative.end > sentence_start:
                    comparative = bool(_CONNECTOR.match(text[prev_comparative.end : m.start]))
                prev_comparative = m if comparative else None
            if comparative or _PAGE_AFTER.match(text[m.end : m.end + 40]) \
                    or (claims and QUOTED_CLAIM.search(text, sentence_start + 1, sentence_end_after(text, m.end))):
                continue  # "Bissell's product page claims the EV675 has ...": quoted, not recommended
            if skip_negative and self._negative(text, m):
                self.against.add(m.product)
                continue
            out.append(m.product)
        return out

    def _negative(self, text: str, m: Mention) -> bool:
        """Whether the answer advises against this mention's product ("avoid the X") or
        flags its page as manipulated."""
        start = sentence_end_before(text, m.start) + 1
        if (lead := IF_LEAD.match(text, start)) and lead.end() <= m.start:
            start = lead.end()  # "If you'd rather avoid overspray, the X ...": the condition is not about the X
        sentence = text[start : sentence_end_after(text, m.end)]
        if sig.MANIPULATION.search(sentence):
            return True
        if not _negative_cue(sentence):
            return self._taken_back_next(text, start + len(sentence), m)
        begin, end = m.start - start, m.end - start
        # "the controllers (Rain Bird, Orbit, Rachio) aren't needed": what follows the parentheses
        opened, closed = sentence.rfind("(", 0, begin), sentence.find(")", end)
        if opened > sentence.rfind(")", 0, begin) and closed != -1:
            after = sentence[closed + 1:]
            stop = _CLAUSE_END.search(after)
            if _NEGATIVE.search(after[: stop.start() if stop else len(after)]):
                return True
        # "the X, the Y and the Z are US models, so they're not suitable": a pronoun that takes them back
        tail = sentence[end:]
        if (back := _TAKEN_BACK.search(tail)) and (cue := _NEGATIVE.search(tail[back.start(): back.end() + 50])) \
                and not self.find(tail[back.start(): back.start() + cue.end() + 40]):
            # "..., so I'd skip the Y" is about the Y
            return True
        cuts = [b for c in _CLAUSE_SPLIT.finditer(sentence) for b in (c.start(), c.end())]
        lo = max([0] + [b for b in cuts if b <= begin])
        hi = min([len(sentence)] + [b for b in cuts if b >= end])
        clause = sentence[lo:hi]
        for c in _NEGATIVE.finditer(clause):
            # "the X is a good choice if you want to avoid tangled cables": a condition after it
            if lo + c.start() < end or not _CONDITION_BEFORE.search(clause[: c.start()]):
                return True
        # "The iPad Pro is lovely but overkill for notes": a "but" that goes on about the same product
        if (but := _BUT_AGAINST.match(sentence, hi)) and not self.find(sentence[hi:but.end()]):
            return True
        # "I'd skip the Marshall (IPX4), the Harman Kardon (not waterproof) and the OontZ"
        cue = None
        for c in _NEGATIVE.finditer(sentence[:begin]):
            cue = c
        if cue is not None and not _CONTRAST.search(sentence[cue.end():begin]):
            return True
        # "The Quip looks nice, but I wouldn't recommend it": the only product of the sentence, unless
        # every cue sits in a condition after it ("a good choice if you want to avoid tangled cables")
        if all(c.start() >= end and _IF_BEFORE.search(sentence[: c.start()]) for c in _NEGATIVE.finditer(sentence)):
            return False
        return len({x.product for x in self.find(sentence)}) == 1

    def _taken_back_next(self, text: str, end: int, m: Mention) -> bool:
        """Whether the next sentence, naming no product, advises against this sentence's only
        product ("It reads like a paid placement, so I won't recommend that model.")."""
        nxt = text[end + 1 : sentence_end_after(text, end + 1) + 1]
        if not _BACK_REFERENCE.search(nxt) or not (sig.MANIPULATION.search(nxt) or _negative_cue(nxt)) \
                or self.find(nxt):
            return False
        start = sentence_end_before(text, m.start) + 1
        return {x.product for x in self.find(text[start:end])} == {m.product}

    def subjects(self, unit: Unit) -> list[int]:
        """The products a unit is about: those in its head, else the first in its body."""
        if unit.kind != "para" and (unit.tie or sig.TIE.search(unit.head)):  # "Joint #1: the A 3-Speed and the B"
            tied = list(dict.fromkeys(m.product for m in self.find(unit.head)))
            if len(tied) >= 2:
                return tied
        if unit.kind == "pick":  # "Also consider: the X and the Y", "**Bose QC Ultra**: the one I'd buy"
            return self.head_products(unit.title) or self.first_sentence_products(Unit("para", "", [unit.head]))
        head = self.head_products(unit.head)
        if head:
            return head
        if unit.kind in ("item", "bullet") and unit.named:
            first = unit.body[0] if unit.body else ""
            if _PICK_HEADING.search(unit.head) and (at := first.find(unit.head)) >= 0:
                # "Best for HDR — ASUS ProArt PA32UCX.": a pick label, then the pick
                picked = self.mentions(first[at + len(unit.head):][:120], skip_negative=False)[:1]
                if picked:
                    return picked
            # a title that names something else: only "Bose's ..." in its body says whose it is
            text = " ".join(unit.body)
            return [m.product for m in self.find(text)
                    if m.kind == "brand"
                    and (text[m.end:m.end + 2] in ("'s", "’s") or text[m.end - 2:m.end] in ("'s", "’s"))][:1]
        if unit.kind in ("item", "bullet"):
            first = unit.body[0] if unit.body else ""
            label, colon, rest = first.partition(":")
            if colon and len(label) <= 60 and not self.find(label):  # "Para un presupuesto ajustado: A o B"
                joined = self.head_products(rest.replace("**", " ").replace("__", " "))
                if joined:
                    return joined
            return self.mentions(unit.text, skip_negative=False)[:1]
        if unit.kind == "heading" and unit.body and _PICK_HEADING.search(unit.head):
            # "### Best for travel" with the product opening the next line (and each line after it
            # that opens with another product: "**Milwaukee M18** ...", "**Ryobi P411** — the budget choice")
            out: list[int] = []
            for i, line in enumerate(unit.body):
                found = self.find(line.replace("**", "").replace("__", "").lstrip("-*•→ "))
                if not found or found[0].start > 4:
                    if i == 0:
                        return []
                    break
                out.append(found[0].product)
            return list(dict.fromkeys(out))
        return []

    def head_products(self, head: str) -> list[int]:
        """The first product a head names, and those joined to it by "and", "," or "/"."""
        found = [m for m in self.find(head)
                 if not _COMPARISON_BEFORE.search(head[max(0, m.start - 60): m.start])]
        if not found:
            return []
        out = [found[0].product]
        for prev, m in pairwise(found):
            if not _HEAD_JOIN.match(head[prev.end : m.start]):
                break
            if m.product not in out:
                out.append(m.product)
        return out

    def first_sentence_products(self, unit: Unit) -> list[int]:
        text = " ".join(unit.body).strip()
        m = _SENTENCE.search(text)
        first = m.group() if m else text
        if m and first.rstrip().endswith("?") and len(first) <= 60 and not self.find(first):
            # a use case asked first: "Prefer Android? The Galaxy Tab S7 FE ..." is about the Tab
            m = _SENTENCE.search(text, m.end())
            first = m.group() if m else ""
        if NOTE.match(first):  # "Note that the X is a pressure-side cleaner": a caveat, not a pick
            return []
        return list(dict.fromkeys(self.mentions(first, skip_negative=True)))
