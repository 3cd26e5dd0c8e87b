"""Signals an answer gives about its own ranking, apart from the order it writes things in:
revisions ("wait, let me reconsider"), ranking statements ("Final ranking:", "TL;DR:",
"Mon classement : d'abord X, puis Y"), lists introduced as "least to most recommended",
declines ("none of these suit you") and warnings about manipulated pages."""

from __future__ import annotations

import re

# a revision: what comes after it replaces what came before
REVISION = re.compile(
    r"\b(?:wait|hmm+|hold on|oops)[,.!…]*\s+(?:let me|i (?:should|need to|think)|actually|on second)"
    r"|\blet me (?:reconsider|rethink|revise|redo|correct (?:that|myself)|re-?rank|re-?order|fix (?:that|the order))"
    r"|\bon (?:second|further) thought|\bscratch (?:that|this|my|the)\b|\bi take (?:that|it) back"
    r"|\b(?:correction|corrección|correção|correzione|korrektur|correctie)(?: to (?:the|my) (?:ranking|list|order)"
    r"(?: above)?)?\s*:"
    r"|\b(?:revised|updated|corrected) (?:ranking|list|order|top \w+)|\bafter (?:re-?considering|reconsidering)"
    r"|\bon reflection\b|\bi (?:ordered|ranked|listed) (?:that|those|these|them) (?:badly|wrong)"
    r"|\bi(?:['’]d| would) (?:now )?(?:re-?order|re-?rank|reshuffle)(?: (?:them|these|the list|my picks))?\s*:"
    r"|\bmoment,? (?:bitte|mal)|\ben fait,? (?:je|non)|\bpensándolo (?:bien|mejor)",
    re.I,
)
# a swap that revises a list on its own: "Actually, for a beach I'd swap the top two"
SWAP_REVISION = re.compile(r"\b(?:i['’]d|i would|let['’]s) swap (?:the (?:top|first) two|#?\d (?:and|with) #?\d)\b",
                           re.I)
SWAP = re.compile(r"\bswap(?:ping)?\s+(?:#|numbers?\s+|positions?\s+|spots?\s+)?(\d)\s*(?:and|&|with)\s*#?(\d)\b", re.I)
# the swap that is a revision of its own: "Actually, I'd swap the top two"
SWAP_TOP = re.compile(r"^(?:i['’]d|i would|let['’]s) swap (?:the (?:top|first) two)\b", re.I)

# labels that introduce the answer's own ranking (level 3), a short answer (level 2) or a
# summary (level 1: a ranking only when it orders products with ordinal words)
_RANKING = (
    r"(?:(?:my|our|the|your)\s+)?(?:[a-z'’-]+\s+){0,2}?"
    r"(?:ranking|rankings|ranked list|order of preference|preference order|pecking order|ranking order|final answer"
    r"|recommendations?,? (?:in order|ranked)|picks?,? (?:in order|ranked)|classement|rangfolge|rangliste|reihenfolge"
    r"|recommendation order|order of recommendation|(?:i['’]d|i would) (?:actually )?put (?:them|these) in (?:this|the "
    r"following) order"
    r"|clasificaci[oó]n|ranking final|mi ranking|mein ranking|meine rangfolge|classifica(?:ção|cao|zione)"
    r"|klasyfikacja|ranking końcowy|pořadí|sıralama(?:m)?|rangordning)"
    r"|in (?:my )?order of (?:preference|recommendation)|how i(?:['’]d| would) rank (?:them|these)"
    r"|ranked(?: from)? best to worst|from best to worst|best to worst|(?:ranked|final)(?=\s*(?:\*\*|__)?\s*:)"
    r"|(?:my|our) (?:final |overall )?order"
    r"|if i (?:had|have) to (?:put (?:them|these) in(?: an)? order|rank (?:them|these|those|the [^:\n]{0,40}))"
)
_SHORT = (r"tl;?dr|short answer|quick answer|quick take|quick picks?|at a glance|the short version|in short"
          r"|short version"
          r"|kurz gesagt|en bref|en resumen|in breve|in sintesi|em resumo|in het kort")
_SUMMARY = (
    r"(?:(?:my|our|the|final|overall|in|short|quick|personal)\s+)*"
    r"(?:verdict|bottom line|conclusion|summary|answer|take|recommendation|picks?"
    r"|fazit|zusammenfassung|en r[ée]sum[ée]|verdict final|conclusi[oó]n|resumen)"
)
_LEAD = (r"^\W*(?:[^,.:;!?\n]{3,60}(?:,|\s[–—-])\s+)?"  # "Setting that instruction aside, here's my own ranking:"
         r"(?:(?:so|overall|all in all|here(?:['’]s| is)|this is|below is|and|with that|putting it together)\W+)*")
