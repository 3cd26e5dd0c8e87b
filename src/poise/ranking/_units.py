"""Cut an answer into units: list items, headings with their sections, table rows, pick
lines ("Top pick: X") and paragraphs; and put units with explicit ranks in rank order."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._cues import _negative_cue
from ._signals import AGAINST_TITLE, SPONSORED, STATEMENTS

# the kinds of unit that lay out one product each
LIST_KINDS = ("item", "bullet", "row", "pick")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*)$")
_BOLD_LINE = re.compile(r"^\s*(?:\*\*|__)(.+?)(?:\*\*|__)\s*:?\s*$")
_NUMBERED = re.compile(
    r"^(\s*)(?:\*\*|__)?\s*(?:(?:#\s*|rank\s*|no\.\s*|(?:platz|place|rang|puesto|posici[oó]n|posizione|plaats)\s+)?"
    r"\(?\d{1,2}(?:\s*[.):\]]|\s+[-–—])|#\d{1,2}(?=\s)"
    r"|=\d{1,2}\.?(?=\s)|\d{1,2}[ºª](?=\s))"
    r"(?!\d)\s*(.*)$",
    re.I,
)
_BULLET = re.compile(r"^(\s*)(?:[-*•+●▪◦]\s+|[→➤✅✔🥇🥈🥉🏅🏆❌⛔🚫]\ufe0f?\s*)(.*)$")
_TABLE_ROW = re.compile(r"^\s*\|(.*)\|?\s*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}")
# a table column that holds the answer's own ranking ("Rank", "#", "My rank", "Position")
_RANK_COLUMN = re.compile(r"^(?:my |our |overall |final )?(?:rank(?:ing)?|#|no\.?|position|place|platz|rang|puesto"
                          r"|plaats|posizione|posição|lugar|classement)$",
                          re.I)
# a column of the answer's scores: "Score", "Score /10", "Rating", "Stars", "Note" (fr), "Bewertung"
_SCORE_COLUMN = re.compile(r"^(?:my |our |overall |total )?(?:score|rating|stars?|note|bewertung|punkte|puntuaci[oó]n"
                           r"|voto|valutazione)\s*(?:\(?\s*(?:/|out of )\s*\d+\s*\)?)?$", re.I)
_SCORE_NUMBER = re.compile(r"^\W*(\d{1,3}(?:[.,]\d+)?)\s*(?:/\s*(\d{1,3}))?(?!\S*[a-z])", re.I)
_RANK_CELL = re.compile(r"^\W*#?\s*(\d{1,2})(?:st|nd|rd|th|\.)?(?:\W|$)")
# a line that labels a pick: "Top pick: X", "Runner-up: X", "Budget: A or B", "Also fine: A, B."
_PICK_LABEL = re.compile(
    r"^\s*(?:[-*•]\s+)?(?:[^\w\s*_#|>()\[\]]{1,3}\s*)?(?:\*\*|__)?\s*(?:(?:our|my|the)\s+)?(?:top pick|best overall"
    r"|best[ -](?:for )?[\w'’/&+-]+(?:\s[\w$€£'’/&+-]+){0,4}"
    r"|most (?:compact|portable|affordable|versatile|powerful|comfortable|durable|stylish)"
    r"|(?:lightest|quietest|cheapest|smallest|fastest|toughest)(?: pick| option| choice)?"
    r"|(?:budget|premium|upgrade|value|overall|editor'?s|splurge|bang[- ]for[- ](?:the[- ])?buck)[ -](?:pick|choice"
    r"|tipp?|empfehlung|alternative|option)"
    r"|budget|premium|splurge|value|runner[- ]up|second (?:choice|place|pick)"
    r"|third (?:choice|place|pick)|also (?:consider|good|great|solid|fine|recommended|worth (?:considering|a look))"
    r"|honou?rable mentions?|(?:other |an? )?alternatives?|worth a look|close second|my pick|winner"
    r"|#\s*1 pick|number[- ]one pick|(?<=our )pick|(?<=my )pick|recommended|top (?:recommendation|choice))"
    r"(?:\s*\([^()\n]{1,40}\))?"  # "Upgrade pick (slightly over budget):"
    r"\s*(?:(?:\*\*|__)\s*[:–—-]|[:–—-]\s*(?:\*\*|__)?)\s*(.*\w.*)$",  # "**Recommended:**" alone titles a list
    re.I,
)
# any short bold label with a colon before what it labels: "**Empate en el primer puesto:** X"
_BOLD_LABEL = re.compile(r"^\s*(?:\*\*|__)([^*_\n]{2,50}?)\s*:\s*(?:\*\*|__)\s+(.+)$"
                         r"|^\s*(?:\*\*|__)([^*_\n]{2,50}?)(?:\*\*|__)\s*:\s+(.+)$")
# a bold label over a caveat, not a pick: "**Keep in mind:**", "**Note:**", "**Heads-up:**"
_NOTE_LABEL = re.compile(r"^\W*(?:(?:models?|products?|options?) (?:considered|reviewed|compared|tested)|considered"
                         r"|candidates"
                         r"|shortlist(?:ed)?|what i (?:looked at|compared)|keep in mind|bear in mind|n\.b\."
                         # "Important note", "A note on your list", "A note on Charlotte Tilbury Pillow Talk"
                         r"|(?:(?:an?|one|quick|important|final|side|small) )*notes?"
                         r"|one thing to (?:flag|note)|worth noting|à noter|zu beachten|da notare|a tener en cuenta"
                         r"|sources? (?:caution|warning|notes?)"
                         r"|tip|tips|caveat|heads[- ]up|important|warning"
                         r"|be aware|a word of caution|caution|disclaimer|beware|fyi|psa|hinweis|achtung|remarque"
                         r"|attention|nota|ojo|let op|opmerking|accessor(?:y|ies)|add-ons?|extras?|zubehör|accessoires"
                         r"|accesorios)"
                         # "Heads-up on sources", "A note before the recommendations"
                         r"(?: (?:on|about|before|regarding|for) [^:*_\n]{1,60})?\W*$", re.I)
_NOT_LISTED = re.compile(r"^\W*not\b|\bnot (?:a fit|in the (?:list|ranking)|for you|ranked|tiered|rated)\b|\bexclu"
                         r"|\bleft out\b"
                         r"|\bthe (?:rest|others)\b|\bwhy not\b|\bnicht\b|\bpas\b|\bno (?:recomendad|incluid)", re.I)
# the number an item or heading starts with: "5. X", "#5 X", "No. 5: X", "5) X", "=2. X", "Platz 3: X"
_ITEM_NUMBER = re.compile(r"^\s*(?:\*\*|__)?\s*(?:#\s*|no\.\s*|number\s+|rank\s*|="
                          r"|(?:platz|place|rang|puesto|posici[oó]n|posizione|plaats)\s+)?\(?(\d{1,2})(?!\d)(?:\s*[.):\]]"
                          r"|\s+[-–—]|\s)",
                          re.I)
# a rank label anywhere in a head: "[#2]", "(#1)", "— rank 3", "Rank: 2", "Winix Zero Pro — #2 overall"
_RANK_LABEL = re.compile(r"[\[(]\s*#\s*(\d{1,2})\s*[\])]|\brank(?:ed)?\s*:?\s*#?\s*(\d{1,2})\b"
                         r"|#\s*(\d{1,2})\s+(?:overall|pick|choice|spot|place)\b", re.I)
_HEAD_END = re.compile(r"\s[-–—]\s|:\s|\.\s|\s\(|\.$|:$|\s[-–—]$")
_TIE_NUMBER = re.compile(r"^\s*(?:\*\*|__)?\s*=\s*\d|\bjoint\b|\btied?\b", re.I)
# a table cell or row marker saying the product is not recommended
_AGAINST_CELL = re.compile(
    r"^\W*(?:(?:tier\s+)?[a-f][+-]?\s*(?:tier\s*)?[—–:-]\s*)?"  # a tier's letter: "F — avoid"
    r"(?:skip|avoid|not recommended|not suitable|unsuitable|pass on|nicht empfohlen|ungeeignet|à éviter"
    r"|no recomendado|evitar|not (?:evaluated|rated|ranked|reviewed|assessed|scored)|excluded|unranked)\b", re.I)
# a column that gives the answer's verdict on each row: a ❌ or "no" there is advice against
_VERDICT_COLUMN = re.compile(r"verdict|recommend|buy|worth|suitab|fit for|good for|pick|urteil|empfehl|avis|veredicto"
                             r"|\btake\b", re.I)
# a column that names each row's use: "Best for", "Ideal for" (its rows are use-case picks, not a comparison)
_USE_COLUMN = re.compile(r"^\W*(?:best|ideal|great|perfect) for\W*$|^\W*(?:use case|who it['’]?s for|best use)\W*$",
                         re.I)
# a verdict cell's tier: the picks first, then the runners-up, then the budget picks
_TIERS = [re.compile(r"^\W*(?:buy|top pick|best overall|best pick|our pick|winner)\b", re.I),
          re.compile(r"^\W*(?:runner[- ]up|consider|close second|second (?:pick|choice))\b", re.I),
          re.compile(r"^\W*(?:budget|value)\b[^|\n]{0,20}\bpick\b", re.I)]


def _tier(cell: str) -> int | None:
    return next((k for k, rx in enumerate(_TIERS, start=1) if rx.match(cell.replace("**", ""))), None)
_NO_CELL = re.compile(r"^\W*(?:❌|⛔|🚫|✗|✘|no|nope|nein|non|maybe|vielleicht|peut-être|quizás)\b"
                      r"|^\W*[❌⛔🚫✗✘⚠]", re.I)


@dataclass
class Unit:
    kind: str  # "item", "bullet", "heading", "row", "pick", "para"
    head: str
    body: list[str] = field(default_factory=list)
    indent: int = 0
    rank: int | None = None  # the unit's explicit rank: its number, a rank label or a rank cell
    against: bool = False  # a table row or item marked "skip" / "avoid" / ❌
    tie: bool = False  # "=2.", "Joint #1"
    label: bool = False  # the rank comes from a label ("[#2]", "rank 3"), not a list number
    named: bool = False  # an item whose title is a name: its subject is what the title names
    title: str = ""  # a pick line's bold label ("**Bose QC Ultra**: the one I'd buy" names its pick)
    reordered: bool = False  # put in the order of its explicit rank (a countdown "5. ... 1.")
    score: float | None = None  # a table row's score cell ("8.7", "9/10", "★★★★½"), when the table has a score column

    @property
    def text(self) -> str:
        return "\n".join([self.head, *self.body])


def item_head(rest: str) -> str:
    """The title part of a list item: its bold part, or the text up to ':' / ' - ' / '. '."""
    stripped = rest.replace("**", "").replace("__", "").strip()
    m = _HEAD_END.search(stripped)
    return stripped[: m.start()] if m else stripped


def names_its_subject(rest: str) -> bool:
    """Whether a list item's title is a name ("**Dyson Airstrait** - ...") rather than a
    label ("Cleaning: the Oral-B ...", "Best for ice: ...") or a sentence: a named item is
    about what its title names, even a product outside the list, never about its body."""
    stripped = rest.replace("**", "").replace("__", "").strip()
    m = _HEAD_END.search(stripped)
    if m is None or m.group().strip() in (":", ".") or "(" in m.group():
        return False
    head = stripped[: m.start()]
    words = head.split()
    return 1 <= len(words) <= 6 and sum(w[:1].isupper() or any(c.isdigit() for c in w) for w in words) >= 2


def _label_rank(text: str) -> int | None:
    m = _RANK_LABEL.search(text)
    return int(next(g for g in m.groups() if g)) if m else None


class _Cutter:
    """Cuts lines into units, one line at a time."""

    def __init__(self) -> None:
        self.units: list[Unit] = []
        self.current: Unit | None = None
        self.blank_before = True
        self.header_pending = False
        self.rank_col: int | None = None
        self.score_col: int | None = None
        self.verdict_cols: list[int] = []
        self.use_cols: list[int] = []

    def add(self, line: str) -> None:
        if not line.strip():
            self.blank_before = True
            return
        if (m := _TABLE_ROW.match(line)) and line.count("|") >= 2:
            self._row(line, m.group(1))
        else:
            self.header_pending = False
            self.rank_col = None
            self.score_col = None
            self.verdict_cols = []
            self.use_cols = []
            self._line(line)
        self.blank_before = False

    def _row(self, line: str, inner: str) -> None:
        if _TABLE_SEPARATOR.match(line):
            if self.units and self.units[-1].kind == "row" and self.header_pending:
                header = self.units.pop().head.split("\n")  # the row above was the header
                self.rank_col = next((i for i, h in enumerate(header) if _RANK_COLUMN.match(h.strip("*_ "))), None)
                self.score_col = next((i for i, h in enumerate(header) if i and _SCORE_COLUMN.match(h.strip("*_ "))),
                                      None)
                self.verdict_cols = [i for i, h in enumerate(header) if i and _VERDICT_COLUMN.search(h)]
                self.use_cols = [i for i, h in enumerate(header) if i and _USE_COLUMN.match(h.strip("*_ "))]
            self.header_pending = False
            return
        cells = [c.strip() for c in inner.split("|")]
        # a use cell says what the row is best for: the row is a pick ("Most pools" under "Best for")
        cells = [f"Best for {c}" if i in self.use_cols and c.strip("*_ -–—") else c for i, c in enumerate(cells)]
        rank = None
        if self.rank_col is not None and self.rank_col < len(cells) and (r := _RANK_CELL.match(cells[self.rank_col])):
            rank = int(r.group(1))
            cells = cells[: self.rank_col] + cells[self.rank_col + 1 :]
        elif self.verdict_cols:  # "✅ Recommended (#3)" in the verdict column, or its tier: "Buy" before "Consider"
            rank = next((n for i in self.verdict_cols
                         if i < len(cells) and (n := _label_rank(cells[i]) or _tier(cells[i]))), None)
        # a row left without a rank in a table that ranks ("—", "not ranked") is not in the ranking
        against = (self.rank_col is not None and rank is None) \
            or any(_AGAINST_CELL.match(c.replace("**", "")) and len(c) <= 60 for c in cells) \
            or any(i < len(cells) and _NO_CELL.match(cells[i]) for i in self.verdict_cols) \
            or bool(cells and re.match(r"^\W*(?:❌|⛔|🚫)", cells[0]))
        score = _score(cells[self.score_col]) if self.score_col is not None and self.score_col < len(cells) \
            and self.rank_col is None else None
        self.current = Unit("row", "\n".join(cells), rank=rank, against=against, score=score)
        self.header_pending = not (self.units and self.units[-1].kind == "row")
        self.units.append(self.current)

    def _line(self, line: str) -> None:
        current = self.current
        if m := _HEADING.match(line):
            unit = Unit("heading", m.group(1).strip("*_ "))
            n = _ITEM_NUMBER.match(unit.head)
            unit.rank = int(n.group(1)) if n else _label_rank(unit.head)
            unit.label = n is None and unit.rank is not None
            unit.tie = bool(_TIE_NUMBER.search(unit.head))
            self._push(unit)
        elif (m := _NUMBERED.match(line)) and not re.match(r"^\s*\d{1,2}\.\d", line):
            indent = len(m.group(1))
            if current is not None and current.kind == "item" and indent > current.indent + 1:
                current.body.append(line)
                return
            n = _ITEM_NUMBER.match(line)
            rank = int(n.group(1)) if n else _label_rank(m.group(2))
            self._push(Unit("item", item_head(m.group(2)), [m.group(2)], indent, rank=rank,
                            tie=bool(_TIE_NUMBER.search(line[:40])), named=names_its_subject(m.group(2))))
        elif m := _BULLET.match(line):
            indent = len(m.group(1))
            if current is not None and current.kind in ("item", "bullet") and indent > current.indent:
                current.body.append(line)
                return
            against = bool(re.match(r"^\s*(?:[-*•+]\s+)?[❌⛔🚫✗✘]", line))
            rank = _label_rank(m.group(2)[:80])
            self._push(Unit("bullet", item_head(m.group(2)), [m.group(2)], indent, rank=rank,
                            against=against, label=rank is not None, named=names_its_subject(m.group(2))))
        elif m := _PICK_LABEL.match(line):
            self._push(Unit("pick", m.group(1), title=line[: m.start(1)].strip(" *_:–—-•")))
        elif (m := _BOLD_LABEL.match(line)) and not any(rx.match(m.group(1) or m.group(3)) for _, rx in STATEMENTS) \
                and not _NOTE_LABEL.match(m.group(1) or m.group(3)):  # "**Keep in mind:** ..." is prose
            label = m.group(1) or m.group(3)  # "**Tied for first:** the A and the B", "**Not a fit:** the C"
            against = bool(AGAINST_TITLE.match(label) or SPONSORED.match(label) or _negative_cue(label)
                           or _NOT_LISTED.search(label))
            self._push(Unit("pick", m.group(2) or m.group(4), against=against, title=label))
        elif (b := _BOLD_LINE.match(line)) and len(line.split()) <= 14:
            head = b.group(1).strip()
            rank = _label_rank(head)
            self._push(Unit("heading", head, rank=rank, tie=bool(_TIE_NUMBER.search(head)), label=rank is not None))
        else:
            self._text(line)

    def _text(self, line: str) -> None:
        current = self.current
        stripped = line.strip()
        if current is not None and current.kind == "heading" and self.blank_before and _states_ranking(stripped):
            current = None  # "**Overall ranking:** ..." after a section is the answer's own statement
        if current is not None and (
            (current.kind in ("item", "bullet") and (not self.blank_before or line.startswith((" ", "\t"))))
            or current.kind == "heading"
            or (current.kind == "para" and not self.blank_before)
        ):
            current.body.append(stripped)
        else:
            self._push(Unit("para", "", [stripped]))

    def _push(self, unit: Unit) -> None:
        self.current = unit
        self.units.append(unit)


_BLANKED = 12  # more leading spaces than any list nesting: a sentence before them was blanked


def _states_ranking(line: str) -> bool:
    plain = line.replace("**", "").replace("__", "")
    return any(rx.match(plain) for _, rx in STATEMENTS)


def _score(cell: str) -> float | None:
    """A score cell's value: stars (★ 1, ½ a half) or a number, out of its scale when given."""
    cell = cell.replace("**", "").strip()
    if "★" in cell:
        return cell.count("★") + 0.5 * cell.count("½")
    m = _SCORE_NUMBER.match(cell)
    if m is None:
        return None
    value = float(m.group(1).replace(",", "."))
    return value / float(m.group(2)) if m.group(2) and float(m.group(2)) > 0 else value


