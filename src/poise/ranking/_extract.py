"""Read the order in which a free-text answer recommends a list of products, and say when
it cannot be read or can be read more than one way.

The answer is cut into units: list items, headings with their sections, table rows, pick
lines and paragraphs. When it is structured (two or more units each about its own product)
the written order of those units is the ranking; otherwise plain prose is read by first
mention. Comparisons ("quieter than the X"), products advised against, skipped or excluded
("❌ Skip" rows, an "Avoid" tier, "I left the X out"), pages flagged as manipulated, and text
quoted from a page are never recommendations.

Explicit ranking signals beat the written order wherever they sit: ranks (a countdown,
"[#2]" labels, a table's rank column, JSON ``rank`` fields), a ranking statement ("Final
ranking:", "TL;DR:", "My ranking: X first, then Y", "Mon classement : d'abord X, puis Y"),
a list introduced "from least to most recommended" (read backwards), and a revision ("wait,
let me reconsider": what follows replaces what came before). Ties keep written order unless
the answer breaks them. Two ranking statements that disagree make the answer ambiguous, and
so does one that calls a product only by its place among the pages ("source [3]"). An answer
that only compares picks none; "I'd only recommend the X" keeps the X alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from . import _signals as sig
from ._against import advised_for
from ._cues import (
    _SENTENCE,
    _degenerate,
    _strip_echoes,
)
from ._declines import compares_only, declines, defers
from ._doubt import by_position, negated_only
from ._json import find_json, find_yaml, read_json
from ._mentions import NOTE, Reader
from ._names import matcher_for
from ._passing import passing_only
from ._places import check_context, name_places
from ._prose import (
    bold_named,
    closing_picks,
    lead_picks,
    more_options,
    only_pick,
    paragraph_picks,
    stated_picks,
    tied_first,
    top_pick_first,
    use_case_picks,
)
from ._result import Ranking, Role, scores_from_order
from ._tables import below_bar, not_advised_against, table_only
from ._units import LIST_KINDS, Unit, by_rank, cut, labelled_only

__all__ = ["Ranking", "extract_ranking", "parse_ranking", "scores_from_order"]

# a bullet that describes one aspect of the pick above it ("Why:", "Pros:", "Best for:")
_ASPECT = re.compile(r"^\W*(?:why|pros?|cons?|notes?|best for|good for|great for|ideal for|price|verdict|specs?"
                     r"|key (?:features|specs)|features|downsides?|upsides?|drawbacks?|caveats?|who it['’]?s for"
                     r"|what (?:we|i) (?:like|don['’]t like)|strengths?|weaknesses?|vorteile|nachteile|avantages"
                     r"|inconvénients|ventajas|desventajas)\W*:", re.I)

def _names(products: Sequence[Any]) -> tuple[tuple[str, str], ...]:
    out = []
    for p in products:
        if isinstance(p, tuple):
            out.append((str(p[0]), str(p[1])))
        else:
            out.append((str(p.brand), str(p.model)))
    return tuple(out)


def _bold_lead(unit: Unit) -> bool:
    """A paragraph that opens on a bold name ("**NARS Audacious** — the most luxurious ...")."""
    return unit.kind == "para" and unit.text.lstrip().startswith(("**", "__"))


def _reverse_runs(units: list[Unit]) -> list[Unit]:
    """A list introduced as "from least to most recommended" read backwards (a countdown's
    numbers already say which is best, so it is left to its ranks)."""
    out: list[Unit] = []
    i = 0
    while i < len(units):
        unit = units[i]
        out.append(unit)
        i += 1
        if unit.kind not in ("para", "heading") or not sig.REVERSED.search(unit.text):
            continue
        j = i
        while j < len(units) and (units[j].kind in (*LIST_KINDS, "heading") or _bold_lead(units[j])):
            j += 1
        run = units[i:j]
        ranks = [u.rank for u in run if u.rank is not None]
        countdown = any(u.reordered for u in run) or (len(ranks) == len(run) and ranks == sorted(ranks, reverse=True))
        if len(run) >= 2 and not countdown:
            for u in run:
                u.rank = None
            out.extend(reversed(run))
            i = j
    return out


def _statement(units: list[Unit], i: int, reader: Reader) -> tuple[list[int], int]:
    """The order a ranking statement in unit ``i`` gives, and its level: 3 for a ranking
    ("Final ranking:"), 2 for a short answer ("TL;DR:"), 1 for a summary that orders products
    with ordinal words ("Bottom line: X first, then Y"); the highest-level one when a unit
    holds several. A ranking whose list names none of the products ranks products outside
    the list: it comes back as [-1]."""
    unit = units[i]
    if not sig.STATEMENT_HINT.search(unit.head if unit.kind != "para" else unit.text):
        return [], 0
    plain = [line.replace("**", "").replace("__", "") for line in ([unit.head] if unit.kind != "para" else unit.body)]
    text = " ".join(plain)
    run = _run_after(units, i)
    best: tuple[list[int], int] = ([], 0)
    sentences = list(_SENTENCE.finditer(text)) if unit.kind == "para" else [re.match(r".*", text, re.S)]
    for k, sentence in enumerate(sentences):
        assert sentence is not None
        level, m = next(((lv, m) for lv, rx in sig.STATEMENTS if (m := rx.match(sentence.group()))), (0, None))
        if m is None or level <= best[1]:
            continue
        rest = text[sentence.start() + m.end():]
        last = k == len(sentences) - 1
        inline = list(dict.fromkeys(reader.mentions(rest, skip_negative=True, skip_comparative=False)))
        following = [ps for u in (run if last else []) if (ps := reader.subjects(u))]
        order = list(dict.fromkeys(p for ps in following for p in ps))
        if len(order) >= 2 and len(inline) < 2:
            best = (order, level)
        elif (len(inline) >= 2 and (level >= 2 or sig.ORDINAL.search(rest) or sig.DECISION.search(rest))) \
                or (level >= 2 and len(inline) == 1 and not run):
            best = (inline, level)
        elif level == 3 and not order and not inline and last and len(run) >= 2:
            best = ([-1], level)
    return best


def _run_after(units: list[Unit], i: int) -> list[Unit]:
    out = []
    for u in units[i + 1:]:
        if u.kind not in LIST_KINDS and not (u.kind == "heading" and u.rank is not None):
            break
        out.append(u)
    return out


def _conflict(a: list[int], b: list[int]) -> bool:
    common = [p for p in a if p in b]
    return common != [p for p in b if p in a]


def _base(units: list[Unit], reader: Reader) -> list[int]:
    """Structured answers by their units; otherwise plain prose: the sentences that state a
    choice ("I'd get the X first, then the Y"), or else every recommending mention in order."""
    listed = _listed(units, reader)
    if len(listed) >= 2 and len({p for ps in listed for p in ps}) >= 2:
        listed = tied_first(units, reader) + lead_picks(units, reader) + listed
        for ps in listed:
            if len(ps) >= 2:
                reader.ties.append(ps)
        return list(dict.fromkeys([p for ps in listed for p in ps] + more_options(units, reader)))
    # prose that closes on its choice ("I'd go with the X, then the Y; the Z if ..."): that is the ranking
    paras = [u for u in units if u.kind == "para" and reader.find(u.text)]
    if paras and (sig.DECISION.search(paras[-1].text) or sig.ORDINAL.search(paras[-1].text)):
        closing = closing_picks(paras[-1].text, reader)
        if len(closing) >= 2:
            return closing
    # one paragraph per product: a paragraph whose first sentence names one product (or a pick line)
    paragraphs = [ps for u in units if (ps := paragraph_picks(u, reader))]
    if len(paragraphs) >= 2 and len({ps[0] for ps in paragraphs}) >= 2:
        # and the use-case picks a paragraph adds after its first sentence ("If budget is a concern, the X")
        return list(dict.fromkeys([p for ps in paragraphs for p in ps] + use_case_picks(units, reader)))
    text = "\n".join(u.text for u in units)
    if sig.DECISION.search(text) or any(u.kind == "pick" for u in units):
        # prose that states its choice: only the sentences that recommend, not those that describe,
        # and the pick lines ("Runner-up: the X") in their place
        chosen = stated_picks(units, reader)
        if chosen is not None:
            return chosen
    kept = " ".join(m.group() for m in _SENTENCE.finditer(text) if not NOTE.match(m.group()))
    against = set(reader.against)  # what the structure took out ("Removed from cart:" bullets) stays out
    return list(dict.fromkeys(p for p in reader.mentions(kept, skip_negative=True) if p not in against))


def _listed(units: list[Unit], reader: Reader) -> list[list[int]]:
    """The products of a structured answer's units, in order. A comparison table without
    ranks before a numbered list compares (the list ranks), and the labelled bullets of a
    product's section ("Why:", "Note: the X is cheaper still") describe it, not another pick."""
    numbered = any(u.kind == "item" and u.rank is not None for u in units)
    rows = [i for i, u in enumerate(units) if u.kind == "row"]
    if rows and not numbered:  # labelled picks after the table ("- **Best value:** the X") rank, the table compares
        numbered = len({p for u in units[rows[-1] + 1:] if u.kind == "bullet" and u.head != u.text
                        for p in reader.subjects(u)}) >= 2
    listed: list[list[int]] = []
    section = False  # inside the section of a heading that names a product
    among: bool | None = None  # two list units name products: asked once a paragraph opens on a bold name
    for u in units:
        if _bold_lead(u):
            if among is None:
                among = sum(1 for v in units if v.kind in LIST_KINDS and reader.subjects(v)) >= 2
            if among and (ps := bold_named(u, reader)):  # "**De'Longhi RadiaS ECO** – even heat": one more pick
                listed.append(ps)
                continue
        if u.kind == "para" or (numbered and u.kind == "row" and u.rank is None):
            continue
        if u.kind == "heading":
            ps = reader.subjects(u)
            section = bool(ps)
        elif (section and u.kind in ("item", "bullet") and not reader.head_products(u.head)) \
                or (u.kind == "bullet" and _ASPECT.match(u.head)):  # "* *Why:* ... high torque": the pick above
            continue
        else:
            ps = reader.subjects(u)
        if ps:
            listed.append(ps)
    return listed


