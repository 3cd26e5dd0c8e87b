"""Reading prose: the sentences that state a choice, a closing paragraph's choice, and the
products a paragraph after the picks adds ("Other options include the X", "If you prefer
earbuds, the Y")."""

from __future__ import annotations

import re

from . import _signals as sig
from ._cues import _SENTENCE
from ._doubt import NEGATION
from ._mentions import IF_LEAD, NOTE, Reader
from ._units import LIST_KINDS, Unit

__all__ = ["bold_named", "closing_picks", "lead_picks", "more_options", "only_pick", "paragraph_picks",
           "stated_picks", "tied_first", "top_pick_first", "use_case_picks"]


_BUT = re.compile(r"\bbut\b|\bhowever\b|\bthough\b", re.I)
# a pick under a condition, after the choice: "The Magic Chef only if budget is everything"
_ONLY_IF = re.compile(r"\bonly if\b|\bnur wenn\b|\bseulement si\b|\bsolo si\b", re.I)


def _set_aside(sentence: str, reader: Reader) -> bool:
    """Whether a sentence names its products only to set them aside for a choice made after a
    "but" ("The X and the Y are fine tools, but I'd start with one of the above")."""
    parts = _BUT.split(sentence)
    return len(parts) >= 2 and not any(sig.DECISION.search(p) or sig.ORDINAL.search(p) for p in parts[:-1]) \
        and bool(sig.DECISION.search(parts[-1])) and not reader.find(parts[-1])


def closing_picks(text: str, reader: Reader) -> list[int]:
    """The products a closing paragraph chooses, leaving out those it sets aside."""
    out: list[int] = []
    for m in _SENTENCE.finditer(text):
        if not _set_aside(m.group(), reader):
            out += reader.mentions(m.group(), skip_negative=True)
    return list(dict.fromkeys(out))


# a use case that leads a sentence: "If you want a ratchet, ...", "For electricians, ..."
_USE_LEAD = re.compile(IF_LEAD.pattern + r"|\s*(?:for|für|pour|para|per|voor)\s+(?!comparison\b|reference\b|context\b"
                       r"|example\b|instance\b|what\b|that\b|this\b)[^,;:.!?\n]{3,60}[,;:]", re.I)


_LEADING_MARKS = re.compile(r"^[\W_]*(?:(?:and|also|or|plus|und|et|y)\s+"
                            r"|(?:however|but|that said|alternatively|still),?\s+)?", re.I)
# "🔋 If you're open to battery: ...", "And for a simple suction-side cleaner, the X ..."


def _led_by_use(sentence: str, reader: Reader) -> bool:
    """Whether a sentence opens on a use case that names no product ("If you prefer earbuds, the X")
    and is not a note."""
    lead = _USE_LEAD.match(_LEADING_MARKS.sub("", sentence))
    return lead is not None and not reader.find(lead.group()) and not NOTE.match(sentence)


def stated_picks(units: list[Unit], reader: Reader, decides: sig._Either = sig.DECISION) -> list[int] | None:
    """The products of the sentences that recommend and of pick lines, in written order; None
    when no sentence states a choice (``decides``) and no line labels a pick."""
    chosen: list[int] = []
    decided = False
    for u in units:
        if u.kind == "pick" and (subjects := reader.subjects(u)):
            chosen += subjects
            decided = True
            continue
        for m in _SENTENCE.finditer(u.text):
            s = m.group()
            decision = bool(decides.search(s))
            decided = decided or decision
            picks = decision or any(r.search(s) for r in (sig.ORDINAL, sig.ALSO, sig.TIE, sig.GOOD_PICK, _ONLY_IF))
            if picks and not _set_aside(s, reader):
                chosen += reader.mentions(s, skip_negative=True)
            elif _led_by_use(s, reader):
                chosen += reader.mentions(s, skip_negative=True)  # "For electricians, Klein's X is handy"
    return list(dict.fromkeys(chosen)) if decided else None


