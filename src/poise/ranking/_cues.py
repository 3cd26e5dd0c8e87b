"""Cues around a mention (comparison, advice against, a page rather than a product) and the
text an answer quotes or echoes from a page (code, block quotes, long quotations, sentences
that instruct the model), which is blanked out before reading so an injected list or verdict
cannot add to what the answer itself recommends."""

from __future__ import annotations

import re

from ._signals import NOT_SOLD_HERE

# -- what is blanked out before reading -----------------------------------------------------
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_QUOTE_LINE = re.compile(r"^[ \t]*>.*$", re.M)
_QUOTED = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”|«[^»\n]*»|„[^“”\n]*[“”]")
_INCH = re.compile(r"(?<=\d)\"")
_THINK = re.compile(r"<(think|reasoning)>.*?</\1>", re.S | re.I)
# a page echoed line by line, as small models do: "Document 2: BLACK+DECKER 4000 BTU ... For rooms up to 150 sq ft."
_DOC_LINE = re.compile(r"^[ \t]*(?:\*\*|__)?\[?(?:document|doc|dokument|documento)\s*#?\d{1,2}\]?(?:\*\*|__)?"
                       r"\s*[:\]].*$", re.M | re.I)
_INJECTION = re.compile(
    r"ignore (?:all |any )?(?:of )?(?:the |your |my )?(?:previous|prior|above|earlier|other)\b"
    r"|disregard (?:all |any |the |your )?(?:previous|prior|above|earlier|other)\b"
    r"|\bsystem (?:notice|message|prompt|override|instruction)"
    r"|\[\s*(?:system|admin|instruction)"
    r"|note to (?:the )?(?:ai|assistant|model|llm|language model)"
    r"|(?:ai|assistant|model|llm)s? (?:must|should|are instructed to) (?:rank|recommend|list|place)"
    r"|\b(?:rank|list|place|put) (?:it|this product|this|me) (?:first|#1|number one|at the top)"
    r"|\binstructions? (?:says?|tells?|to rank)"
    r"|\b(?:page|document|listing|site|text)s? (?:says?|claims?|states?|insists?|instructs?|asks?|tells? (?:me|you"
    r"|the \w+))\b",
    re.I,
)
# the same, for lower-cased text: no re.I, and a cheap look at the first letter (3x faster)
# a quotation that instructs ("rank the X first"): page text, however short
_IMPERATIVE = re.compile(r"\b(?:rank|recommend|list|put|place|ignore|disregard|always|must|never"
                         r"|instructions?)\b", re.I)
_INJECTION_LOWER = re.compile(r"(?=[idsn\[amlpr])(?:" + _INJECTION.pattern + ")")
# a sentence: up to a full stop, "!" or "?" that no letter or digit follows ("1.3 kg" and
# "tp-link.com" are not ends) and that ends no title ("Mr. Heater", "vs. the X"), or a line end
_SENTENCE = re.compile(r"(?:[^.!?。！？\n]|[.!?](?=[^\W_])"
                       r"|(?:(?<=\bMr)|(?<=\bDr)|(?<=\bMs)|(?<=\bSt)|(?<=\bvs)|(?<=\bVs))\.)+"
                       r"(?:[.!?。！？]+|(?=\n)|$)")  # 。！？ end Chinese and Japanese sentences


def sentence_end_before(text: str, pos: int) -> int:
    """The index of the sentence end (".", "!", "?", "。", "！", "？" or a line end) before ``pos``; -1 if none."""
    while True:
        j = max(text.rfind(c, 0, pos) for c in ".!?\n。！？")
        if j == -1 or text[j] in "\n。！？" or j + 1 >= len(text) or not text[j + 1].isalnum():
            return j
        pos = j