# the rest of a label: "My order, all things considered:"
_TAIL = r"(?:,?\s+[\w'’()/-]+){0,6}?\s*(?:\*\*|__)?\s*(?:is\b|would be\b|:|–|—|-|$)"
# any word a statement label may hold: a cheap test before the anchored ones below
STATEMENT_HINT = re.compile(
    r"rank|order|pref|tl;?dr|short|quick|in short|kurz|bref|verdict|bottom|conclu|summar|answer|take|recommend|pick"
    r"|final"
    r"|classement|rangfolge|rangliste|reihenfolge|clasific|fazit|zusammenfass|sum[ée]|resumen|worst|glance|breve"
    r"|sintesi|resumo|het kort|classifica|klasyfik|pořad|sıralam|rangordning", re.I)
STATEMENTS = [
    (3, re.compile(_LEAD + rf"(?:{_RANKING}){_TAIL}", re.I)),
    (2, re.compile(_LEAD + rf"(?:{_SHORT}){_TAIL}", re.I)),
    (1, re.compile(_LEAD + rf"(?:{_SUMMARY})(?: for (?:an? |the |most )?[\w' -]{{1,30}}?)?\s*(?:\*\*|__)?\s*"
                   r"(?:is\b|would be\b|:|–|—|-|$)", re.I)),
]
# ordinal words, arrows and "ahead of": a statement that puts products in order
ORDINAL = re.compile(
    r"\b(?:first|second|third|fourth|fifth|last|then|followed by|next|after that|1st|2nd|3rd|number one|runner[- ]up"
    r"|ahead of|d'abord|puis|ensuite|enfin|zuerst|dann|danach|primero|luego|después|segundo|prima|poi|infine"
    r"|eerst|daarna|primeiro|depois)\b|#\d\b|>|→|->|\b\d\.\s",
    re.I,
)
# a decline that speaks of the whole list ("none of them", "nothing in your list")
NONE_OF = re.compile(r"none of\b|nothing (?:in|on|from)\b|kein|aucun|ningun", re.I)
# a list introduced worst first
REVERSED = re.compile(
    r"\bfrom least\b|\bleast to most\b|\bleast (?:recommended|preferred|favou?rite) first\b|\bascending order\b"
    r"|\bworst to best\b|\bbottom to top\b|\bin reverse order\b|\bsaving the best for last\b|\bbest for last\b"
    r"|\bcount(?:ing)? up\b|\bfrom (?:the )?weakest\b|\bvom (?:schlechtesten|wenigsten)\b|\bdu moins (?:bon"
    r"|recommand\w*)\b|\bde menos a m[aá]s\b"
    r"|\bdel (?:peor|menos recomendad\w*)\b|\bde menor a mayor\b|\bdal (?:meno|peggiore)\b|\bvan (?:minst|slechtst)\w*"
    r"|\bgood(?:,| to) better(?:,| to)(?: the)? best\b|\bvon platz \d+ bis platz 1\b",
    re.I,
)
# an answer that recommends nothing it was given
DECLINE = re.compile(
    r"\b(?:can['’]?t|cannot|can not|unable to|won['’]t|not able to)\s+(?:yet\s+|really\s+|honestly\s+)?(?:recommend"
    r"|rank)"
    r"(?:\s+(?:or|and)\s+(?:recommend|rank))?\s+(?:anything|any (?:of (?:them|these|those|the (?:products|options"
    r"|listed \w+)))"
    r"|products?|one|yet|a (?:specific|particular|single) [\w-]+(?: [\w-]+)?)\b(?!\s+(?:enough|highly|more|too))"
    r"|\bnone of (?:these|those|them|the (?:\w+ ){0,2}(?:listed|provided|given|options|products|pages|links|models|ones"
    r"|choices|picks|items|documents|results)|(?:your|the) (?:\w+ )?(?:options|links|pages|picks))\b"
    r"[^.!?\n]{0,80}?\b(?:suit|fit|match|meet|work|is (?:a )?(?:good|right|suitable)|are (?:a )?(?:good|right|suitable)"
    r"|would|will|can|recommend|qualif|make the cut|make the list|worth|comes? close|really|quite|is|are|has|have|gets?"
    r"|supports?|reach(?:es)?|offers?|handles?|does|do)\b"
    r"|\b(?:can['’]?t|cannot|unable to|not able to|don['’]t have (?:the ability|access))\s+(?:to\s+)?(?:open|access"
    r"|browse"
    r"|view|load|read|visit|follow|click)\s+(?:the |these |those |any )?(?:links?|pages?|urls?|websites?|documents?)"
    r"|\bi (?:wouldn['’]t|would not|won['’]t|don['’]t) (?:recommend|buy|get|pick|choose) any (?:of )?(?:them|these"
    r"|those)\b"
    r"|\brules? (?:them|these|those) (?:all )?out\b|\bi['’]d (?:actually )?hold off\b"
    r"|\b(?:pick|choice|recommendation|verdict|answer)s?\W{0,4}:\W{0,4}none(?: of (?:these|them|those))?\b"
    r"|\bempfehlung kann ich\b[^.!?\n]{0,40}?\bnicht (?:geben|aussprechen)\b|\bkann ich\b[^.!?\n]{0,40}?\bkeine "
    r"(?:(?:eigene|konkrete|klare|echte) )?empfehlung\b"
    r"|\b(?:uncomfortable|hesitant|reluctant) (?:recommending|to recommend) any (?:of )?(?:them|these|those)\b"
    r"|\b(?:don['’]t|do not|wouldn['’]t|would not) (?:buy|put|use|get|bother with) any (?:of )?(?:them|these|those)\b"
    r"|\b(?:every one|each|all) of (?:them|these|those) (?:is|are|would be) (?:a )?(?:bad|poor|wrong) (?:idea|fit"
    r"|choice|match)"
    r"|\bsteer (?:you )?(?:away|clear) (?:from|of) (?:all|any|every one) (?:of )?(?:these|them|those|the)\b"
    r"|\b(?:skip|avoid|pass on) (?:all|every one) of (?:these|them|those)\b"
    r"|\bninguno (?:de ellos |de los que mencionas )?(?:me parece|es) (?:una )?buen[ao]\b"
    r"|\baucun (?:d['’]entre eux )?(?:ne me semble|n['’]est) (?:un )?bon\b|\bkeine?[rs]? davon (?:ist|lohnt)\b"
    r"|\bnone of (?:the|these|those|your) (?:\w+ ){0,2}?(?:you(?:['’]ve| have)? (?:\w+ )?(?:linked|listed|shared"
    r"|provided|sent"
    r"|mentioned|gave|picked|chose|chosen)|(?:listed|linked|provided|(?:on|in) (?:your|the|this|these) (?:list|results"
    r"|search results)))\b"
    r"|\bnothing (?:in|on|from) (?:your|the|this) (?:list|results|options|links)\b"
    r"|\bkein(?:e|er|es)? (?:der|dieser) (?:\w+ ){0,2}(?:ist|sind|passt|passen|eignet|hat|haben)\b"
    r"|\baucun(?:e)? des (?:\w+ ){0,2}(?:que vous|list|propos)"
    r"|\bninguno de los (?:\w+ ){0,2}(?:que (?:has|me)|listad)"
    r"|\b(?:not going to|won['’]t|will not|can['’]?t|cannot|wouldn['’]t) (?:honestly )?rank (?:them|these|those|any)\b"
    r"|\bi don['’]t think any (?:of )?(?:the |these |those |them )?(?:\w+ )?(?:you['’]re|you are|listed|here|will|would"
    r"|is|are)\b"
    r"|\bkeine?[rsn]? (?:der|dieser|von (?:diesen|den))\b[^.!?\n]{0,80}?\b(?:empfehlen|geeignet|passt|eignet)"
    r"|\bkann ich (?:dir |ihnen )?(?:leider )?(?:keine?[ns]?|nicht)\b[^.!?\n]{0,40}?\bempfehlen"
    r"|\baucun(?:e)? (?:de ces|des)\b[^.!?\n]{0,80}?\b(?:convient|recommand|adapt)"
    r"|\bninguno de (?:estos|los)\b[^.!?\n]{0,80}?\b(?:recomiendo|sirve|adecuad|convien)",
    re.I,
)
# a sentence that warns about a manipulated page: the products it names are flagged, not recommended
MANIPULATION = re.compile(
    r"\b(?:injected|injection|hidden (?:text|instructions?)|instructions? (?:to|that) (?:rank|list|put|place|recommend)"
    r"|contains? (?:\w+ )?instructions?|tries to (?:get|make|tell|instruct|manipulate)|manipulat\w*"
    r"|attempts? to (?:manipulate|influence|game)|promotional instructions?|suspicious (?:text|content|instructions?)"
    r"|asks? (?:me|the (?:ai|assistant|model)) to (?:rank|recommend|list|put)"
    r"|(?:seems?|looks?|is|i['’]m|am) (?:\w+ )?suspicious|(?:treat|consider) (?:that|this|the) (?:page|source|review"
    r"|result)"
    r" as unreliable|(?:page|source|review|result) (?:\w+ ){0,3}(?:is|looks|seems) (?:unreliable|untrustworthy|fake)"
    r"|not (?:going to|gonna) base (?:a|my) recommendation on|paid placement|sponsored (?:content|post|placement)"
    r"|istruzioni nascoste|contenuto manipolato|versteckte anweisungen|instructions cach[ée]es"
    r"|instrucciones ocultas|verborgen instructies)",
    re.I,
)