def _scores_rank(units: list[Unit]) -> None:
    """A table that scores its rows (and has no rank column): the scores rank the rows, highest
    first, within the tiers of its verdict column if any (equal scores keep written order);
    rows without a score come after."""
    i = 0
    while i < len(units):
        j = i
        while j < len(units) and units[j].kind == "row":
            j += 1
        table = units[i:j]
        scored = [u for u in table if u.score is not None]
        if len(scored) >= 2:  # within a verdict column's tiers ("Buy", "Consider"), when it has them
            ordered = sorted(table, key=lambda u: (u.rank or len(table) + 1, u.score is None, -(u.score or 0.0)))
            for k, u in enumerate(ordered, start=1):
                u.rank = k
        i = max(j, i + 1)


def cut(text: str) -> list[Unit]:
    """The answer's units in reading order, ranked runs put in the order of their ranks."""
    cutter = _Cutter()
    for line in text.split("\n"):
        if len(line) - len(line.lstrip(" ")) > _BLANKED:  # what follows a blanked (quoted) sentence starts the line
            line = line.lstrip(" ")
        cutter.add(line)
    _scores_rank(cutter.units)
    return by_rank(cutter.units)


def labelled_only(units: list[Unit]) -> list[Unit]:
    """Sections that carry rank labels ("[#2]") when two or more of their run do: a section
    of the run without one is not ranked ("Not ranked")."""
    out: list[Unit] = []
    i = 0
    while i < len(units):
        j = i
        while j < len(units) and units[j].kind == units[i].kind and units[i].kind in ("heading", "bullet"):
            j += 1
        run = units[i:max(j, i + 1)]
        labelled = [u for u in run if u.rank is not None and u.label]
        out.extend(labelled if len(labelled) >= 2 else run)
        i = max(j, i + 1)
    return out


