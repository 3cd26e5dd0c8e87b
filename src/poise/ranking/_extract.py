"""Read the order in which a free-text answer recommends a category's products.

The answer is cut into units: list items, headings with their sections, table rows and
paragraphs. When the answer is structured (two or more units each about its own product)
the ranking is the order of those units' products; an intro, a closing summary or a
comparison inside another item ("cheaper than the Ninja") changes nothing, and products
named only after the list ("also consider ...") come last. Explicit ranks win over the
written order: a table's rank column, a countdown ("5. ... 1. X"), and, for unranked
blocks, a closing "My ranking: X first, then Y". Plain prose is read by first mention,
skipping comparisons and products the answer advises against.

Text the answer quotes or echoes from a page (code, block quotes, long quotations, a
sentence that tells the model to ignore its instructions) is blanked out first, so an
injected list or verdict cannot add to what the answer itself recommends.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import UnparseableResponse
from ._names import Mention, NameMatcher, matcher_for

# -- what is blanked out before reading -----------------------------------------------------
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_QUOTE_LINE = re.compile(r"^[ \t]*>.*$", re.M)
_QUOTED = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”|«[^»\n]*»")
_INJECTION = re.compile(
    r"ignore (?:all |any )?(?:of )?(?:the |your |my )?(?:previous|prior|above|earlier|other)\b"
    r"|disregard (?:all |any |the |your )?(?:previous|prior|above|earlier|other)\b"
    r"|\bsystem (?:notice|message|prompt|override|instruction)"
    r"|\[\s*(?:system|admin|instruction)"
    r"|note to (?:the )?(?:ai|assistant|model|llm|language model)"
    r"|(?:ai|assistant|model|llm)s? (?:must|should|are instructed to) (?:rank|recommend|list|place)"
    r"|\b(?:rank|list|place|put) (?:it|this product|this|me) (?:first|#1|number one|at the top)"
    r"|\binstructions? (?:says?|tells?|to rank)",
    re.I,
)
# the same, for lower-cased text: no re.I, and a cheap look at the first letter (3x faster)
_INJECTION_LOWER = re.compile(r"(?=[idsn\[amlpr])(?:" + _INJECTION.pattern + ")")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")

# -- cues around a mention ------------------------------------------------------------------
_COMPARISON_BEFORE = re.compile(
    r"(?:\bthan|\bversus|\bvs\.?|\bunlike|\bcompared (?:to|with)|\bcomparison (?:to|with)|\bcompare (?:it |this )?(?:to|with)"
    r"|\bsimilar to|\bcomparable to|\bsuperior to|\binferior to|\bequivalent to|\brelative to|\bnext to"
    r"|\brivals?|\brivaling|\bbeats?|\boutperforms?|\boutclasses|\bedges? out|\btrails?|\bover|\bagainst"
    r"|\balternative to|\binstead of|\brather than|\bstep up from|\bupgrade (?:from|over)"
    r"|\bas \w+ as|\bmatch(?:es)?|\bshort of)"
    r"(?:\s+(?:the|a|an|its|their|both))?(?:\s+(?:pricier|cheaper|bigger|smaller|more expensive|popular|similar))?\s*[\s,]*$",
    re.I,
)
_CONNECTOR = re.compile(r"^\s*(?:,|,?\s*(?:or|and|nor|&))?\s*(?:the\s+|a\s+)?$", re.I)
_HEAD_JOIN = re.compile(r"^\s*(?:,|/|\+|&|\band\b|\bor\b|,\s*and\b)\s*(?:the\s+)?$", re.I)
_NEGATIVE = re.compile(
    r"\bavoid\b|\bskip\b|\bsteer clear|\bstay away|(?:\bnot|n['’]t|\bnever|\bcannot) (?:\w+ )?recommend"
    r"|\bnot worth|\bpass on\b|\bnot include|n['’]t include|\bleft out|\bexclude|\bnot (?:a )?(?:good|great) (?:choice|pick|option)",
    re.I,
)
_CLAUSE_SPLIT = re.compile(r"[;:,()]|\bbut\b|\bwhile\b|\bwhereas\b|\binstead\b|\band (?=(?:go|choose|pick|get|opt|buy))", re.I)
# "the Ninja page says ...": a mention of a product's page, not of the product
_PAGE_AFTER = re.compile(
    r"^\s*(?:'s|’s)?\s*(?:product\s+|own\s+)?(?:page|listing|document|website|site|description|marketing copy)\b", re.I
)

# -- line kinds -----------------------------------------------------------------------------
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*)$")
_BOLD_LINE = re.compile(r"^\s*(?:\*\*|__)(.+?)(?:\*\*|__)\s*:?\s*$")
_NUMBERED = re.compile(
    r"^(\s*)(?:\*\*|__)?\s*(?:(?:#\s*|rank\s*|no\.\s*)?\(?\d{1,2}(?:\s*[.):\]]|\s+[-–—])|#\d{1,2}(?=\s))(?!\d)\s*(.*)$",
    re.I
)
_BULLET = re.compile(r"^(\s*)(?:[-*•+●▪◦]\s+|[🥇🥈🥉🏅🏆]\s*)(.*)$")
_TABLE_ROW = re.compile(r"^\s*\|(.*)\|?\s*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}")
# a table column that holds the answer's own ranking ("Rank", "#", "My rank", "Position")
_RANK_COLUMN = re.compile(r"^(?:my |our |overall |final )?(?:rank(?:ing)?|#|no\.?|position|place)$", re.I)
_RANK_CELL = re.compile(r"^\W*#?\s*(\d{1,2})(?:st|nd|rd|th)?\b")
# a line that labels a pick: "Top pick: X", "Runner-up: X", "Also consider: X and Y"
_PICK_LABEL = re.compile(
    r"^\s*(?:\*\*|__)?\s*(?:(?:our|my|the)\s+)?(?:top pick|best overall|best (?:for )?[\w'’-]+(?:\s[\w'’-]+){0,4}"
    r"|(?:budget|premium|upgrade|value|overall|editor'?s) (?:pick|choice)|runner[- ]up|second (?:choice|place|pick)"
    r"|third (?:choice|place|pick)|also (?:consider|good|great|solid|recommended|worth (?:considering|a look))"
    r"|honou?rable mentions?"
    r"|(?:other |an? )?alternatives?|worth a look|close second)"
    r"\s*(?:(?:\*\*|__)\s*[:–—-]|[:–—-]\s*(?:\*\*|__)?)\s*(.+)$",
    re.I,
)
# the number an item or heading starts with: "5. X", "#5 X", "No. 5: X", "5) X"
_ITEM_NUMBER = re.compile(r"^\s*(?:\*\*|__)?\s*(?:#\s*|no\.\s*|number\s+|rank\s*)?\(?(\d{1,2})(?!\d)(?:\s*[.):\]]|\s+[-–—]|\s)", re.I)
# a closing line that states the ranking in words: "My ranking: X first, then Y"
_VERDICT = re.compile(
    r"^\W*(?:(?:my|our|the|final|overall|in)\s+)*(?:ranking|rankings|verdict|bottom line|conclusion|tl;?dr|order)"
    r"\s*(?:\*\*|__)?\s*[:–—-]",
    re.I,
)
_ORDINAL = re.compile(r"\b(?:first|second|third|fourth|then|followed by|1st|2nd|3rd|number one|runner[- ]up)\b|#1\b", re.I)
# an answer that declines to recommend anything ("I can't recommend or rank anything yet")
_DECLINE = re.compile(
    r"\b(?:can['’]?t|cannot|can not|unable to|won['’]t|not able to)\s+(?:yet\s+)?(?:recommend|rank)"
    r"(?:\s+(?:or|and)\s+(?:recommend|rank))?\s+(?:anything|any (?:of (?:them|these|those|the products)|products?|one)|yet)\b"
    r"(?!\s+(?:enough|highly|more|too))",
    re.I,
)
_HEAD_END = re.compile(r"\s[-–—]\s|:\s|\.\s|\s\(|\.$|:$|\s[-–—]$")
_DEGENERATE_MIN_WORDS = 30
_DEGENERATE_RATIO = 0.2


@dataclass
class _Unit:
    kind: str  # "item", "heading", "row", "para"
    head: str
    body: list[str] = field(default_factory=list)
    indent: int = 0
    rank: int | None = None  # a table row's value in the table's own rank column

    @property
    def text(self) -> str:
        return "\n".join([self.head, *self.body])


@dataclass(frozen=True)
class Ranking:
    """The products an answer recommends, best first, as indices into the product list."""

    order: tuple[int, ...]
    n: int
    reason: str | None = None  # why it is unparseable; None when a ranking was read

    @property
    def parseable(self) -> bool:
        return self.reason is None

    @property
    def scores(self) -> tuple[int, ...]:
        """Per product (catalog order): n - j + 1 when ranked j-th, 0 when not recommended."""
        if not self.parseable:
            raise UnparseableResponse(self.reason or "unparseable")
        scores = [0] * self.n
        for j, index in enumerate(self.order, start=1):
            scores[index] = self.n - j + 1
        return tuple(scores)

    def rank_of(self, index: int) -> int | None:
        """1-based rank of a product, None when not recommended."""
        try:
            return self.order.index(index) + 1
        except ValueError:
            return None


def _names(products: Sequence[Any]) -> tuple[tuple[str, str], ...]:
    out = []
    for p in products:
        if isinstance(p, tuple):
            out.append((str(p[0]), str(p[1])))
        else:
            out.append((str(p.brand), str(p.model)))
    return tuple(out)


def _blank(match: re.Match[str]) -> str:
    return re.sub(r"[^\n]", " ", match.group())


def _strip_echoes(text: str) -> str:
    """Blank out quoted or echoed text, keeping every other character where it was."""
    if "`" in text:
        text = _FENCE.sub(_blank, text)
        text = _INLINE_CODE.sub(_blank, text)
    if ">" in text:
        text = _QUOTE_LINE.sub(_blank, text)
    if '"' in text or "“" in text or "«" in text:
        text = _QUOTED.sub(lambda m: _blank(m) if len(m.group().split()) >= 6 else m.group(), text)
    lowered = text.lower()
    found = _INJECTION_LOWER.finditer(lowered) if len(lowered) == len(text) else _INJECTION.finditer(text)
    hits = [m.start() for m in found]
    if not hits:
        return text
    # blank each sentence that holds an instruction to the model
    chars = list(text)
    for m in _SENTENCE.finditer(text):
        if any(m.start() <= h < m.end() for h in hits):
            chars[m.start() : m.end()] = _blank(m)
    return "".join(chars)


_NEGATIVE_WORDS = ("avoid", "skip", "steer", "stay away", "recommend", "worth", "pass on", "include",
                   "left out", "exclude", "good", "great")


def _negative_cue(text: str) -> bool:
    """Whether ``text`` advises against something (a cheap word check before the regex)."""
    lowered = text.lower()
    return any(w in lowered for w in _NEGATIVE_WORDS) and bool(_NEGATIVE.search(text))


def _degenerate(text: str) -> bool:
    """One phrase repeated from the start. A clear answer that falls into a loop later
    (small models do) is still read: its opening says what it recommends."""
    words = text.lower().split()
    if len(words) < _DEGENERATE_MIN_WORDS:
        return False
    if len(set(words)) / len(words) >= _DEGENERATE_RATIO:
        return False
    opening = words[:_DEGENERATE_MIN_WORDS]
    return len(set(opening)) / len(opening) < 0.5


def _item_head(rest: str) -> str:
    """The title part of a list item: its bold part, or the text up to ':' / ' - ' / '. '."""
    stripped = rest.replace("**", "").replace("__", "").strip()
    m = _HEAD_END.search(stripped)
    return stripped[: m.start()] if m else stripped


def _units(text: str) -> list[_Unit]:
    units: list[_Unit] = []
    current: _Unit | None = None
    blank_before = True
    table_header_pending = False
    rank_col: int | None = None
    for line in text.split("\n"):
        if not line.strip():
            blank_before = True
            continue
        if (m := _TABLE_ROW.match(line)) and line.count("|") >= 2:
            if _TABLE_SEPARATOR.match(line):
                if units and units[-1].kind == "row" and table_header_pending:
                    header = units.pop().head.split("\n")  # the row above was the header
                    rank_col = next((i for i, h in enumerate(header) if _RANK_COLUMN.match(h.strip("*_ "))), None)
                table_header_pending = False
            else:
                cells = [c.strip() for c in m.group(1).split("|")]
                rank = None
                if rank_col is not None and rank_col < len(cells) and (r := _RANK_CELL.match(cells[rank_col])):
                    rank = int(r.group(1))
                    cells = cells[:rank_col] + cells[rank_col + 1 :]
                current = _Unit("row", "\n".join(cells), rank=rank)
                table_header_pending = not (units and units[-1].kind == "row")
                units.append(current)
            blank_before = False
            continue
        table_header_pending = False
        rank_col = None
        if m := _HEADING.match(line):
            current = _Unit("heading", m.group(1).strip("*_ "))
            if n := _ITEM_NUMBER.match(current.head):
                current.rank = int(n.group(1))
            units.append(current)
        elif (m := _NUMBERED.match(line)) and not re.match(r"^\s*\d{1,2}\.\d", line):
            indent = len(m.group(1))
            if current is not None and current.kind in ("item", "heading") and indent > current.indent + 1 \
                    and current.kind == "item":
                current.body.append(line)
            else:
                n = _ITEM_NUMBER.match(line)
                current = _Unit("item", _item_head(m.group(2)), [m.group(2)], indent,
                                rank=int(n.group(1)) if n else None)
                units.append(current)
        elif m := _BULLET.match(line):
            indent = len(m.group(1))
            head = _item_head(m.group(2))
            nested = current is not None and current.kind in ("item", "heading") and (
                indent > current.indent or current.kind == "heading"
            )
            if current is not None and current.kind == "item" and indent > current.indent:
                current.body.append(line)
            elif nested and current is not None and current.kind == "heading" and not blank_before \
                    and False:
                current.body.append(line)
            else:
                current = _Unit("item", head, [m.group(2)], indent)
                current.kind = "bullet"
                units.append(current)
        elif m := _PICK_LABEL.match(line):
            current = _Unit("pick", m.group(1))
            units.append(current)
        elif _BOLD_LINE.match(line) and len(line.split()) <= 14:
            current = _Unit("heading", _BOLD_LINE.match(line).group(1).strip())
            units.append(current)
        else:
            stripped = line.strip()
            if current is not None and (
                (current.kind in ("item", "bullet") and (not blank_before or line.startswith((" ", "\t"))))
                or current.kind == "heading"
                or (current.kind == "para" and not blank_before)
            ):
                current.body.append(stripped)
            else:
                current = _Unit("para", "", [stripped])
                units.append(current)
        blank_before = False
    return _countdowns(_by_rank_column(units))


def _by_rank_column(units: list[_Unit]) -> list[_Unit]:
    """Rows of a table with a rank column, in the order of that column."""
    out: list[_Unit] = []
    table: list[_Unit] = []
    for unit in [*units, None]:
        if unit is not None and unit.kind == "row" and unit.rank is not None:
            table.append(unit)
            continue
        out.extend(sorted(table, key=lambda u: u.rank or 0))
        table = []
        if unit is not None:
            out.append(unit)
    return out


def _countdowns(units: list[_Unit]) -> list[_Unit]:
    """A numbered list (or run of numbered headings) counting down to 1 ("5. ... 1. X"),
    best first: its numbers are the ranks. Paragraphs between the entries stay after them."""
    out: list[_Unit] = []
    i = 0
    while i < len(units):
        unit = units[i]
        if unit.kind not in ("item", "heading") or unit.rank is None:
            out.append(unit)
            i += 1
            continue
        run, j, last = [unit], i + 1, i
        while j < len(units):
            nxt = units[j]
            if nxt.kind == unit.kind and nxt.rank is not None and nxt.indent == unit.indent:
                run.append(nxt)
                last = j
            elif not (nxt.kind == "para" and unit.kind == "item"):
                break
            j += 1
        ranks = [u.rank for u in run]
        if len(run) >= 2 and ranks[-1] == 1 and all(a > b for a, b in zip(ranks, ranks[1:])):
            out.extend(sorted(run, key=lambda u: u.rank or 0))
            # paragraphs inside the run; those after its last entry are not part of it
            out.extend(u for u in units[i : last + 1] if u.kind == "para")
        else:  # any other list keeps every unit where it was
            out.extend(units[i : last + 1])
        i = last + 1
    return out


class _Reader:
    """Reads one response; remembers the mentions of each piece of text it has searched."""

    def __init__(self, matcher: NameMatcher) -> None:
        self._matcher = matcher
        self._found: dict[str, list[Mention]] = {}

    def find(self, text: str) -> list[Mention]:
        found = self._found.get(text)
        if found is None:
            found = self._found[text] = self._matcher.find(text)
        return found

    def mentions(self, text: str, *, skip_negative: bool) -> list[int]:
        """Products named in ``text`` in order, without comparison (or negative) mentions."""
        found = self.find(text)
        out: list[int] = []
        prev_comparative: Mention | None = None
        for m in found:
            sentence_start = max(text.rfind(c, 0, m.start) for c in ".!?\n")
            before = text[sentence_start + 1 : m.start]
            comparative = bool(_COMPARISON_BEFORE.search(before[-60:]))
            if not comparative and prev_comparative is not None and prev_comparative.end > sentence_start:
                comparative = bool(_CONNECTOR.match(text[prev_comparative.end : m.start]))
            prev_comparative = m if comparative else None
            if comparative or _PAGE_AFTER.match(text[m.end : m.end + 40]):
                continue
            if skip_negative and self._negative(text, m):
                continue
            out.append(m.product)
        return out

    def _negative(self, text: str, m: Mention) -> bool:
        """Whether the answer advises against this mention's product ("avoid the X")."""
        start = max(text.rfind(c, 0, m.start) for c in ".!?\n") + 1
        ends = [i for i in (text.find(c, m.end) for c in ".!?\n") if i != -1]
        sentence = text[start : min(ends) if ends else len(text)]
        if not _negative_cue(sentence):
            return False
        begin, end = m.start - start, m.end - start
        cuts = [b for c in _CLAUSE_SPLIT.finditer(sentence) for b in (c.start(), c.end())]
        lo = max([0] + [b for b in cuts if b <= begin])
        hi = min([len(sentence)] + [b for b in cuts if b >= end])
        if _NEGATIVE.search(sentence[lo:hi]):
            return True
        # "The Quip looks nice, but I wouldn't recommend it": the only product of the sentence
        return len({x.product for x in self.find(sentence)}) == 1

    def subjects(self, unit: _Unit) -> list[int]:
        """The products a unit is about: those in its head, else the first in its body."""
        if unit.kind == "pick":  # "Also consider: the X and the Y"
            return self.first_sentence_products(_Unit("para", "", [unit.head]))
        head = self.head_products(unit.head)
        if head:
            return head
        if unit.kind in ("item", "bullet"):
            body = self.mentions(unit.text, skip_negative=False)
            return body[:1]
        return []

    def head_products(self, head: str) -> list[int]:
        """The first product a head names, and those joined to it by "and", "," or "/"."""
        found = [m for m in self.find(head)
                 if not _COMPARISON_BEFORE.search(head[max(0, m.start - 60): m.start])]
        if not found:
            return []
        out = [found[0].product]
        for prev, m in zip(found, found[1:]):
            if not _HEAD_JOIN.match(head[prev.end : m.start]):
                break
            if m.product not in out:
                out.append(m.product)
        return out

    def first_sentence_products(self, unit: _Unit) -> list[int]:
        text = " ".join(unit.body).strip()
        m = _SENTENCE.search(text)
        first = m.group() if m else text
        return list(dict.fromkeys(self.mentions(first, skip_negative=True)))


