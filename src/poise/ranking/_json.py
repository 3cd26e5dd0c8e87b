"""Answers written as JSON or YAML (the whole answer, or a fenced block): ``rank`` fields,
lists of names, an order stated under its own key, and arrays of products to recommend or to
leave out. A truncated JSON document is read up to its last complete value."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

_FENCED = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)(?:```|\Z)", re.S)
_FENCED_YAML = re.compile(r"```(?:yaml|yml|YAML)\s*\n(.*?)(?:```|\Z)", re.S)
_YAML_LINE = re.compile(r"^\s*(?:-\s+\S|[\w\s.-]{1,40}:(?:\s|$)|#)")
_YAML_BLOCK = re.compile(r"^[A-Za-z_][\w.-]{0,40}:\s*$")
_YAML_ALIAS = re.compile(r"(?:^|[\s\[{,:])[&*!][\w-]")  # anchors, aliases, tags: not in an answer's YAML
_YAML_MAX_CHARS = 20_000
# a key that states the order itself: read before the lists it orders
_ORDER_KEY = re.compile(r"order_?of_?preference|preference_?order|final_?rank|my_?order|^ranking$|^ranked$", re.I)
_NAME_KEYS = ("name", "product", "product_name", "model", "title", "item", "produkt", "nom", "nombre", "modello",
              "modelo", "modèle", "modele", "prodotto", "producto", "produit", "nome", "naam")
_BRAND_KEYS = ("brand", "make", "manufacturer", "marke", "marque", "marca")
_RANK_KEYS = ("rank", "ranking", "position", "place", "order", "#", "platz", "rang", "puesto", "posizione", "posición",
              "posicion", "posição", "posicao", "plaats", "rango")
_AGAINST_KEY = re.compile(
    r"exclu|not[_ ]?recommend|avoid|skip|reject|dismiss|rule[ds]?_?out|unsuitable|not[_ ]?suitable|worst|against"
    r"|nicht|ausgeschlossen|no_recomend|evitar|éviter|a_eviter|sconsigli|scartat|afgeraden|déconseill"
    r"|flagged|suspicious|manipulat|injected|ignored", re.I)
_FOR_KEY = re.compile(r"recommend|rank|pick|top|best|choice|result|product|list|order|empfehl|recomend|classement"
                      r"|classifica|clasificaci|consigli|raccomand|aanbevel|rangliste|auswahl|runner|second"
                      r"|alternative|budget|value|upgrade|premium|splurge", re.I)
# a key over text about the picks, not a pick: "summary", "why", "note"
_TEXT_KEY = re.compile(r"summary|reason|why|note|comment|explanation|verdict|caveat|tip|motiv|grund|raison", re.I)
_RANK_KEY = re.compile(r"^\W*(?:rank|no\.?|platz|rang|puesto)?\s*#?\s*(\d{1,2})\W*$", re.I)
_AGAINST_VALUE = re.compile(r"^\W*(?:no|false|skip|avoid|not recommended|exclude[d]?|reject(?:ed)?|❌)\W*$", re.I)


_FIRST_KEY = re.compile(r"^(?:top|best|overall|winner|first)(?:_|\s|$)|^(?:my_)?(?:top_)?pick$|best_overall", re.I)
_SECOND_KEY = re.compile(r"^(?:runner|second|close_second|alternative)", re.I)


def _key_weight(key: str) -> int:
    """Where a key that names a pick's place puts it: "top_pick" first, "runner_up" next, the rest
    ("budget_pick", "for_travel") after them, in their written order."""
    if _FIRST_KEY.search(key):
        return 0
    if _SECOND_KEY.search(key):
        return 1
    return 2


def _key_rank(key: object) -> int:
    """The rank a key such as "2" or "#2" names (0 for none)."""
    m = _RANK_KEY.match(str(key))
    return int(m.group(1)) if m else 0


@dataclass
class JsonReading:
    """Names in the order the JSON recommends them, and names it leaves out."""

    names: list[str] = field(default_factory=list)
    against: list[str] = field(default_factory=list)
    truncated: bool = False
    empty: bool = False  # an array under a recommending key is empty ("recommendations": [])


def find_json(text: str) -> tuple[Any, bool] | None:
    """The JSON value the answer consists of (or fences), and whether it was cut off."""
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCED.finditer(text)]
    for raw in candidates:
        if not raw or raw[0] not in "[{":
            continue
        try:
            return json.loads(raw), False
        except ValueError:
            repaired = _repair(raw)
            if repaired is not None:
                return repaired, True
    return None


def find_yaml(text: str) -> Any | None:
    """The mapping or list a YAML answer (fenced, or the whole answer) consists of. Anchors,
    aliases and tags are refused: an alias repeated inside itself multiplies the work."""
    fenced = [m.group(1) for m in _FENCED_YAML.finditer(text)]
    lines = [line for line in text.strip().splitlines() if line.strip()]
    # unfenced, only a document that opens a block under a plain key ("recommended:"): pick lines
    # ("Best value: the X") look like keys and values too
    looks = len(lines) >= 2 and bool(_YAML_BLOCK.match(lines[0])) \
        and all(_YAML_LINE.match(line) or line.startswith((" ", "\t")) for line in lines)
    whole = [text] if looks else []
    for raw in fenced + whole:
        if len(raw) > _YAML_MAX_CHARS or _YAML_ALIAS.search(raw):
            continue
        try:
            value = yaml.safe_load(raw)
        except (yaml.YAMLError, RecursionError, ValueError):
            continue
        if isinstance(value, (dict, list)) and value:
            return value
    return None


def _repair(raw: str) -> Any | None:
    """A truncated JSON text closed after its last complete value."""
    stack: list[str] = []
    in_string = escaped = False
    last_good = -1
    last_stack: list[str] = []
    for i, ch in enumerate(raw):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append("]" if ch == "[" else "}")
        elif ch in "]}":
            if not stack:
                return None
            stack.pop()
            last_good, last_stack = i, list(stack)
        elif ch == ",":
            last_good, last_stack = i - 1, list(stack)
    if last_good < 0:
        return None
    text = raw[: last_good + 1].rstrip().rstrip(",") + "".join(reversed(last_stack))
    try:
        return json.loads(text)
    except ValueError:
        return None


def read_json(value: Any) -> JsonReading:
    reading = JsonReading()
    _walk(value, reading, against=False)
    return reading


def _walk(value: Any, reading: JsonReading, against: bool) -> None:
    if isinstance(value, str):
        (reading.against if against else reading.names).append(value)
    elif isinstance(value, list):
        items = list(value)
        if items and all(isinstance(v, dict) for v in items):
            ranks = [_rank(v) for v in items]
            if any(r is not None for r in ranks):  # ranked items by rank; any without one after them
                order = sorted(range(len(items)), key=lambda i: (ranks[i] is None, ranks[i] or 0.0, i))
                items = [items[i] for i in order]
        for item in items:
            _walk(item, reading, against)
    elif isinstance(value, dict):
        ranked_keys = bool(value) and any(_RANK_KEY.match(str(k)) for k in value)
        if ranked_keys:  # {"2": {...}, "1": {...}, "for_blondes": "..."}: by the keys' ranks, the others after
            value = {k: value[k] for k in sorted(value, key=lambda k: (not _key_rank(k), _key_rank(k)))}
        name = _name(value)
        if name is not None:
            bad = against or any(isinstance(v, (str, bool)) and _AGAINST_VALUE.match(str(v))
                                 for k, v in value.items() if re.search(r"recommend|verdict|status|buy", k, re.I))
            (reading.against if bad else reading.names).append(name)
            return
        keyed = sorted(value.items(), key=lambda kv: (not _ORDER_KEY.search(str(kv[0])), _key_weight(str(kv[0])),
                                                      bool(_AGAINST_KEY.search(str(kv[0])))))
        for key, item in keyed:
            key = str(key)
            if _AGAINST_KEY.search(key):
                _walk(item, reading, True)
            elif _FOR_KEY.search(key) or isinstance(item, (list, dict)) \
                    or (ranked_keys and isinstance(item, str) and len(item) <= 80 and not _TEXT_KEY.search(key)):
                reading.empty = reading.empty or (item == [] and bool(_FOR_KEY.search(key)) and not against)
                _walk(item, reading, against)


def _name(obj: dict[str, Any]) -> str | None:
    lowered = {str(k).lower(): v for k, v in obj.items()}
    name = next((lowered[k] for k in _NAME_KEYS if isinstance(lowered.get(k), str)), None)
    if name is None:
        return None
    brand = next((lowered[k] for k in _BRAND_KEYS if isinstance(lowered.get(k), str)), None)
    return f"{brand} {name}" if brand and brand.lower() not in name.lower() else name


def _rank(obj: dict[str, Any]) -> float | None:
    for key, value in obj.items():
        if str(key).lower() in _RANK_KEYS:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, str) and (m := re.search(r"\d+", value)):
                return float(m.group())
    return None