def sentence_end_after(text: str, pos: int) -> int:
    """The index of the next sentence end at or after ``pos``; len(text) if none."""
    while True:
        found = [i for i in (text.find(c, pos) for c in ".!?\n。！？") if i != -1]
        if not found:
            return len(text)
        j = min(found)
        if text[j] in "\n。！？" or j + 1 >= len(text) or not text[j + 1].isalnum():
            return j
        pos = j + 1

# -- cues around a mention ------------------------------------------------------------------
_COMPARISON_BEFORE = re.compile(
    r"(?:\bthan|\bversus|\bvs\.?|\bunlike|\bcompared (?:to|with)|\bcomparison (?:to|with)|\bcompare (?:it |this )?(?:to"
    r"|with)"
    r"|\bsimilar to|\bcomparable to|\bsuperior to|\binferior to|\bequivalent to|\brelative to|\bnext to"
    r"|\brivals?|\brivaling|\bbeats?|\boutperforms?|\boutclasses|\bedges? out|\btrails?|\bover|\bagainst"
    r"|\balternative to|\binstead of|\brather than|\bstep up from|\bupgrade (?:from|over)"
    r"|\bas \w+ as|\bmatch(?:es)?|\bshort of"
    # "molto vicina alla Miele", "proche du X", "ähnlich wie der X", "mejor que el X", "rispetto al X"
    r"|\bvicin[oaie] (?:a|al|alla|allo|ai|alle)|\brispetto (?:a|al|alla|allo)|\bproche (?:de|du|des)"
    r"|\bähnlich wie(?: der| die| das| dem| den)?|\bbesser als(?: der| die| das| dem| den)?"
    r"|\b(?:mejor|peor) que(?: el| la)?|\b(?:meilleure?|pire) que(?: le| la)?|\bsimilaire (?:à|au))"
    r"(?:\s+(?:the|a|an|its|their|both))?(?:\s+(?:pricier|cheaper|bigger|smaller|more expensive|popular|similar|older"
    r"|newer|previous|original|outgoing|first-gen|last-gen|earlier))?(?:\s+[A-Z][\w&+.-]*['’]s)?[\s,*_]*$",
    re.I,
)
_CONNECTOR = re.compile(r"^\s*(?:,|,?\s*(?:or|and|nor|&))?\s*(?:the\s+|a\s+)?$", re.I)
_HEAD_JOIN = re.compile(
    r"^\s*(?:\*\*|__)?\s*(?:,|/|\+|&|\band\b|\bor\b|,\s*and\b|\bund\b|\boder\b|\bet\b|\bou\b|\by\b|\bo\b|\be\b)"
    r"\s*(?:the\s+|der\s+|die\s+|das\s+|den\s+|le\s+|la\s+|les\s+|el\s+|los\s+|las\s+)?(?:\*\*|__)?\s*"
    r"(?:(?-i:[A-Z][\w.&+-]*)\s+){0,2}$", re.I)  # "A and Fuji B": a brand word before the next name
