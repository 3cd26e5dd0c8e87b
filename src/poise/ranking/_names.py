"""Find the catalog's products where a free-text answer names them.

Each product gets a set of *keys*: token sequences that name it alone within its category
(brand + model, the model, the brand, a run of the model's own words, a model number).
A key shared by two products of the category is dropped, so a name never means two
products. Matching is on case- and accent-folded tokens; a misspelled token of five or
more letters is mapped to the nearest name token (rapidfuzz) when it is close enough and is
not itself an English word ("start" is not a typo of "Tarte").
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import pairwise

from rapidfuzz import fuzz, process

_TOKEN = re.compile(r"[^\W_]+(?:[.,'’][^\W_]+)*", re.UNICODE)
_FUZZY_MIN_LEN = 5
_FUZZY_CUTOFF = 80.0


def _word_list(name: str) -> frozenset[str]:
    text = (resources.files("poise.ranking") / name).read_text(encoding="utf-8")
    return frozenset(w for line in text.splitlines() if not line.startswith("#") for w in line.split())


GENERIC = _word_list("generic_words.txt")
COMMON = _word_list("common_words.txt")
_DROP = frozenset({"and", "the"})


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """English words of five letters or more (SCOWL): never read as a misspelled name. Loaded
    on the first fuzzy lookup, not at import."""
    data = gzip.decompress((resources.files("poise.ranking") / "english_words.txt.gz").read_bytes())
    return frozenset(w for w in data.decode("utf-8").splitlines() if w and not w.startswith("#"))


def fold(text: str) -> str:
    """Lower case without accents: "Blendtéc" -> "blendtec"."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


@dataclass(frozen=True, slots=True)
class Token:
    text: str  # folded
    start: int
    end: int
    capital: bool  # written with a capital first letter (or digits)


def tokenize(text: str) -> list[Token]:
    """Folded word tokens with their character spans; "and"/"the" dropped (so "&" == "and")."""
    out: list[Token] = []
    ascii_lower = text.lower() if text.isascii() else None
    for m in _TOKEN.finditer(text):
        raw = m.group()
        folded = ascii_lower[m.start() : m.end()] if ascii_lower is not None else fold(raw).replace("’", "'")
        if "," in folded:
            folded = folded.replace(",", "")
        if folded.endswith("'s"):
            folded = folded[:-2]
        start = m.start()
        if (elided := _ELISION.match(folded)) is not None:  # "l'Hypervolt", "dell'iPad", "d'Oral-B"
            folded, start = folded[elided.end():], start + elided.end()
        if not folded or folded in _DROP:
            continue
        first = text[start]
        out.append(Token(folded, start, m.end(), first.isupper() or first.isdigit()))
    return out


# French and Italian articles and prepositions written onto the next word
_ELISION = re.compile(r"^(?:l|d|j|qu|dell|all|nell|sull|dall|un)'(?=[^\W\d_])")


def _has_digit(word: str) -> bool:
    return any(c.isdigit() for c in word)


_SPEC = re.compile(
    r"^\d+(?:\.\d+)?(?:v|w|kw|mah|ah|wh|l|ml|hp|mm|cm|in|hz|khz|db|kg|g|lb|lbs|oz|gb|tb|mp|k|nm|rpm|ft|sq|x)$"
)


def _is_number(word: str) -> bool:
    """A number or a quantity with its unit ("1200", "3.5", "18v", "1600w"): a spec, not a name."""
    return all(c.isdigit() or c in ".," for c in word) or bool(_SPEC.match(word))


@dataclass(frozen=True, slots=True)
class Key:
    tokens: tuple[str, ...]
    product: int
    kind: str  # "brand", "model" or "full" (brand and model)
    needs_capital: bool  # one ordinary word: only a capitalised use names the product
    mid_sentence: bool = False  # ... and not the capital every sentence starts with
    brand_only: bool = False


@dataclass(frozen=True, slots=True)
class Mention:
    product: int
    start: int
    end: int
    kind: str = "full"  # how the product was named: "brand", "model" or "full"


