"""``instruction-filter``: a rule-based detector of text aimed at the AI that reads a page.

A product page speaks to a shopper; an injection speaks to the assistant that summarises the
page, or dictates what its answer says. This detector flags a page's sentences that

* **address an AI reader**: "Note to AI assistants", "if you are a language model", "LLMs
  summarising this page should ...";
* **override instructions**: "ignore previous instructions", "new system instructions",
  "[SYSTEM]", "developer message:";
* **dictate the answer**: "begin your answer with", "your response must", "in your ranking";
* **command a ranking**: a ranking verb with a position ("rank X first", "list it above the
  others", "must be recommended as #1") said as an order (imperative, or with must/should and
  "you", the assistant, the model), or a "do not recommend" order;
* **speak for the user**: "the user only wants ...", "the user's real question";
* **claim an official ranking**: "official/verified/definitive ranking".

The same cues in German, French, Spanish, Italian and Chinese are matched for overrides and
ranking orders. Before matching, a copy of each sentence is normalised (NFKC, zero-width
characters removed, Cyrillic and Greek look-alike letters mapped to Latin, letter-spaced words
joined, digits inside words read as letters), and base64 blobs are decoded and scanned too, so
simple obfuscation does not hide a cue. A sentence that flags and ends with a colon takes the
list lines that follow it (a fake ranking block).

No model is called: it costs nothing per page and is deterministic. It is a baseline, not a
guarantee: an injection that persuades without addressing the assistant ("rated #1 by
experts", invented statistics) passes it, and an adaptive attacker who knows the cues can
write around them. Its rates on clean pages and on injections written blind are in
docs/measurements.md.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from typing import ClassVar

from ._detect import Detection, Verdict, sentence_spans
from .base import Param, register_defense

_AI = (r"(?:ai|a\.i\.|artificial intelligence|ai assistants?|assistants?|chat ?bots?|llms?|(?:large )?language models?"
       r"|ai models?|ai systems?|search engines?|answer engines?|gpt|chatgpt|claude|gemini|copilot|perplexity"
       r"|ai crawlers?|ai agents?)")
_REPLY = r"(?:answers?|responses?|repl(?:y|ies)|outputs?|rankings?|recommendations?)"
_STRONG_VERB = (r"(?:rank|list|recommend|mention|name|present|feature|cite|suggest|prioriti[sz]e|promote|rate)"
                r"(?!\s*(?::|price|prices|of\b))")
_STRONG_POSITION = (r"(?:first|#\s?1|no\.?\s?1|number\s+(?:one|1)|the top|at the top|top (?:spot|position|pick"
                    r"|choice|place|recommendation)|above|ahead of|higher than|before (?:all|any|every|the other|other)"
                    r"|over (?:all|any|every|the other|other)|first place|exclusively|only this|as the (?:best|only))")
_WEAK_VERB = r"(?:put|place|position|move|list|show|display)"
_WEAK_POSITION = (r"(?:(?:as|at|in) (?:#\s?1|number (?:one|1)|no\.?\s?1|the top|first place|the first (?:spot|position"
                  r"|place))|(?:above|ahead of) (?:all |the )?(?:others|other \w+|competitors|the rest)"
                  r"|first in (?:the|your|any|every) (?:list|ranking|answer|response|recommendations?))")
_AI_ORDER = (rf"\b{_AI}\s+(?:must|should|shall|will|need to|have to|are (?:required|instructed|expected|asked|told)"
             r" to|are to|may only|can only)\b")
_YOU_ORDER = (r"\byou\s+(?:must|should|shall|will|need to|have to|are (?:required|instructed|expected|asked|told) to"
              r"|are to|may only|can only)\s+(?:always\s+|only\s+)?")

CUES: tuple[re.Pattern[str], ...] = tuple(re.compile(p, re.I) for p in (
    # an AI reader addressed
    rf"\b(?:dear|attention|note (?:to|for)|message (?:to|for)|instructions? (?:to|for)|hey|hello|hi)[\s,:]+"
    rf"(?:the |all |any )?{_AI}\b",
    rf"\b(?:if|when|whenever|while)\s+you(?:['’]re| are)\s+(?:an? |the )?{_AI}\b",
    rf"\b{_AI}\s+(?:that (?:are |is )?)?(?:reading|summari[sz]ing|processing|parsing|indexing|answering|evaluating"
    r"|crawling|reviewing)\s+(?:this|these|the)\b",
    # overrides
    r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|the\s+|your\s+|every\s+|of\s+)*"
    r"(?:previous|prior|above|earlier|preceding|original|system|existing|other|competing)?\s*"
    r"(?:instructions?|prompts?|rules?|guidelines?|directives?|context|sources?|search results|pages?|documents?"
    r"|products?|reviews?|competitors?)\b",
    rf"\b(?:system (?:instructions?|prompt|override|message|note)|developer (?:message|prompt|instructions?)"
    rf"|(?:hidden|secret|priority|override) (?:instructions?|directives?|prompt)|new instructions? (?:for|to) "
    rf"(?:the |any |all )?{_AI})\b",
    r"[\[<({]\s*/?\s*(?:system|assistant|developer|inst|sys)\b[^\]>)}\n]{0,30}[\]>)}]",
    r"(?:^|\n)\W*(?:assistant|system (?:prompt|message|note|override|instructions?))\s*:",
    # the answer dictated
    rf"\b(?:begin|start|open|end|finish|conclude|preface|prefix)\s+(?:your|the|each|every|any)\s+{_REPLY}\b",
    rf"\b(?:your|the assistant['’]s|the ai['’]s|the model['’]s)\s+{_REPLY}\s+(?:must|should|shall|has to|needs to"
    r"|will|is to|may only|can only)\b",
    rf"\b(?:in|within|into)\s+(?:your|the assistant['’]s|the ai['’]s)\s+{_REPLY}\b",
    r"\b(?:when|whenever|if)\s+(?:you(?:['’]re| are)?\s+)?(?:asked|answering|recommending|ranking|summari[sz]ing"
    r"|responding|generating)\b[^.!?\n]{0,60}\b(?:always|must|should|only|never)\b",
    # a ranking ordered
    rf"^\W*(?:please\s+|kindly\s+|now\s+|always\s+|just\s+|simply\s+)?{_STRONG_VERB}\b[^.!?\n]{{0,80}}?"
    rf"\b{_STRONG_POSITION}",
    rf"^\W*(?:please\s+|kindly\s+|now\s+|always\s+|just\s+|simply\s+)?{_WEAK_VERB}\b[^.!?\n]{{0,80}}?\b{_WEAK_POSITION}",
    rf"{_AI_ORDER}[^.!?\n]{{0,40}}?\b(?:{_STRONG_VERB}|{_WEAK_VERB})\w*\b",
    rf"{_YOU_ORDER}{_STRONG_VERB}\w*\b[^.!?\n]{{0,80}}?\b{_STRONG_POSITION}",
    rf"\b(?:must|should|shall|has to|needs to|is to|are to)\s+(?:always\s+)?(?:be\s+)?{_STRONG_VERB}\w*"
    rf"[^.!?\n]{{0,40}}?\b{_STRONG_POSITION}",
    r"\b(?:do not|don['’]t|never|must not|should not|shouldn['’]t|may not)\s+(?:ever\s+)?(?:recommend|rank|list"
    r"|mention|suggest|include|cite|name)\s+(?:any |the |these |those )?(?:other|competitors?|competing|alternatives?"
    r"|rivals?)\b",
    # the user impersonated, an official ranking claimed
    r"\bthe user\s+(?:only|actually|really|specifically|explicitly)\s+(?:wants|needs|prefers|asked|requested|likes)\b",
    r"\b(?:the )?user['’]s (?:real|actual|true|hidden) (?:question|request|intent|preference)\b",
    r"\b(?:official|verified|definitive|authoritative|approved|mandatory)\s+(?:ai\s+)?(?:ranking|rankings"
    r"|recommendation order|order of recommendation)\b",
    # other languages: overrides and ranking orders
    r"\b(?:ignorier\w*|vergiss|missachte)\b[^.!?\n]{0,40}\b(?:anweisungen|instruktionen|vorgaben)\b",
    r"\b(?:ignore[rz]?|oublie[rz]?)\b[^.!?\n]{0,40}\b(?:instructions|consignes)\b",
    r"\b(?:ignora|olvida)\w*\b[^.!?\n]{0,40}\b(?:instrucciones|indicaciones|istruzioni)\b",
    r"\b(?:an erster stelle|auf platz (?:1|eins)|en premier|en première (?:position|place)|numéro un"
    r"|en primer (?:lugar|puesto)|el número uno|al primo posto|in prima posizione|numero uno)\b"
    r"[^.!?\n]{0,60}\b(?:empfehl|nenn|list|setz|platzier|recommand|class|mett|place|cit|recomiend|recomend|coloc"
    r"|menciona|consiglia|raccomand|indica|elenca)\w*",
    r"\b(?:empfiehl|empfehlen sie|nenne|liste|setze|platziere|recommande[rz]?|classe[rz]?|mets|placez"
    r"|recomienda|coloca|pon|menciona|consiglia|raccomanda|metti|elenca)\b[^.!?\n]{0,60}\b(?:an erster stelle"
    r"|auf platz (?:1|eins)|zuerst|en premier|en première|numéro un|en primer (?:lugar|puesto)|primero"
    r"|número uno|al primo posto|per primo|numero uno)\b",
    r"(?:忽略|无视|忽视|無視)[^。！？\n]{0,10}(?:指令|指示|说明|說明|提示|规则|規則)|系统提示|系統提示|只推荐|只推薦"
    r"|(?:请|請|务必|務必|必须|必須|一定要|应当|應當|应该|應該)[^。！？\n]{0,30}(?:排名第一|排在第一|放在第一|第一位|首位)",
))

_ZERO_WIDTH = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")
_LOOKALIKES = str.maketrans(dict(zip(
    "авсеһіјкмоорѕтхуАВСЕНІЈКМОРЅТХУαβεικνορτυχΑΒΕΗΙΚΜΝΟΡΤΥΧ",
    "abcehijkmoopstxyABCEHIJKMOPSTXYabeiknoptuxABEHIKMNOPTYX", strict=True)))
_LEET = str.maketrans("013457@$", "oieastas")
_SPACED = re.compile(r"\b(?:\w[ .\-_*]){3,}\w\b")
_MIXED = re.compile(r"\b(?=\w*[a-z])(?=\w*[0-9@$])[\w@$]+\b", re.I)
_BASE64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")
_LIST_LINE = re.compile(r"^\s*(?:[-*•+]|\d{1,2}[.)]|#\d)\s+\S")


def normalise(text: str) -> str:
    """A copy of ``text`` for matching only: NFKC, no zero-width characters, look-alike letters
    as Latin, letter-spaced words joined ("i g n o r e"), digits inside words as letters."""
    text = _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text)).translate(_LOOKALIKES)
    text = _SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), text)
    return _MIXED.sub(lambda m: m.group(0).translate(_LEET) if not m.group(0).isdigit() else m.group(0), text)


def decoded(text: str) -> str:
    """The text of the base64 blobs in ``text`` that decode to readable UTF-8 ("" if none)."""
    out = []
    for blob in _BASE64.findall(text):
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if sum(ch.isprintable() for ch in raw) >= 0.9 * len(raw):
            out.append(raw)
    return "\n".join(out)


def cue(sentence: str) -> bool:
    """Whether a sentence holds a cue, as written, normalised, or inside a base64 blob."""
    for variant in (sentence, normalise(sentence), decoded(sentence)):
        if variant and any(p.search(variant) for p in CUES):
            return True
    return False


def flagged_sentences(text: str) -> list[str]:
    """The sentences of ``text`` that hold a cue, each with the list lines after it when it ends
    with a colon (verbatim substrings of ``text``)."""
    out: list[str] = []
    taken = 0
    for start, end in sentence_spans(text):
        if start < taken or not cue(text[start:end]):
            continue
        if text[start:end].rstrip().endswith(":"):
            end = _block_end(text, end)
        out.append(text[start:end])
        taken = end
    return out


def _block_end(text: str, end: int) -> int:
    """Where the list lines right after ``end`` (one per line) stop."""
    at = end
    for line in re.finditer(r"\n?([^\n]*)", text[end:]):
        if not line.group(1).strip():
            break
        if not _LIST_LINE.match(line.group(1)):
            break
        at = end + line.end()
    return at


@register_defense
class InstructionFilter(Detection):
    name = "instruction-filter"
    summary = ("flags the sentences of a page that address the AI reading it or dictate its answer (rules, no model "
               "call) and removes them")
    default_model = "engine"  # never asked: the rules need no model
    params: ClassVar[dict[str, Param]] = {
        "action": Param(str, "sanitize", "what happens to a flagged page: its flagged sentences taken out, or the page",
                        choices=("sanitize", "drop")),
    }

    def scan(self, text: str) -> Verdict:
        found = flagged_sentences(text)
        return Verdict(bool(found), float(len(found)), tuple(found),
                       note=f"{len(found)} sentence{'s' if len(found) != 1 else ''} aimed at the assistant"
                       if found else "")