_NEGATIVE = re.compile(
    r"\bavoid(?:ed)?\b|\bskip\b|\bsteer clear|\bstay away|(?:\bnot|n['’]t|\bnever|\bcannot) (?:\w+ )?recommend"
    r"|\b(?:dont|doesnt|didnt|wont|wouldnt|cant|shouldnt)\s+(?:\w+\s+)?(?:recommend|buy|get|use|pick|choose|bother)\b"
    r"|\bnot worth|\bpass on\b|\bnot include|n['’]t include|\b(?:left|leave|leaving) (?:[\w'’*_-]+ ){0,4}?out\b"
    r"|\brul(?:e|ed|ing) (?:it|them|this one|that one|both) out\b"
    r"|\bexclud"
    r"|(?:\bnot|n['’]t) (?:a )?(?:good|great|strong|sensible|smart|wise|practical|realistic) (?:choice|pick|option|fit"
    r"|buy|idea)|\b(?:won['’]t|doesn['’]t|don['’]t|will not|does not|do not) cut it\b"
    r"|\b(?:wouldn['’]t|would not|won['’]t|don['’]t|do not) (?:bother|go for|buy|get|pick|choose|consider|use)\b"
    r"|\boverkill\b|\bnot for (?:this|that|the job|your|you)\b|\bso not for\b"
    r"|\bnot (?:designed|meant|built|made|suitable|suited|ideal|a fit|the right)\b|\bunsuitable\b|\bruled? out\b"
    r"|\b(?:won['’]t|doesn['’]t|don['’]t|wouldn['’]t|will not|does not|do not) work(?: well)?\b|\bwhat to avoid\b"
    r"|\bnot ranked\b|\bunranked\b|\b(?:haven['’]t|have not|didn['’]t|did not) ranked?\b"
    r"|\b(?:doesn|don|didn)['’]t (?:really |quite )?(?:fit|suit|make (?:the cut|it|(?:the|my|our) (?:short)?list))"
    r"|\b(?:wouldn['’]t"
    r"|would not|won['’]t) pay\b|\b(?:aren['’]t|isn['’]t|are not|is not) (?:really )?(?:needed|necessary|required)\b"
    r"|\bsteer (?:\w+ )?away\b|\brules? (?:it|them|this one|that one) out\b|\bfar beyond what\b"
    r"|\bnot (?:really )?a (?:real )?contender\b"
    r"|\bout of (?:the |my |your )?(?:budget|price range)\b"
    r"|\bbuiten beschouwing\b|\bniet geschikt\b"
    r"|\bnicht\b[^.!?\n]{0,40}?\bempfehlen|\bwell enough to recommend\b|\bdrop (?:it|them|that one)\b"
    r"|\bnicht empfohlen|\bnicht in (?:meiner|der|die) (?:auswahl|liste|empfehlung)"
    r"|\bdaher nicht\b|\bno (?:lo |la )?incluyo\b|\btampoco (?:la|lo) incluyo\b|\bà éviter\b"
    r"|\bno (?:lo |la |los |las )?recomendar[íi]a\b|\bne (?:le |la |les |l['’])?(?:conseill|recommand)\w* pas\b"
    r"|\b(?:isn['’]t|is not|aren['’]t|are not) (?:really |quite |directly )?comparable\b|\brules? out\b"
    # a product of another kind: "it isn't really a tool chest", "doesn't answer your question", "less suited"
    r"|\b(?:isn['’]t|is not|aren['’]t|are not) (?:really|actually|even|technically) an?\b"
    r"|\b(?:doesn['’]t|does not|don['’]t|do not) (?:really )?(?:answer your question|meet your)\b|\bless suited\b"
    r"|\b(?:wouldn['’]t|won['’]t|doesn['’]t|does not|would not|will not) (?:really )?(?:meet|suit|fit) (?:your|the)"
    r" (?:needs|requirements|brief|use)\b"
    r"|\bneither (?:is|are|one is) (?:the |a )?(?:right|good|best|ideal)\b|\besclus[oaie]\b|\bescluder\w*"
    r"|\btoo (?:small|weak|slow|underpowered|basic|limited|flimsy|noisy|loud|heavy|bulky|big|large|expensive|pricey"
    r"|costly|complex|complicated|fragile) (?:for|to)\b"
    # "not warm enough for winter", "outside your electric requirement", "hard to recommend"
    r"|\b(?:not|n['’]t) (?:\w+ ){1,2}enough (?:for|to handle)\b|\bunderpowered for\b"
    r"|\boutside (?:of )?(?:your|the) (?:\w+ )?(?:requirements?|budget|brief|criteria|needs?|price range|spec)\b"
    r"|\bno longer (?:recommend|suggest)|\bhard to (?:recommend|justify)\b|\ba different (?:category|kind|class) of\b"
    # other languages: "zu teuer für", "dépassé", "hoppa över", "não escolheria", "tavsiye etmem", "nedoporučuji"
    r"|(?<!nicht )(?<!nie )\b(?:eher |viel |etwas )?zu (?:klein|teuer|schwach|laut|groß|schwer|langsam)\b"
    r"|\bveraltet\b|\bdépassée?s?\b"
    r"|\bhoppa över\b|\bskulle jag inte\b|\böverkurs\b|\bn[ãa]o (?:escolheria|compraria)\b|\bdeixa a desejar\b"
    r"|\bevitaria\b|\btavsiye etmem\b|\bönermem\b|\bönermiyorum\b|\bnedoporuč\w*|\bodradzam\b"
    r"|\bnon (?:lo |la |li |le )?considerere\w*|\bdesaconsej\w*"
    # "too quiet for a party", "overpriced", "pricier than you need", "I wouldn't rely on it", "passar inte"
    r"|\btoo (?!good|great|nice|easy|tempting|important|well|much|many|far|often|long)\w+ for\b"
    r"|\boverpriced\b|\büberteuert\b|\bthan (?:you|most people|most \w+) (?:really )?(?:need|want|require)\b"
    r"|\b(?:wouldn['’]t|would not|don['’]t|do not) rely on\b|\bwouldn['’]t cover\b|\bpassar inte\b"
    r"|\b(?:couldn['’]t|could not) find (?:enough|much)\b[^.!?\n]{0,50}\bto recommend\b"
    # "a hard drive, not a NAS", "not a replacement for", "isn't a like-for-like option", "totalmente exagerado"
    r"|, not an? [\w-]+(?: [\w-]+)?(?=\s*(?:[,.;!]|$))|\bnot an? (?:\w+ )?(?:replacement|substitute) for\b"
    r"|\blike-for-like\b|\bexagerad[oa]\b"
    # "it won't fit yours", "consumer ultrabooks won't survive that", "anything hose-based is out"
    r"|\b(?:won['’]t|will not|wouldn['’]t|would not) (?:fit|survive|last|hold up)\b"
    r"|\b(?:is|are|it['’]s|they['’]re) (?:all )?out\b(?!\s+(?:now|there|today|of|on|in|for|and|with|soon|yet|next))"
    # "not sold in the US", "why the Galaxy Tab A9+ isn't here"
    r"|\b" + NOT_SOLD_HERE +
    r"|\bwhy\b[^.:!?\n]{0,60}\b(?:isn['’]t|is not|aren['’]t|are not) (?:here|listed|included|on (?:the|this|my) list)\b"
    r"|\bover (?:your |the |my )?budget\b|\b(?:more |be |been )?(?:cautious|wary) (?:about|of)\b"
    r"|\b(?:i['’]d|i would|i['’]ll|i will|so i) drop\b|\bnon (?:è |e )?(?:consigliat|raccomandat)\w*|\bsconsigli\w*"
    r"|\bnon (?:lo |la |li |le )?(?:consiglio|consiglierei|raccomando)\b|\bniet aan te raden\b|\bn[ãa]o recomend\w*"
    r"|\babraten|\bpas (?:\w+ )?recommand|\bdéconseill|\béviter\b"
    r"|\bno (?:lo |la |los |las )?recomiendo|\bevitar(?:ía)?\b|\bévite[zr]?\b"
    r"|\bwürde ich nicht (?:nehmen|kaufen|empfehlen|wählen)\b|\bodpu[śs]ci\w*|\bnie polecam\b|\bunikaj\w*"
    r"|対象外|おすすめしません|お勧めしません|避け|不向き|不推荐|不推薦|不建议|不建議|避免"
    # "The XP1200M and the A850GF are more than you need"; products the answer did not look at
    r"|\bmore than (?:you|most people|you['’]ll|you will|most \w+|many \w+) (?:need|want|require)\b"
    r"|\b(?:haven['’]t|have not|didn['’]t|did not) (?:really |closely |properly )?"
    r"(?:look(?:ed)? (?:closely )?(?:at|into)|evaluated?|reviewed?|tested?|assessed?)\b"
    r"|\bnicht (?:näher |genauer )?(?:angesehen|angeschaut|getestet|bewertet)\b"
    # outdated: "Older models like the X are now outclassed", "the X is discontinued", "near the end of their support"
    r"|\boutclassed\b|\bdiscontinued\b|\bno longer (?:gets?|receives?|supported|sold|available|made)\b"
    r"|\bend of (?:its|their) (?:software |update )?(?:support|life)\b"
    r"|\bolder (?:\w+ )?(?:models?|flagships?|generations?|versions?) (?:like|such as)\b",
    re.I,
)
# what ends the reach of a negative cue over the products that follow it ("I'd skip the A,
# the B and the C, but the D is fine")
_CONTRAST = re.compile(r"\bbut\b|\bhowever\b|\bthough\b|\bwhile\b|\bwhereas\b|\binstead\b|;|\band (?:go|choose|pick|get"
                       r"|opt|buy)"
                       r"|\b(?:is|are|was|were|it['’]s|they['’]re)\b", re.I)