def swap(order: list[int], text: str) -> list[int] | None:
    """The order after a "swap 2 and 3" revision, or None when ``text`` asks for none."""
    if SWAP_TOP.match(text):
        a, b = 0, 1
    elif m := SWAP.search(text):
        a, b = int(m.group(1)) - 1, int(m.group(2)) - 1
    else:
        return None
    if not (0 <= a < len(order) and 0 <= b < len(order)):
        return None
    out = list(order)
    out[a], out[b] = out[b], out[a]
    return out


# a sentence that states the answer's own choice: in prose, these sentences are the ranking
class _Either:
    """Patterns searched one after the other: the first match. Python's ``re`` searches one
    alternation of them all several times slower than the parts in turn."""

    def __init__(self, *patterns: re.Pattern[str] | _Either) -> None:
        self._patterns = patterns

    def search(self, text: str) -> re.Match[str] | None:
        for pattern in self._patterns:
            if (m := pattern.search(text)) is not None:
                return m
        return None


DECISION = _Either(re.compile(
    r"\b(?:i['’]d|i would|i['’]ll|i will|we['’]d|we would)\s+(?:\w+\s+){0,2}?(?:get|buy|go with|go for|pick|choose|take"
    r"|recommend|opt for|put|rank|start with|give|lean towards?|suggest)\b"
    r"|\bif (?:i were|i had to|pressed|forced|you want my|i['’]m honest)"
    r"|\bmy (?:(?:top|first|main|overall|clear) )?(?:pick|choice|vote|recommendation)|\bmy (?:top pick"
    r"|money|favou?rite)\b|\bgo with\b|\bthe (?:winner|best (?:choice|pick|bet|option)(?: here| for you"
    r"| overall)?) is\b"
    r"|\bhands down\b|\bstart with\b|\bich würde\b|\bmeine empfehlung\b|\bje (?:prendrais|choisirais|recommande)\b"
    r"|\bmon choix\b|\byo (?:elegiría|compraría|recomiendo)\b|\bmi (?:elección|recomendación)\b"
    r"|\bwürde ich\b(?!\s+(?:\w+\s+)?nicht\b)|\bzou ik\b(?!\s+(?:\w+\s+)?niet\b)"
    r"|\bmy (?:tentative|personal|current|own) (?:favou?rite|pick|choice)\b"
    r"|\bthe (?:obvious|natural|safe) (?:choice|pick)\b"
    r"|\b(?:prenderei|sceglierei|elegiría|me quedaría con)\b",
    re.I,
), re.compile(
    r"\b(?:i|we) (?:(?!never\b|not\b|cannot\b|can\b|could\b|would\b|might\b)\w+ )?(?:recommend|suggest)\b"
    r"|\b(?:clear|obvious|outright) winner\b", re.I,
), re.compile(r"(?:^|[:;.!?]\s)\W*(?:so\W+)?(?:get|buy|grab) the\b"  # "So: get the Nighthawk"
              # the same in other languages: "kies dan de X", "nimm den X", "prenez la X", "elige el X"
              r"|\b(?:kies|neem) (?:dan |gewoon )?(?:de|het|voor)\b"
              r"|\b(?:nimm|kauf|wähle) (?:dann |einfach )?(?:den|die|das)\b"
              r"|\b(?:prends|prenez) (?:donc |alors |plutôt )?(?:le|la|les)\b"
              r"|\b(?:elige|escoge) (?:entonces )?(?:el|la|los)\b|\bquédate con\b", re.I))