def use_case_picks(units: list[Unit], reader: Reader) -> list[int]:
    """The products of prose sentences led by a use case ("If budget is a concern, the X and the Y
    are both good"), in written order."""
    out: list[int] = []
    for u in units:
        if u.kind != "para":
            continue
        for m in _SENTENCE.finditer(u.text):
            s = m.group()
            if _led_by_use(s, reader) and not _set_aside(s, reader):
                out += reader.mentions(s, skip_negative=True)
    return out


_NEITHER = re.compile(r"\b(?:neither|nor|none)\b", re.I)


def more_options(units: list[Unit], reader: Reader) -> list[int]:
    """Products a paragraph after the picks adds ("Other options include the Fluke 417D")."""
    last = max((i for i, u in enumerate(units) if u.kind != "para" and reader.subjects(u)), default=len(units))
    out = []
    for u in units[last + 1:]:
        if u.kind != "para":
            continue
        if sig.MORE_OPTIONS.search(u.text):
            out += reader.mentions(u.text, skip_negative=True)
            continue
        # "If you're on a PCIe 3.0 board, the X remains a strong value choice"; "If you prefer earbuds, the Y"
        for m in _SENTENCE.finditer(u.text):
            sentence = m.group()
            if (NOTE.match(sentence) and not sig.GOOD_PICK.search(sentence)) or _NEITHER.search(sentence):
                continue  # a note; "..., so neither is recommended"
            if sig.GOOD_PICK.search(sentence) or _led_by_use(sentence, reader):
                out += reader.mentions(sentence, skip_negative=True)
    return out


_OTHER_OPTIONS = re.compile(r"\bother (?:[\w-]+ )?(?:options|choices|picks|contenders|models)\b"
                            r"|^\W*also (?:consider|worth (?:a look|considering))\W*$"
                            r"|\balternatives? (?:include|are)\b|\bweitere (?:optionen|alternativen)\b"
                            r"|\bautres (?:options|choix)\b|\botras opciones\b", re.I)


def lead_picks(units: list[Unit], reader: Reader) -> list[list[int]]:
    """The pick a paragraph names before a list of "other strong options": it comes first."""
    first = next((i for i, u in enumerate(units) if u.kind in LIST_KINDS), 0)
    before = units[:first]
    at = next((i for i, u in enumerate(before) if _OTHER_OPTIONS.search(u.text)), None)
    if at is None or any(u.kind not in ("para", "heading") for u in before[: at + 1]):
        return []
    out: list[list[int]] = []
    for u in before[: at + 1]:
        more = _OTHER_OPTIONS.search(u.text)
        text = u.text[: more.start()] if more else u.text
        out += [[p] for p in dict.fromkeys(reader.mentions(text, skip_negative=True))]
    return out


def tied_first(units: list[Unit], reader: Reader) -> list[list[int]]:
    """Products a paragraph before the list ties at the top ("The A and the B are tied for the
    top spot. ... Next in line:"): they come before the list."""
    out: list[list[int]] = []
    for u in units:
        if u.kind != "para":
            break
        for m in _SENTENCE.finditer(u.text):
            if sig.TIE.search(m.group()) and sig.TOP.search(m.group()) \
                    and len(ps := list(dict.fromkeys(reader.mentions(m.group(), skip_negative=True)))) >= 2:
                out.append(ps)
    return out


_TOP_PICK = re.compile(r"\b(?:my|our) (?:top|overall|number[- ]one|#1|clear|first) (?:pick|choice|recommendation)\b"
                       r"|\b(?:the )?overall winner\b|\bmy (?:pick|vote) overall\b"
                       r"|\boverall,? (?:i['’]d|i would) (?:lean towards?|go with|pick)\b", re.I)


# a pick line's label that makes it the first pick
_TOP_TITLE = re.compile(r"\b(?:best overall|top pick|overall (?:winner|pick)|editor['’]?s (?:pick|choice)|(?:our|my) "
                        r"(?:top )?pick|#\s*1 pick|number[- ]one pick)\b", re.I)