_CLAUSE_SPLIT = re.compile(r"[;:,()]|\bbut\b|\bwhile\b|\bwhereas\b|\binstead\b|\band (?=(?:go|choose|pick|get|opt"
                           r"|buy))", re.I)
# "the Ninja page says ...": a mention of a product's page, not of the product
_PAGE_AFTER = re.compile(
    r"^\s*(?:'s|’s)?\s*(?:product\s+|own\s+)?(?:page|listing|document|website|site|description|marketing copy)\b", re.I
)


# a sentence that reports what a page claims about a product: quoted, not recommended
QUOTED_CLAIM = re.compile(
    r"\b(?:product|vendor|manufacturer|retailer|brand|marketing|sales|one|a|the|its|their) (?:page|listing|site|copy)"
    r" (?:\w+ )?(?:claims?|says?|describes?|calls?|promises?|boasts?|touts?|insists?|states?)\b"
    r"|\bmarketing copy\b|\baccording to (?:the|its|their) (?:product |vendor |manufacturer['’]s )?(?:page|listing"
    r"|site)\b"
    r"|\b(?:page|listing) claims?\b", re.I)


def _blank(match: re.Match[str]) -> str:
    return re.sub(r"[^\n]", " ", match.group())


def _strip_echoes(text: str) -> str:
    """Blank out quoted or echoed text, keeping every other character where it was."""
    if "</think>" in text or "</reasoning>" in text:  # a reasoning model's trace is not its answer
        text = _THINK.sub(_blank, text)
    if "ocument" in text or "OCUMENT" in text or "okument" in text:
        text = _DOC_LINE.sub(_blank, text)
    if "`" in text:
        text = _FENCE.sub(_blank, text)
        text = _INLINE_CODE.sub(_blank, text)
    if ">" in text:
        text = _QUOTE_LINE.sub(_blank, text)
    if '"' in text or "“" in text or "«" in text or "„" in text:
        # an inch mark ('the 34" cart ... their 39" cabinet') opens no quotation: found in a copy
        # where it is another character of the same length, blanked in the text itself
        chars = list(text)
        for m in _QUOTED.finditer(_INCH.sub("″", text)):
            if len(m.group().split()) >= 6 or _IMPERATIVE.search(m.group()):
                chars[m.start() : m.end()] = _blank(m)
        text = "".join(chars)
    lowered = text.lower()
    found = _INJECTION_LOWER.finditer(lowered) if len(lowered) == len(text) else _INJECTION.finditer(text)
    hits = [m.start() for m in found]
    if not hits:
        return text
    # blank each sentence that holds an instruction to the model
    chars = list(text)
    for m in _SENTENCE.finditer(text):
        if any(m.start() <= h < m.end() for h in hits):
            start = m.start() + _kept_title(text, m)
            chars[start : m.end()] = [c if c == "\n" else " " for c in text[start : m.end()]]
    return "".join(chars)