def _break_ties(order: list[int], text: str, reader: Reader) -> list[int]:
    """Products the answer ties, in written order, unless it breaks the tie ("if pressed,
    I'd give the T3 the edge"): then the named one goes first among them."""
    if not sig.TIE_BREAK.search(text):
        return order
    groups = list(reader.ties)
    sentences = [m.group() for m in _SENTENCE.finditer(text)]
    groups += [ps for s in sentences if sig.TIE.search(s) and len(ps := list(dict.fromkeys(
        m.product for m in reader.find(s)))) >= 2]
    for s in sentences:
        if not sig.TIE_BREAK.search(s):
            continue
        named = reader.find(s)
        tied_here = list(dict.fromkeys(p for g in groups for p in g if p in order))
        winner = named[0].product if named else reader.brand_named(s, tied_here)  # "give the Bose the edge"
        if winner is None:
            continue
        if not any(winner in g for g in groups) and winner in order[1:] and sig.TIE.search(text):
            # "they're basically tied. If pressed, I'd give the Bosch the edge": tied with the pick before it
            groups.append([order[order.index(winner) - 1], winner])
        for group in groups:
            tied = [p for p in group if p in order]
            if winner in tied and len(tied) >= 2:
                first = min(order.index(p) for p in tied)
                order = [p for p in order if p != winner]
                order.insert(first, winner)
                break
    return order