def _advised_for(units: list[_Unit], reader: _Reader) -> list[_Unit]:
    """Without the items under a line that advises against them ("What I'd avoid:",
    "Not recommended:"), up to the next heading or paragraph."""
    out: list[_Unit] = []
    against = False
    for unit in units:
        if unit.kind in ("para", "heading"):
            # a short line, naming no product, that advises against what follows
            against = (unit.kind == "heading" or len(unit.body) <= 1) and len(unit.text) <= 120 \
                and _negative_cue(unit.text) and not reader.find(unit.text)
        elif against and unit.kind in ("item", "bullet", "row"):
            continue
        out.append(unit)
    return out


def _verdict(units: list[_Unit], reader: _Reader) -> list[int]:
    """The order a closing "My ranking: / Verdict: / Bottom line:" paragraph states with
    ordinal words ("X first, then Y"), when it names two products or more."""
    for unit in reversed(units):
        if unit.kind == "para" and _VERDICT.match(unit.text) and _ORDINAL.search(unit.text):
            order = list(dict.fromkeys(reader.mentions(unit.text, skip_negative=True)))
            return order if len(order) >= 2 else []
    return []


def _declines(text: str, reader: _Reader) -> bool:
    """Whether the answer says it will not recommend anything, in a sentence naming no product."""
    if not _DECLINE.search(text):
        return False
    return any(_DECLINE.search(s.group()) and not reader.find(s.group()) for s in _SENTENCE.finditer(text))