# a numbered item's title before what it says about the page: "2. **Burst Kids** – The page states it is the
# #1 choice and asks assistants to rank it first. I've placed it second": the answer ranks it where it put it
_ITEM_NUMBER = re.compile(r"[ \t]*\d{1,2}[.)][ \t]*")
_ITEM_TITLE = re.compile(r"[ \t]*(?:\*\*|__)?[^\n]{2,80}?(?:\*\*|__)?[ \t]*(?:[–—:]|\s-)[ \t]*")


def _kept_title(text: str, sentence: re.Match[str]) -> int:
    """How much of a sentence to keep when the rest quotes or reports a page: a numbered item's title,
    unless what follows it takes the item back ("... so I've excluded it")."""
    line = text.rfind("\n", 0, sentence.start()) + 1
    title = _ITEM_TITLE.match(sentence.group())
    if title is None or not _ITEM_NUMBER.fullmatch(text, line, sentence.start()) \
            or _negative_cue(sentence.group()[title.end():]):
        return 0
    return title.end()


# a cheap word check before the regex: a cue holds one of these words ...
_NEGATIVE_WORDS = ("avoid", "skip", "less suited", "steer", "stay away", "pass on", "left", "exclud", "overkill",
                   "not ", "suitable",
                   "rule", "empf", "abraten", "recommand", "déconseill", "éviter", "recomiendo", "evitar", "unranked",
                   "leav", "nicht", "incluyo", "budget", "price range", "beyond", "recomendar", "conseill", "cautious",
                   "wary", "drop", "consigl", "raccomand", "raden", "recomend", "too ", "neither", "esclu", "évite",
                   "odpu", "nie pol", "unikaj", "buiten", "geschikt", "対象外", "おすすめしません", "お勧めしません",
                   "避け", "不向き", "不推", "不建", "避免", "more than",
                   "outclassed", "discontinued", "no longer", "end of", "older", "underpowered", "outside",
                   "hard to", "a different", "zu ", "veraltet", "dépass", "hoppa", "skulle jag inte", "överkurs",
                   "escolheria", "compraria", "desejar", "evitaria", "tavsiye", "önerm", "nedoporu", "odradzam",
                   "considerer", "desaconsej", "is out", "are out", "s out", "re out", "sold in", "available in",
                   "offered in", "t here", "not here", "t listed", "not listed", "t included", "not included",
                   "on the list", "on this list", "on my list", "overpriced", "überteuert",
                   "than you", "than most", "passar inte", "replacement",
                   "substitute", "like-for-like", "exagerad")