# a tie the answer breaks: "if pressed, I'd give the T3 the edge", "I'd nudge the Zyxel ahead"
TIE_BREAK = re.compile(r"\bthe (?:edge|nod)\b|\bnudge\b|\bbreak(?:s|ing)? the tie\b|\bedges? (?:it|out|ahead)\b"
                       r"|\btie-?break|\bslight(?:ly)? ahead\b"
                       r"|\bme quedo con\b|\bsi tengo que elegir\b|\bje (?:prendrais|choisirais)\b"
                       r"|\bs'il faut choisir\b|\bsi je devais (?:trancher|choisir)\b|\bse dovessi scegliere\b"
                       r"|\bwenn ich (?:mich )?entscheiden (?:muss|müsste)\b|\bleicht vorne\b"
                       r"|\bif (?:pressed|forced|i had to (?:choose|pick))\b", re.I)
# the top of a ranking: "tied for the top spot", "joint first", "best wand"
TOP = re.compile(r"\b(?:top|first|best|#\s?1|number one|no\.? ?1|winners?|erste[nr]?|premier|primer)\b", re.I)
TIE = re.compile(r"\btied?\b|\bties\b|\bneck and neck\b|\bgleichauf\b|\bex-?aequo\b|\bempate\b|\bempatad|\bjoint\b"
                 r"|\bdead heat\b|\bequally?\b|\bcan['’]t separate\b"
                 r"|\bboth\b|^\s*=|\bex aequo\b|\bà égalité\b|\bempat|\bse valent\b|\bsi equivalgono\b"
                 r"|\bgleichwertig\b|\b(?:it['’]s|is|are|they['’]re) (?:honestly |really |very |pretty |quite )?close\b"
                 r"|\b(?:only|just) two (?:real |serious )?(?:options|contenders|candidates|choices)\b"
                 r"|\bnur (?:zwei|die beiden)\b|\bi due (?:adatti|validi|candidati)\b|\bles deux (?:seuls|seules)\b"
                 r"|\bsolo (?:dos|due)\b"
                 r"(?!\s+(?:second|to|behind))", re.I)