def _sentence_start(text: str, pos: int) -> bool:
    """Whether ``pos`` starts a sentence, a line or a list item (where any word has a capital)."""
    before = text[max(0, pos - 12) : pos].rstrip(" \t*_#>-•(\"'“")
    before = re.sub(r"\d+[.)]$", "", before).rstrip()
    return not before or before[-1] in ".!?:\n"


def _names_tokens(text: str) -> tuple[str, ...]:
    return tuple(t.text for t in tokenize(text))


def _distinctive(tokens: tuple[str, ...]) -> bool:
    """Whether a run of model words can name a product without its brand."""
    if len(tokens) == 1:
        word = tokens[0]
        if _is_number(word) or word in GENERIC:
            return False
        return (_has_digit(word) and len(word) >= 2) or len(word) >= 4
    meaningful = [w for w in tokens if w not in GENERIC and not _is_number(w)]
    if meaningful:
        return any(len(w) >= 2 for w in meaningful)
    if all(_is_number(w) or w in _UNIT_WORDS for w in tokens):
        return False  # a quantity ("6-quart", "14 cup"), not a model
    if all(_is_number(w) or w in _STANDARDS for w in tokens):
        return False  # a standard ("Wi-Fi 6", "USB 3", "PCIe 4.0"), not a model
    # generic words plus a number ("3200 series") name a model; generic words alone do not
    return any(_is_number(w) for w in tokens) and any(len(w) >= 2 and not _is_number(w) for w in tokens)


# the names of standards a number follows: "Wi-Fi 6", "Bluetooth 5.3", "USB 3", "PCIe 4.0", "DDR5"
_STANDARDS = frozenset({"wi", "fi", "wifi", "wlan", "bluetooth", "usb", "pcie", "gen", "hdmi", "ddr", "nvme", "sata",
                        "thunderbolt", "dolby", "atmos", "qi", "lte", "5g"})


# words a company adds to its name that answers leave out: "Klein Tools", "FSP Group", "Quincy Compressors"
_BRAND_SUFFIX = frozenset({"tools", "tool", "hammocks", "hammock", "group", "mountaineering", "cosmetics",
                           "compressors", "appliances", "labs", "co", "co.", "company", "inc", "outfitters", "sports",
                           "electronics", "audio", "paris", "heater", "home", "milano", "london"})


def _brand_core(b: tuple[str, ...]) -> tuple[str, ...]:
    """The brand without the company words after it, or the brand itself."""
    core = b
    while len(core) > 1 and core[-1] in _BRAND_SUFFIX:
        core = core[:-1]
    return core if len("".join(core)) >= 3 else b


def _product_keys(index: int, brand: str, model: str) -> set[Key]:
    b = _names_tokens(brand)
    m = _names_tokens(model)
    if m[: len(b)] == b and len(m) > len(b):
        m = m[len(b):]
    core = _brand_core(b)
    runs: set[tuple[str, ...]] = set()
    for i in range(len(m)):
        for j in range(i + 1, len(m) + 1):
            runs.add(m[i:j])
    keys: set[Key] = set()

    def add(tokens: tuple[str, ...], kind: str) -> None:
        if not tokens:
            return
        brand_only = kind == "brand"
        # plain words ("Flip", "Sonic Toothbrush") name the product only when capitalised, and
        # so does a model named by one word of letters ("burner" is a spec, "Burner" a name)
        ordinary = (len(tokens) == 1 and (tokens[0] in COMMON or tokens[0] in GENERIC)) or all(
            t in GENERIC for t in tokens)
        one_word = kind == "model" and len(tokens) == 1 and tokens[0].isalpha()
        keys.add(Key(tokens, index, kind, needs_capital=ordinary or one_word,
                       mid_sentence=ordinary and len(tokens) == 1 and not brand_only, brand_only=brand_only))
        if len(tokens) > 1:
            joined = "".join(tokens)
            keys.add(Key((joined,), index, kind, needs_capital=False))

    add(b, "brand")
    if core != b:
        add(core, "brand")
    for run in runs:
        add(b + run, "full")
        if core != b:
            add(core + run, "full")
        if _distinctive(run) or (run == m and len(m) > 1):
            add(run, "model")  # the whole model name names the product even when made of plain words
    return keys