def _read(text: str, reader: _Reader) -> list[int]:
    """Structured answers by their units; otherwise plain prose by first mention."""
    units = _advised_for(_units(text), reader)
    listed = [ps for u in units if u.kind != "para" and (ps := reader.subjects(u))]
    if len(listed) >= 2 and len({p for ps in listed for p in ps}) >= 2:
        structured = list(dict.fromkeys(p for ps in listed for p in ps))
        if any(u.kind == "item" and u.rank is not None for u in units):
            return structured  # numbered: the numbers are the ranking
        # unranked blocks (pros and cons, a comparison table, aspects) closed by a ranking
        return list(dict.fromkeys(_verdict(units, reader) + structured))
    if verdict := _verdict(units, reader):
        return list(dict.fromkeys(verdict + reader.mentions(text, skip_negative=True)))
    # one paragraph per product: a paragraph whose first sentence names one product
    paragraphs = [ps for u in units if u.kind == "para" and len(ps := reader.first_sentence_products(u)) == 1]
    if len(paragraphs) >= 2 and len({ps[0] for ps in paragraphs}) >= 2:
        return list(dict.fromkeys(ps[0] for ps in paragraphs))
    return list(dict.fromkeys(reader.mentions(text, skip_negative=True)))


def parse_ranking(response: str, products: Sequence[Any]) -> Ranking:
    """Read the ranking an answer gives ``products`` (``Product`` objects or (brand, model)).

    Never raises for a bad answer: an unparseable one comes back with ``reason`` set.
    """
    names = _names(products)
    n = len(names)
    if not response or not response.strip():
        return Ranking((), n, "the response is empty")
    if _degenerate(response):
        return Ranking((), n, "the response is degenerate (one phrase repeated)")
    text = _strip_echoes(response.replace("\r\n", "\n").replace("\r", "\n"))
    reader = _Reader(matcher_for(names))
    if _declines(text, reader):
        return Ranking((), n, "the response declines to recommend anything")
    order = _read(text, reader)
    if not order:
        return Ranking((), n, "the response names none of the products")
    return Ranking(tuple(order), n)


def extract_ranking(response: str, products: Sequence[Any]) -> list[int]:
    """Indices of ``products`` in the order ``response`` recommends them, best first.

    Raises :class:`~poise.UnparseableResponse` when no ranking can be read.
    """
    ranking = parse_ranking(response, products)
    if not ranking.parseable:
        raise UnparseableResponse(ranking.reason or "unparseable")
    return list(ranking.order)


def scores_from_order(order: Sequence[int], n: int) -> list[int]:
    """The paper's score per product: n - j + 1 for the j-th listed, 0 for unlisted."""
    return list(Ranking(tuple(order), n).scores)