def top_pick_first(units: list[Unit], base: list[int], reader: Reader) -> list[int]:
    """Picks laid out without ranks and a sentence that names one of them the top pick ("my top
    pick is the Theragun Elite"): that one goes first."""
    if len(base) < 2 or any(u.rank is not None for u in units):
        return base
    for u in units:  # "💸 **Best budget pick:** the A ... 🏆 **Best overall:** the B": the B first
        if u.kind == "pick" and _TOP_TITLE.search(u.title) and (ps := reader.subjects(u)) and ps[0] in base:
            return [ps[0]] + [q for q in base if q != ps[0]]
    for u in units:
        for m in _SENTENCE.finditer(u.text):
            if not _TOP_PICK.search(m.group()):
                continue
            named = {x.product for x in reader.find(m.group())}
            if len(named) == 1 and (p := named.pop()) in base:
                return [p] + [q for q in base if q != p]
    return base


# a later sentence of a product's paragraph that goes on to the next pick: "Then **Kennedy** — ..."
_SEQUENCE = re.compile(r"^\W*(?:then|next|after that"
                       r"|(?:an? |my )?(?:close |strong |solid )?(?:second(?:ly)?|runner[- ]up)"
                       r"|third(?:ly)?|dann|danach|puis|ensuite|luego"
                       r"|despu[eé]s|poi|daarna)\b", re.I)


def paragraph_picks(unit: Unit, reader: Reader) -> list[int]:
    """A pick line's products, or a paragraph's: the one product its first sentence names and those
    its later sentences pick; or, after an opening that names none, those its later sentences pick
    ("For five people you'll want 6 quarts. I'd suggest starting with the X")."""
    if unit.kind == "pick":
        return ps if len(ps := reader.subjects(unit)) == 1 else []
    if unit.kind != "para":
        return []
    first = reader.first_sentence_products(unit)
    opening = m.group() if (m := _SENTENCE.search(unit.text)) else unit.text
    if len(first) > 1 or (not first and reader.find(opening)):
        return []  # an opening that compares, or names a product only to advise against it
    return list(dict.fromkeys(first + _sequenced(unit, reader)))


def _sequenced(unit: Unit, reader: Reader) -> list[int]:
    """Products of the sentences after a paragraph's first that open with a step to the next pick
    or call a product a pick ("the OPPO A94 is another solid budget option")."""
    sentences = [m.group() for m in _SENTENCE.finditer(" ".join(unit.body))][1:]
    out: list[int] = []
    for s in sentences:
        if _SEQUENCE.match(s):
            out += reader.mentions(s, skip_negative=True)[:1]
        elif sig.GOOD_PICK.search(s) or sig.DECISION.search(s):
            out += reader.mentions(s, skip_negative=True)
    return out


_BOLD_SPAN = re.compile(r"^\s*(?:\*\*|__)([^*_\n]{2,80})(?:\*\*|__)")


def bold_named(unit: Unit, reader: Reader) -> list[int]:
    """The product a paragraph opens on in bold, when its first sentence recommends it (and
    names no other): a pick written as a paragraph among list items or pick lines."""
    m = _BOLD_SPAN.match(unit.text)
    if m is None or m.group(1).rstrip().endswith("?") or NEGATION.search(unit.text):
        return []
    found = reader.find(unit.text)
    if len({x.product for x in found}) != 1 or found[0].kind != "full" or found[0].start > m.start(1) + 4:
        return []  # it names one product, by its name, in bold at its start
    return [found[0].product] if reader.first_sentence_products(unit) == [found[0].product] else []


# "I'd only pick it if you like its filter": a condition, not a pick that excludes the rest
_ONLY_CONDITION = re.compile(r"\bonly\b[^.!?\n]{0,30}\b(?:if|when|for)\b", re.I)


def only_pick(text: str, reader: Reader) -> int | None:
    """The product a sentence picks to the exclusion of the rest, when it names exactly one."""
    if not sig.ONLY_PICK.search(text):  # one search of the answer before one of each sentence
        return None
    for m in _SENTENCE.finditer(text):
        sentence = m.group()
        if sig.ONLY_PICK.search(sentence) and not _ONLY_CONDITION.search(sentence) \
                and len(named := set(reader.mentions(sentence, skip_negative=True))) == 1 \
                and len({x.product for x in reader.find(sentence)}) == 1:
            return named.pop()
    return None