_KIND_ORDER = {"brand": 0, "model": 1, "full": 2}


def _key_order(key: Key) -> tuple[tuple[str, ...], int, bool, bool, bool]:
    return key.tokens, _KIND_ORDER[key.kind], not key.needs_capital, not key.mid_sentence, key.brand_only


class NameMatcher:
    """Finds mentions of a fixed list of products (one category) in text."""

    def __init__(self, names: tuple[tuple[str, str], ...]) -> None:
        owners: dict[tuple[str, ...], set[int]] = {}
        all_keys: list[Key] = []
        for i, (brand, model) in enumerate(names):
            # in a fixed order: a set's order follows string hashing, which changes from run to run, and
            # the first of two keys with the same words decides how they match
            for key in sorted(_product_keys(i, brand, model), key=_key_order):
                owners.setdefault(key.tokens, set()).add(i)
                all_keys.append(key)
        by_first: dict[str, list[Key]] = {}
        seen: set[tuple[str, ...]] = set()
        for key in all_keys:
            if len(owners[key.tokens]) != 1 or key.tokens in seen:
                continue  # a name two products share names neither
            seen.add(key.tokens)
            by_first.setdefault(key.tokens[0], []).append(key)
        for keys in by_first.values():
            keys.sort(key=lambda k: -len(k.tokens))
        self._by_first = by_first
        self.vocab = frozenset(t for k in seen for t in k)
        self._fuzzy_targets = sorted(
            w for w in self.vocab if len(w) >= _FUZZY_MIN_LEN and not _has_digit(w)
            and w not in GENERIC and w not in COMMON
        )
        self._fuzzy_cache: dict[str, str] = {}
        self.size = len(names)
        # every word of each product's name: what may follow its brand in a mention of it
        self._own = [frozenset(_names_tokens(f"{b} {m}")) for b, m in names]
        self._brands = [_names_tokens(b) for b, _ in names]
        # the brands of the other products, for each product: model words right after one are not this product's
        self._other_brands = [tuple({b for b in self._brands if b and b != own}) for own in self._brands]

    def brand_named(self, text: str, among: list[int]) -> int | None:
        """The one product of ``among`` whose brand ``text`` names ("the Bose" when the list has two
        Bose products but only one is among those tied), or None."""
        words = [t.text for t in tokenize(text)]
        hits = [p for p in among if (b := self._brands[p]) and any(
            tuple(words[i : i + len(b)]) == b for i in range(len(words)))]
        return hits[0] if len(hits) == 1 else None

    def _canonical(self, word: str) -> str:
        cached = self._fuzzy_cache.get(word)
        if cached is not None:
            return cached
        if len(self._fuzzy_cache) > 100_000:  # bounded, whatever the answers hold
            self._fuzzy_cache.clear()
        if word in self.vocab or len(word) < _FUZZY_MIN_LEN or word in COMMON or word in GENERIC \
                or _has_digit(word) or not self._fuzzy_targets or word in english_words():
            self._fuzzy_cache[word] = word
            return word
        best = process.extractOne(word, self._fuzzy_targets, scorer=fuzz.ratio, score_cutoff=_FUZZY_CUTOFF)
        cached = self._fuzzy_cache[word] = best[0] if best else word
        return cached

    def _prepare(self, tokens: list[Token]) -> list[Token]:
        """Join split names ("Roomba j-7", "Quiet Comfort") and correct typos."""
        out: list[Token] = []
        i = 0
        vocab = self.vocab
        while i < len(tokens):
            tok = tokens[i]
            if i + 1 < len(tokens) and tok.text not in vocab:
                nxt = tokens[i + 1]
                joined = tok.text + nxt.text
                if joined in vocab and nxt.start - tok.end <= 1:
                    out.append(Token(joined, tok.start, nxt.end, tok.capital))
                    i += 2
                    continue
            out.append(Token(self._canonical(tok.text), tok.start, tok.end, tok.capital))
            i += 1
        return out

    def find(self, text: str) -> list[Mention]:
        """Every product mention in ``text``, in order, longest name first at each place."""
        tokens = self._prepare(tokenize(text))
        mentions: list[Mention] = []
        after_brand: tuple[int, int, int] | None = None
        i = 0
        while i < len(tokens):
            candidates = self._by_first.get(tokens[i].text)
            matched = None
            if candidates:
                for key in candidates:
                    n = len(key.tokens)
                    if i + n <= len(tokens) and all(tokens[i + k].text == key.tokens[k] for k in range(1, n)):
                        if key.needs_capital and not all(tokens[i + k].capital for k in range(n)):
                            continue
                        if key.mid_sentence and _sentence_start(text, tokens[i].start):
                            continue
                        matched = key
                        break
            if matched is None:
                i += 1
                continue
            n = len(matched.tokens)
            if matched.kind == "model" and (_generic_use(text, tokens[i : i + n])
                                             or (n == 1 and self._kind_plural(text, tokens, i + 1, matched.product))):
                i += n  # "a pellet grill", "a professional roll cab": the kind of thing, not the product
                continue
            confused = (after_brand is not None and after_brand[0] == i and after_brand[1] != matched.product
                        and not text[after_brand[2] : tokens[i].start].strip(" -")) \
                or (matched.kind == "model" and self._other_brand_before(text, tokens, i, matched.product))
            if matched.brand_only and self._other_model(text, tokens, i + n, matched.product):
                confused = True  # "TP-Link Archer AX21" when the list holds the TP-Link Archer C20
            elif self._variant_follows(text, tokens, i + n, matched.product):
                confused = True  # "iPhone 15 Pro Max", "ProtectiveClean 4100" when the list holds the 15 Pro, the 6100
            if not confused:
                mentions.append(Mention(matched.product, tokens[i].start, tokens[i + n - 1].end, matched.kind))
            # "Philips Sonic-Fusion Professional": a brand followed at once by another
            # product's model is one (confused) product, named by its brand
            after_brand = (i + n, matched.product, tokens[i + n - 1].end) if matched.brand_only else None
            i += n
        return mentions

    def _other_brand_before(self, text: str, tokens: list[Token], i: int, product: int) -> bool:
        """Whether model words come right after the brand of another listed product and not their own:
        "DEWALT 60V MAX FLEXVOLT Blower" is not the Toro 60V MAX Brushless Leaf Blower."""
        own = self._brands[product]
        for brand in self._other_brands[product]:
            k = i - len(brand)
            if k >= 0 and tuple(t.text for t in tokens[k:i]) == brand \
                    and text[tokens[i - 1].end : tokens[i].start] in (" ", "-", " - ") \
                    and not (own and tuple(t.text for t in tokens[k:k + len(own)]) == own):
                return True
        return False

    def _kind_plural(self, text: str, tokens: list[Token], j: int, product: int) -> bool:
        """Whether model words are followed at once by the plural of a word of the product's own name:
        "Best Immersion Blenders" names the kind of thing, not the MultiQuick 5 Immersion Hand Blender."""
        if j >= len(tokens) or text[tokens[j - 1].end : tokens[j].start] != " " \
                or not _HEADLINE.search(text, text.rfind("\n", 0, tokens[j - 1].start) + 1, tokens[j - 1].start):
            return False
        word = tokens[j].text
        return word.endswith("s") and (word[:-1] in self._own[product] or word[:-2] in self._own[product]) \
            and word not in self._own[product]

    def _variant_follows(self, text: str, tokens: list[Token], j: int, product: int) -> bool:
        """Whether the name just read goes on at once into another model of the line: a variant
        word the product's name lacks ("Max", "Ultra") or a model number that differs from the
        product's in its digits only ("4100" for 6100, "Fold5" for Fold3)."""
        if j >= len(tokens) or text[tokens[j - 1].end : tokens[j].start] not in (" ", "-"):
            return False
        word, own = tokens[j].text, self._own[product]
        if word in own:
            return False
        if word in _VARIANTS:
            return True
        if not _has_digit(word) or len(word) < 2 or _UNIT.match(word):
            return False
        shape = _digits_out(word)
        return any(_has_digit(t) and t != word and _digits_out(t) == shape and len(t) == len(word) for t in own)

    def _other_model(self, text: str, tokens: list[Token], j: int, product: int) -> bool:
        """Whether the brand just read is followed at once by a model number that is not this
        product's (a product outside the list)."""
        if j >= len(tokens) or text[tokens[j - 1].end : tokens[j].start] not in (" ", "-", " - "):
            return False
        word = tokens[j]
        if word.text in self._own[product] or _is_number(word.text):
            return False
        # a line name ("Ryobi ONE+", "Milwaukee FUEL") may follow a brand; a model number may not,
        # unless the listed name has no code to differ from ("DeWalt DWP611" for the brand's one
        # listed product, "1-1/4 HP Max Torque Compact Router")
        if _has_digit(word.text):
            if not any(_has_digit(t) and not _is_number(t) for t in self._own[product]):
                return False
            return word.text not in COMMON and word.text not in GENERIC \
                and not any(_has_digit(t) and t[:2] == word.text[:2] for t in self._own[product])
        # nor a model name of its own with its number: "JBL Charge 5" when the list holds the JBL Flip 6, "Blueair
        # Blue Pure 311i" when it holds the Blueair HealthProtect 7440i
        for k in (1, 2):
            words = tokens[j:j + k + 1]
            if j + k >= len(tokens) or not all(t.capital and t.text not in self._own[product] for t in words[:-1]) \
                    or any(text[a.end : b.start] != " " for a, b in pairwise(words)):
                return False
            nxt = tokens[j + k]
            if _has_digit(nxt.text):  # not another listed model ("Blueair Air A3")
                return nxt.text not in self.vocab and not _UNIT.match(nxt.text)
        return False