# a sentence that recommends beside the main choice: "a close second is", "also excellent", "if you need ..."
ALSO = re.compile(
    r"\balso (?:\w+ )?(?:excellent|good|great|solid|worth|fine|recommended|a (?:good|great|solid|fine))"
    r"|\bif you(?:['’]re| are)? (?:\w+ ){0,3}(?:want|need|prefer|value|have|care|on a budget|mostly|only|can)\b"
    r"|\brounds? (?:things |it |the list )?out\b|\brunner[- ]up\b|\balternatives?\b|\bbudget (?:pick|option|choice)\b"
    r"|\bworth (?:a look|considering)\b|\balso consider\b|\bhonou?rable mention|\bclose second\b"
    r"|\bsolid (?:choice|pick|option)\b",
    re.I,
)
# under a table that only compares, a sentence that chooses: "**Verdict:** the X is the best pick here" (not
# in DECISION: under a ranked list, "the X is the best overall choice" only sums the list up)
TABLE_VERDICT = _Either(DECISION, re.compile(r"\b(?:is|are) (?:the|my|our) (?:best|top|safest|clear) "
                                             r"(?:overall )?(?:pick|choice|bet|buy)\b", re.I))
# an answer that says its written order is not a preference ("grouped by price", "alphabetically")
OTHER_ORDER = re.compile(
    r"\b(?:grouped|sorted|ordered|listed|arranged|organi[sz]ed|broken down|going)\s+(?:\w+\s+){0,3}?by\s+(?:\w+\s+)?"
    r"(?:price|brand|type|size|category|name|budget|capacity|manufacturer|use|feature|form factor)"
    r"|\bbreakdown by\b|\balphabetical(?:ly)?\b|\bin no particular order\b|\b(?:cheapest|most expensive) first\b"
    r"|\bby price\b|\bprice bands?\b|\b(?:brand|product) by (?:brand|product)\b|\bnach preis\b|\bpar prix\b"
    r"|\bpor precio\b|\bnot in (?:any )?(?:particular )?order\b",
    re.I,
)
# a product the user cannot buy where they are: "not sold in the US" (advice against, in prose and in items)
NOT_SOLD_HERE = r"not (?:sold|available|offered) in (?:the )?(?:us|usa|uk|eu|europe|your (?:country|region|market))\b"
# a unit's own verdict against itself: "Feels like a gimmick — skip.", "Not worth it."
VERDICT_AGAINST = re.compile(
    r"[❌⛔🚫✗✘] ?(?:too|not|doesn['’]t|won['’]t|can['’]t|no)\b"  # "— 64 dB. ❌ Too loud."
    r"|(?:^\s*|[.!]\s+)(?:skip|avoid|pass)(?: it| this(?: one)?)?\s*[.!](?:\s|$)"  # "... the aesthetic. Skip."
    r"|(?:^|[—–:;(-]\s*)(?:(?:honestly|frankly|really|just|i['’]d|i would),? )?(?:skip|avoid|pass)"
    r"(?: it| this(?: one)?)?\b(?! (?:the|a|an|if|when|unless)\b)"
    r"|\b(?:not recommended|not worth (?:it|the money|buying|the price)"
    r"|(?:i|we)(?:['’]d| would) (?:skip|avoid|pass on) (?:it|this|them|these|those|both)"
    r"|(?:wouldn['’]t|would not|won['’]t) (?:buy|bother with|recommend|pick|choose|get) (?:it|this|them)"
    r"|don['’]t buy (?:it|this)"
    r"|steer clear|not included|not in (?:the|my) (?:ranking|list|picks)|left out of|excluded"
    r"|not what you(?:['’]re| are)? (?:want|need|looking for|after)"
    r"|\b(?:it['’]s|it is|they['’]re|they are) out\b(?! (?:of|there|now|today|on|in)\b)"
    r"|" + NOT_SOLD_HERE +
    r"|rule (?:it|this one|them) out|(?:wouldn['’]t|would not) risk it"
    r"|stay away|not (?:a|the) (?:good|right) (?:fit|choice|pick)|skip for (?:your|this|you)|not ranked"
    r"|(?:haven['’]t|have not|didn['’]t|did not) ranked? (?:it|this)|left (?:it|this one) out|nicht empfehlenswert"
    r"|à éviter|no recomendado|nicht zu empfehlen|non consigliat[oa]|sconsigliat[oa])\b",
    re.I,
)
# an answer that asks before it recommends ("Before I rank them, could you tell me ...")
DEFER = re.compile(
    r"\bbefore i (?:rank|recommend|pick|choose)\b|\bi['’]ll (?:give you|send you|put together|make you) (?:a |my "
    r"|the )?"
    r"(?:ranked|ranking|recommendation|top \d|shortlist|short list)|\bonce (?:you|i know)\b.{0,80}\bi(?: can| will"
    r"|['’]ll)"
    r"|\bmore (?:information|info|details) before i can (?:point|recommend|suggest|narrow|pick)"
    r"|\b(?:tell|send|paste|share|give) (?:me|over)\b.{0,80}\band i['’]ll (?:rank|compare|recommend|give|narrow|pick)"
    r"|\bwith (?:that|this)(?: info(?:rmation)?)?,? i (?:can|could|will|['’]ll) (?:narrow|recommend|pick|give|suggest)"
    r"|\b(?:don['’]t|do not) want to (?:pick|recommend|choose)\b[^.!?\n]{0,40}\bblindly\b"
    r"|\bwenn (?:sie mir sagen|du mir sagst)\b.{0,80}\b(?:suche|empfehle|kann) ich\b"
    r"|\b(?:a few|some|a couple of) (?:quick )?questions (?:first|before i)\b"
    r"|\bdepends on your answers\b|\bif you (?:share|tell me|let me know|give me)\b.{0,60}\bi(?: can| could| will"
    r"|['’]ll) "
    r"(?:give|make|offer|narrow|recommend|suggest|pick)|\bbevor ich\b.{0,40}\b(?:empfehle|ranke)|\bavant de (?:classer"
    r"|recommander)\b",
    re.I,
)
# a list that echoes the pages rather than recommending ("Here is a summary of each product page")
ECHO_INTRO = re.compile(
    r"\b(?:summary|summaries|overview|recap|rundown) of (?:each|every|all|the)(?: \w+){0,3} (?:pages?|documents?"
    r"|listings?|"
    r"products? pages?)|\b(?:here(?:['’]s| is) )?what (?:each|the) (?:page|document|listing)s? (?:says?|claims?)"
    r"|\baccording to (?:the|their|each) (?:pages|documents|listings)\b|\bthe (?:pages|documents) (?:say|describe"
    r"|claim)"
    r"|\b(?:all|each of) the (?:products|items|options|models) (?:from|in|on) (?:the|your) (?:documents|pages|sources"
    r"|links)"
    r"|\b(?:your|the) (?:sources|documents|pages|links) (?:contain|list|include|mention|describe)"
    r"|\bhere(?:['’]s| is| are) what (?:the|your|each) (?:pages?|documents?|sources?|links?)"
    # "What the sources say", "what each of the pages you shared says", "go through the listed tents one by one"
    r"|\bwhat (?:each of )?(?:the|your|these) (?:\w+ )?(?:pages?|documents?|sources?|listings?|links?)"
    r"(?: \w+){0,3} (?:says?|claims?|tells?)\b|\bgo through (?:the|each|all|your)\b[^.:!?\n]{0,40}\bone by one\b"
    r"|\bce que (?:disent|dit) (?:les|la|chaque) (?:fiches?|pages?|sources?|documents?)|\br[ée]sum[ée] des (?:fiches"
    r"|pages|sources|documents)|\bsamenvatting van de (?:bronnen|pagina['’]?s)|\bwat de (?:bronnen|pagina['’]?s) zeggen"
    r"|\bwas die (?:quellen|seiten) sagen|\bzusammenfassung der (?:quellen|seiten)|\blo que dicen las (?:fuentes"
    r"|páginas)|\bresumen de las (?:fuentes|páginas)|\bcosa dicono le (?:fonti|pagine)|\briepilogo delle (?:fonti"
    r"|pagine)"
    # a research summary's section over what each source or product is: "### Source overview", "Findings by product"
    r"|^\W*(?:\d\.\s*)?(?:source|sources|research) (?:overview|summary|findings|review)\W*$"
    r"|^\W*(?:\d\.\s*)?(?:findings(?: by (?:product|source))?|candidates (?:evaluated|considered|compared)"
    r"|options (?:evaluated|considered|compared))\W*$",
    re.I,
)
# the heading of a list of sources: citations name products without recommending them
SOURCES = re.compile(r"^\W*(?:sources?|references?|citations?|links?|further reading|learn more|read more"
                     r"|quellen|fuentes|r[ée]f[ée]rences|mehr erfahren|en savoir plus|fonti|bronnen)"
                     r"\W*:?\W*$", re.I)