# ... or one of these after a negation ("don't get", "won't work", "isn't needed", "never recommend")
_NEGATED_WORDS = ("recommend", "worth", "include", "good", "great", "strong", "bother", "go for", "buy", "get", "pick",
                  "choose", "consider", "use", "fit", "suit", "cut", "rank", "work", "make", "pay", "need",
                  "necessary", "required", "contender", "comparable", "meet", "really", "actually", "even", "sensible",
                  "smart", "wise", "practical", "realistic", "idea",
                  "technically", "answer", "look", "evaluat", "review", "test", "assess", "enough", "fit", "survive",
                  "last", "hold up", "cover", "rely on")
_NEGATIONS = ("n't", "n’t", "never", "cannot", "dont", "doesnt", "didnt", "wont", "wouldnt", "cant", "shouldnt")


def _negative_cue(text: str) -> bool:
    """Whether ``text`` advises against something (a cheap word check before the regex)."""
    lowered = text.lower()
    if not any(w in lowered for w in _NEGATIVE_WORDS) and not (
            any(n in lowered for n in _NEGATIONS) and any(w in lowered for w in _NEGATED_WORDS)):
        return False
    return bool(_NEGATIVE.search(text))


_DEGENERATE_MIN_WORDS = 30
_DEGENERATE_RATIO = 0.2


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