_DEPENDS = re.compile(r"\bdepends? (?:on|entirely on)\b|\bit depends\b|\bhängt (?:davon|von)\b|\bdépend de\b"
                      r"|\bdepende de\b|\bdipende da\b", re.I)
# the one reason _read gives for an answer it cannot rank that is not ambiguous: it picks nothing
_COMPARES_ONLY = "the response compares the products and picks none"
def _read(text: str, reader: Reader) -> tuple[list[int], str | None]:
    """The order, or an empty order and the reason the answer is ambiguous."""
    units = by_rank(labelled_only(_reverse_runs(advised_for(below_bar(cut(text), text), reader))))
    found = [(i, st) for i in range(len(units)) if (st := _statement(units, i, reader))[0]]
    statements = [st for _, st in found]
    base = _break_ties(_base(units, reader), text, reader)
    if not statements:
        ranked = any(u.rank is not None for u in units)
        if not ranked and len(base) >= 2 and sig.OTHER_ORDER.search(text):
            # "Sorted by price: | ... |  If I had to pick one: the X. Then the Y": the prose's choice ranks
            stated = stated_picks([u for u in units if u.kind == "para"], reader, sig.TABLE_VERDICT) \
                if sig.TABLE_VERDICT.search(text) else None
            if stated:
                return stated, None
            return [], "it orders the products by something other than preference and states no ranking"
        if not ranked and table_only(units, reader):
            # a table compares; the prose around it, when it chooses, says what is recommended
            stated = stated_picks([u for u in units if u.kind == "para"], reader, sig.TABLE_VERDICT) \
                if sig.TABLE_VERDICT.search(text) else None
            if stated:
                return stated, None
            if _DEPENDS.search(text) and not sig.GOOD_PICK.search(text):
                return [], _COMPARES_ONLY
        return not_advised_against(top_pick_first(units, base, reader), units, reader), None
    top = max(level for _, level in statements)
    orders = [order for order, level in statements if level == top]
    for a, b in pairwise(orders):
        if _conflict(a, b):
            return [], "it states two different rankings"
    chosen = max(orders, key=len)
    if top == 2 and _summarises(units, min(i for i, st in found if st[0] == chosen), chosen, base):
        return base, None
    if top >= 2:  # a ranking the answer states is the ranking: products only discussed are not in it
        if chosen == [-1]:
            return [], None
        # a short answer over unranked picks, then "Overall, I'd lean towards the X": X first
        if top == 3:  # and the picks a paragraph after the ranking adds ("if budget matters, pick the X")
            after = [p for p in more_options(units, reader) if p not in chosen and p not in reader.against]
            return _break_ties(list(dict.fromkeys(chosen + after)), text, reader), None
        # and the budget or other picks a short answer leaves out ("**Budget alternative:** the X") after it
        # or under an "### Also consider: the X" heading
        extra = [p for u in units if (u.kind == "pick" and _OTHER_PICK.match(u.title or u.head))
                 or (u.kind == "heading" and sig.MORE_OPTIONS.match(u.head))
                 for p in reader.subjects(u) if p not in chosen and p not in reader.against]
        return _break_ties(top_pick_first(units, chosen, reader) + list(dict.fromkeys(extra)), text, reader), None
    if table_only(units, reader) and chosen != [-1] and not any(u.rank is not None for u in units):
        # "**Verdict:** the X wins" under a table that only compares
        return _break_ties(chosen, text, reader), None
    return list(dict.fromkeys(chosen + [p for p in base if p not in reader.against])), None