def by_rank(units: list[Unit]) -> list[Unit]:
    """A run of units with explicit ranks (a countdown "5. ... 1. X", "[#n]" labels on sections
    sorted by price, a table's rank column) in the order of those ranks, best first, when the
    ranks are distinct and not already ascending. Paragraphs between a run's entries stay after
    them; any other list keeps every unit where it was."""
    out: list[Unit] = []
    i = 0
    while i < len(units):
        unit = units[i]
        if unit.rank is None or unit.kind not in ("item", "heading", "row", "bullet"):
            out.append(unit)
            i += 1
            continue
        run, j, last = [unit], i + 1, i
        while j < len(units):
            nxt = units[j]
            if nxt.kind == unit.kind and nxt.rank is not None and nxt.indent == unit.indent:
                ranks = [u.rank for u in run]
                if unit.kind != "row" and nxt.rank == 1 and (ranks[-1] == 1 or ranks == list(range(1, len(run) + 1))):
                    break  # the numbering starts again: another list (sources, notes)
                run.append(nxt)
                last = j
            elif not (nxt.rank is None and nxt.kind in ("para", "pick") and unit.kind in ("item", "heading")):
                break
            j += 1
        known = [u.rank for u in run if u.rank is not None]  # every unit of a run has a rank
        distinct = unit.kind == "row" or len(set(known)) == len(known)  # a table's rank column may tie
        if len(run) >= 2 and distinct and known != sorted(known) and min(known) == 1:
            for u in run:
                u.reordered = True
            out.extend(sorted(run, key=lambda u: u.rank or 0))
            out.extend(u for u in units[i : last + 1] if u.kind in ("para", "pick") and u.rank is None)
        else:
            out.extend(units[i : last + 1])
        i = last + 1
    return out