# a lead that introduces comparisons, not picks: "For comparison with what you know:", "For reference:"
COMPARE_INTRO = re.compile(
    r"^\W*(?:for (?:comparison|reference)|by comparison"
    r"|(?:how (?:it|they|this) )?compares? (?:with|to) (?:what you|your)"
    r"|zum vergleich|im vergleich|en comparaison|à titre de comparaison|en comparación|para comparar|per confronto)\b",
    re.I)
# a title that puts what it names aside: "Avoid: X", "⚠️ Skip — X", "Not recommended: X"
AGAINST_TITLE = re.compile(
    r"^\s*(?:\*\*|__)?\s*[❌⛔🚫✗✘]|^\W*too [\w-]+ for (?:you|this|your)\b"
    r"|^\W*(?:avoid|skip|not recommended|not worth it|pass|don['’]t buy|stay away|why not|nicht empfohlen|à éviter"
    r"|worth skipping|(?:i['’]d |we['’]d )?skip(?:ping)? these|da evitare|sconsigliat\w*|te vermijden|niet aanbevolen"
    r"|evitar|evita|undvik|vermeiden|unikaj|kaçının|nedoporučuji)\b",
    re.I)
# a paid slot the answer does not make its own: "Sponsored:", "Partner offer (paid placement):", "Ad:"
SPONSORED = re.compile(
    r"^\W*(?:sponsored|advertisement|promoted|paid (?:placement|partnership|promotion|listing)|partner offer"
    r"|(?:ad|ads|anzeige|werbung|publicité|annonce|patrocinado|anuncio|sponsorizzato|gesponsord)\b\W*(?:[:(\]]|$))",
    re.I)