def _summarises(units: list[Unit], at: int, chosen: list[int], base: list[int]) -> bool:
    """Whether a short answer at unit ``at`` ("Quick take: the A, or the B") closes a numbered
    list it agrees with and names only some of: then the list ranks, the short answer only
    highlights."""
    own = range(at, at + len(_run_after(units, at)) + 1)  # the short answer's own list
    numbered = [i for i, u in enumerate(units) if u.kind in ("item", "heading") and u.rank is not None and i not in own]
    return len(numbered) >= 2 and units[at].kind == "para" and set(chosen) < set(base) and not _conflict(chosen, base)


def _revised(text: str, reader: Reader) -> tuple[list[int], str | None] | None:
    """The reading of an answer that revises itself ("wait, let me reconsider"): what
    follows the last revision replaces (or, for one product or a swap, edits) what came before."""
    last = None
    for m in sig.REVISION.finditer(text):
        last = m
    if last is None:  # "Actually, I'd swap the top two" revises on its own; after another revision ("Correction:
        # drop the B. And I'd swap the top two: ...") that one is read as a whole
        last = sig.SWAP_REVISION.search(text) if "swap" in text else None
        if last is None:
            return None
        before, after = text[: last.start()], text[last.start():]
    else:
        before, after = text[: last.start()], text[last.end():]
    old, _ = _read(before, reader)
    if (swapped := sig.swap(old, after)) is not None:
        return swapped, None
    new, reason = _read(after, reader)
    if reason or not new:
        return None if not new and not reason else ([], reason)
    if len(new) == 1 and len(old) >= 2:
        return list(dict.fromkeys(new + old)), None
    return new, None


# a pick line's label for a pick beside the main ones: "Budget alternative:", "Also consider:", "Runner-up:"
_OTHER_PICK = re.compile(r"^\W*(?:budget|value|cheaper|also|runner|alternative|honou?rable|upgrade|splurge|premium)",
                         re.I)


def _loop(text: str, reader: Reader, n: int) -> Ranking:
    """A degenerate answer: one phrase repeated. One product named over and over is a
    (hijacked) recommendation of it."""
    named = {m.product for m in reader.find(text)}
    if len(named) == 1:
        return Ranking((named.pop(),), n)
    return Ranking((), n, "the response is degenerate (one phrase repeated)")


def _from_json(value: Any, reader: Reader, n: int) -> Ranking | None:
    reading = read_json(value)
    order: list[int] = []
    for name in reading.names:
        found = reader.find(name)
        if found and found[0].product not in order:
            order.append(found[0].product)
    against = {m.product for name in reading.against for m in reader.find(name)[:1]}
    order = [p for p in order if p not in against]
    if not order and not against and not reading.empty:
        return None
    if not order:
        return Ranking((), n, "the response recommends none of the products")
    return Ranking(tuple(order), n)