# a number with a unit, not a model number: "20v", "4k", "1080p", "2nd", "32gb", "500ml"
_UNIT = re.compile(r"^\d+(?:[.,]\d+)?(?:v|w|mah|wh|gb|tb|mb|mm|cm|m|in|hz|k|p|st|nd|rd|th|oz|l|ml|qt|lb|lbs|kg|g|x|db"
                   r"|pa|psi"
                   r"|gal|ft|inch|cc|rpm|bar|a|amp|ah)$")
# units a number goes with in a spec: "6-quart", "12 cup", "30 inch"
_UNIT_WORDS = frozenset({"quart", "quarts", "qt", "gallon", "gallons", "gal", "cup", "cups", "inch", "inches", "in",
                         "liter", "liters", "litre", "litres", "l", "watt", "watts", "w", "volt", "volts", "v", "oz",
                         "ounce", "ounces", "lb", "lbs", "pound", "pounds", "ft", "feet", "foot", "mm", "cm", "cu",
                         "drawer", "drawers", "zone", "zones", "burner", "burners", "piece", "pieces", "speed",
                         "speeds"})
# words that make a different model of the same line when they follow its name
_VARIANTS = frozenset({"max", "plus", "ultra", "mini", "lite", "se", "fe", "xl", "pro"})


# what opens a headline over a kind of product: "Best Immersion Blenders", "Top 5 Gaming Monitors"
_HEADLINE = re.compile(r"\b(?:best|top(?: \d{1,2})?|\d{1,2} best)\s+$", re.I)
# an indefinite article (or "the best"), and at most one word, before a name written in lower case
_INDEFINITE = re.compile(r"\b(?:a|an|any|another|every|the (?:best|top|ideal|right|perfect|only))\s+(?:[\w-]+\s+)?"
                         r"\W{0,2}$", re.I)


def _generic_use(text: str, tokens: list[Token]) -> bool:
    """Whether model words are used as a common noun: all lower case, after "a"/"an"."""
    return not any(t.capital for t in tokens) and all(t.text.isalpha() for t in tokens) \
        and bool(_INDEFINITE.search(text[max(0, tokens[0].start - 40) : tokens[0].start]))


def _digits_out(word: str) -> str:
    return "".join("0" if c.isdigit() else c for c in word)


@lru_cache(maxsize=256)
def matcher_for(names: tuple[tuple[str, str], ...]) -> NameMatcher:
    """A matcher per product list, built once and reused."""
    return NameMatcher(names)