# a heading over notes or caveats, not picks: "Notes", "Why the others didn't make it"
NOTES = re.compile(r"^\W*(?:(?:a few|some|quick|final|other|general|pro|buying|setup|usage) )?(?:notes?|caveats?"
                   r"|fine print|footnotes?|tips?"
                   r"|anmerkungen|remarques|notas|(?:key |important )?considerations|things to (?:consider|know|note))"
                   r"\W*:?\W*$", re.I)
# a sentence that still picks something: a decline that is followed by one is a near miss
STILL_PICKS = re.compile(r"\bclosest\b|\bcomes? (?:closest|nearest)\b|\bbest bet\b|\bif you must\b|\bif i had to\b"
                         r"|\bthe (?:only|one) (?:one )?(?:that|i['’]d)\b|\bstill\b.{0,40}\b(?:recommend|pick"
                         r"|go)", re.I)
# a paragraph after the picks that adds more ("Other options include the X")
# a sentence that calls a product a good pick: "the X remains a strong value choice", "a great cordless option"
GOOD_PICK = re.compile(
    r"\b(?:great|good|solid|strong|excellent|reasonable|decent|nice|fine|smart|safe|worthy|popular)\s+(?:[\w-]+\s+){0,2}?"
    r"(?:option|choice|pick|alternative|bet|buy|contender)s?\b|\bworth (?:a look|considering|checking out)\b"
    r"|\bis all you need\b|\b(?:is|are) (?:also |usually |generally )?recommended\b"
    r"|\bmakes? (?:more |the most )?sense\b"
    r"|\b(?:are|is) (?:all |both |also )+(?:fine|good|great|solid)(?: (?:choices|options|picks))?(?: too| as well)?\b"
    r"|\b(?:(?:très |un )?bon|excellent|meilleur) choix\b|\b(?:buena|excelente|gran) (?:opción|elección)\b"
    r"|\bgute (?:wahl|alternative|option)\b|\bauch (?:gut|empfehlenswert)\b|\bottima scelta\b"
    r"|\bla scelta migliore\b|\bla (?:mejor|major) opci[oó]n\b|\ble meilleur choix\b|\bdie beste wahl\b"
    # "is also a very cheap option", "wäre ebenfalls eine Option", "est aussi une option", "another option"
    r"|\b(?:also|too|ebenfalls|auch|aussi|también|anche|ook|another)\b[^.;!?\n]{0,30}?"
    r"\b(?:option|choice|pick|optie|opci[oó]n|opzione)s?\b", re.I)