def _roles(order: Sequence[int], raw: str, own: str, reader: Reader, n: int) -> tuple[Role, ...]:
    roles: list[Role] = [""] * n
    for m in reader.find(raw):
        roles[m.product] = "quoted"
    for m in reader.find(own):
        roles[m.product] = "compared"
    for p in reader.against:
        roles[p] = "against"
    for p in order:
        roles[p] = "recommended"
    return tuple(roles)


# a rank label written onto its product, as small models write it: "#3audio technica"
_GLUED_RANK = re.compile(r"^([ \t]*#\d{1,2})(?=[^\W\d_])", re.M)
_THINKING = re.compile(r"<(think|thinking|reasoning)>.*?</\1>\s*", re.S | re.I)
_UNCLOSED_THINKING = re.compile(r"\s*<(?:think|thinking|reasoning)>", re.I)


def parse_ranking(response: str, products: Sequence[Any], context: Sequence[int] | None = None) -> Ranking:
    """Read the ranking an answer gives ``products`` (``Product`` objects or (brand, model)).

    ``context``, when given, is the order the engine showed the products' pages in (indices into
    ``products``, page [1] first): with it, a product the answer calls by its place ("source
    [3]", "the third result") is read as named; without it such an answer is ambiguous.
    Never raises for a bad answer: an unparseable or ambiguous one comes back with
    ``reason`` set (``status`` says which). Raises ``ValueError`` for a context that is not an
    order of the products.
    """
    names = _names(products)
    n = len(names)
    shown = check_context(context, n)
    if not response or not response.strip():
        return Ranking((), n, "the response is empty")
    raw = _GLUED_RANK.sub(r"\1 ", response.replace("\r\n", "\n").replace("\r", "\n"))
    # a reasoning model's thinking is not its answer; thinking cut off by the token limit leaves none
    raw = _THINKING.sub("", raw)
    if _UNCLOSED_THINKING.match(raw):
        return Ranking((), n, "the response holds only the model's reasoning, cut off before its answer")
    reader = Reader(matcher_for(names))
    if (found := find_json(raw)) is not None and (from_json := _from_json(found[0], reader, n)) is not None:
        return from_json
    if (value := find_yaml(raw)) is not None and (from_yaml := _from_json(value, reader, n)) is not None:
        return from_yaml
    if _degenerate(raw):
        return _loop(raw, reader, n)
    text = _strip_echoes(raw)
    if shown is not None:
        text = name_places(text, names, shown, reader)
    if declines(text, reader) or defers(text, reader):
        return Ranking((), n, "the response declines to recommend anything",
                       role_reader=lambda: _roles((), raw, text, reader, n))
    if compares_only(text, reader):
        return Ranking((), n, _COMPARES_ONLY, role_reader=lambda: _roles((), raw, text, reader, n))
    order, reason = _revised(text, reader) or _read(text, reader)
    if not reason and len(order) > 1 and (only := only_pick(text, reader)) is not None and only in order:
        order = [only]  # "I'd only recommend the Bose": the others are discussed, not recommended

    def roles() -> tuple[Role, ...]:
        return _roles(order, raw, text, reader, n)
    if reason:
        return Ranking((), n, reason, ambiguous=reason != _COMPARES_ONLY, role_reader=roles)
    if (unmapped := by_position(text, reader)) is not None:  # with no product named, too: it may name them so
        return Ranking((), n, unmapped, ambiguous=True, role_reader=roles)
    if not order:
        why = "the response recommends none of the products" if reader.against else \
            "the response names none of the products"
        return Ranking((), n, why, role_reader=roles)
    if (doubtful := negated_only(order, text, reader)) is not None:
        return Ranking((), n, f"it names product {doubtful + 1} only in prose with a negation: advice against it"
                       " or a caveat about a pick", ambiguous=True, role_reader=roles)
    if (passing := passing_only(order, text, reader)) is not None:
        return Ranking((), n, passing, ambiguous=True, role_reader=roles)
    return Ranking(tuple(order), n, role_reader=roles)


def extract_ranking(response: str, products: Sequence[Any], context: Sequence[int] | None = None) -> list[int]:
    """Indices of ``products`` in the order ``response`` recommends them, best first
    (``context``: as for :func:`parse_ranking`).

    Raises :class:`~poise.UnparseableResponse` when no ranking can be read, and its subclass
    :class:`~poise.AmbiguousResponse` when the answer can be read more than one way.
    """
    ranking = parse_ranking(response, products, context)
    if not ranking.parseable:
        raise ranking.error()
    return list(ranking.order)