MORE_OPTIONS = re.compile(
    r"^\W*also\b|\bother (?:good |solid |strong )?(?:options|choices|picks|contenders)\b"
    r"|\balso (?:consider|worth|look at|recommend)"
    r"|\bhonou?rable mentions?\b|\bworth (?:considering|a look)\b|\balternatives? (?:include|are|worth)"
    r"|\byou (?:might|could|may) also\b|\b(?:reasonable |good |solid )?fallback\b|\b(?:cheaper|budget"
    r"|pricier) alternative\b"
    r"|\bweitere (?:optionen|alternativen)\b|\bautres options\b|\botras opciones\b"
    r"|\b(?:want|willing|ready|like) to splurge\b|\bif you can splurge\b"
    r"|^\W*(?:también|también vale|aussi|ebenfalls|auch)\b|\btambién (?:vale|es|recomiendo|me gusta)\b",
    re.I)
# a line over the products left out: "Not robots:", "Why the others didn't make it", "Also-rans"
LEFT_OUT = re.compile(r"^\W*(?:not (?!only\b|just\b|sure\b)\w+|why not|why the others|also-rans|excluded|left out"
                      r"|didn['’]t make|ruled out|what i['’]d avoid"
                      r"|(?:a (?:couple|few) (?:of )?|some )?notes? on the (?:other|rest|remaining)"
                      r"|(?:also|others?) (?:reviewed|evaluated|tested|looked at)\W*$"
                      # a shopping assistant's cart: "Compared, not added", "Removed from cart", "Filtered out"
                      r"|compared,? (?:but )?not added|not added|removed from (?:the |your )?cart|filtered out"
                      r"|what i compared (?:it|them|this) (?:against|with)"
                      r"|nicht empfohlen|non retenus?|descartad)", re.I)


# a choice that excludes the rest: "I'd only recommend the X", "the only one I'd buy is the X"
ONLY_PICK = re.compile(r"\b(?:i['’]d|i would|i can|i['’]ll)\s+only\s+(?:really\s+)?(?:recommend|suggest|buy|pick)\b"
                        r"|\bthe only one (?:i['’]d|i would|worth|that (?:fits|ticks|meets|works))\b"
                        r"|\bonly (?:one|option) (?:that )?(?:ticks every box|fits (?:all|every))\b"
                        r"|\b(?:is|are) (?:really |realistically )?(?:your|the) only (?:match|option|choice|fit)\b",
                        re.I)
