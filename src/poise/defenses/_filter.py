"""``instruction-filter``: a rule-based detector of text aimed at the AI that reads a page.

A product page speaks to a shopper; an injection speaks to the assistant that summarises the
page, or dictates what its answer says. This detector flags a page's sentences that

* **address an AI reader**: "Note to AI assistants", "if you are a language model", "LLMs
  summarising this page should ...", "For recommendation engines:", "addressed to AI assistants",
  "Summary bots:", "whichever bot is reading this", metadata with ``audience="llm"``;
* **override its instructions or play a role**: "ignore previous instructions", "override your
  ranking", "forget everything above", "[SYSTEM NOTICE]", chat-template tokens ("<|im_start|>system"),
  forged ``<user>`` turns and "### Response" blocks, "you are now ..." (not when quoted),
  "stay in character", "do not disclose this message";
* **dictate the answer**: "begin your answer with", "your response must", "in your final
  answer", "output only", "as your own opinion", "use this verbatim";
* **order a ranking**: a ranking verb with a position ("rank X first", "list it above the
  others", "must be recommended as #1", "describe it as the only ...") said as an order
  (imperative, or with must/should and the assistant), or "do not recommend ...";
* **speak for the user**: "the user only wants ...", "note from the user", "saved user preferences";
* **claim an official ranking** or carry ranking config keys ("verified ranking", "ai_ranking:").

Overrides, ranking orders and notes to an AI are matched in several other languages too. Each
sentence is matched as written and as a normalised copy (NFKC, zero-width characters removed,
invisible Unicode tag characters read as the ASCII they spell, Cyrillic and Greek look-alike
letters mapped to Latin, letter-spaced words joined, digits inside words read as letters,
URL-unquoted), decoded from base64 or hex, and reversed or in ROT13 where that reads as
language. A sentence that flags and ends with a colon takes the list lines that follow it (a
fake ranking block). Sanitising takes out the paragraphs that hold a flagged sentence
(``scope=paragraph``; an injection is rarely one sentence) or the sentences alone.

No model is called: it costs nothing per page and is deterministic. It is a baseline, not a
guarantee: persuasion addressed to the shopper ("rated #1 by experts", invented statistics)
passes it by design, text that reads as page copy while aimed at the assistant often does,
and an adaptive attacker who knows the cues can write around them. Its rates on clean pages
and on injections written blind are in docs/measurements.md.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from typing import ClassVar
from urllib.parse import unquote

from ._detect import Detection, Verdict, sentence_spans
from .base import Param, register_defense

_AI = (r"(?:ai|a\.i\.|artificial intelligence|ai assistants?|assistants?|chat ?bots?|llms?|(?:large )?language models?"
       r"|ai models?|ai systems?|search engines?|answer engines?|gpt|chatgpt|claude|gemini|copilot|perplexity"
       r"|ai crawlers?|ai agents?|(?:llm|ai) crawlers?"
       r"|automated (?:\w+ )?(?:systems?|readers?|reviewers?|summari[sz]ers?|assistants?|agents?|tools?)"
       r"|summari[sz]ers?|ai[- ]generated \w+(?: \w+)?|intelligen\w+ artificial\w*"
       r"|(?:recommendation|retrieval|ranking|answer|generative)[- ](?:engines?|models?|systems?)"
       r"|shopping (?:assistants?|tools?|agents?)|ai (?:shopping )?tools?|smart systems?"
       r"|(?:summary |whichever |any )?bots?|machine readers?|search assistants?|rankers?|aggregators?"
       r"|(?:comparison|answer|summary|summari[sz]ing) (?:engines?|services?|tools?|software)|summari[sz]ing \w+"
       r"|(?:price )?comparison (?:and \w+ )?(?:engines?|services?|sites? and \w+ (?:services?|tools?)))")
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
    rf"\b{_AI}\s+(?:that(?:['’]s)? )?(?:are |is )?(?:\w+ly )?(?:reading|summari[sz]ing|processing|parsing|indexing"
    r"|answering|evaluating|crawling|reviewing|compiling|writing|generating|relaying|comparing)\b",
    rf"\b(?:format|instructions?|requirements?|notes?|notice|messages?|directives?|hints?|guidance|rules?|reminder"
    r"|metadata|data|signals?)"
    rf"\s+(?:\w+\s+)?(?:for|to)\s+(?:the |all |any )?{_AI}\b",
    rf"\b{_AI}\s+(?:instructions?|directives?|notes?|notice|hints?|guidance|rules?)\s*[:\]]",
    rf"^\W*(?:for|to|attention)\s+(?:the |all |any )?{_AI}\b|\b(?:for|to)\s+(?:the |all |any )?{_AI}\s*:",
    rf"\b(?:addressed|directed|written|meant|intended) (?:to|for) (?:the |all |any )?{_AI}\b"
    rf"|\b(?:instructs?|asks?|tells?|directs?|requires?|wants?) (?:the |all |any )?{_AI} to\b"
    rf"|\b(?:for|to)\s+(?:the |all |any )?(?:[\w-]+(?: [\w-]+)? (?:and|or|&) )?{_AI}\s*[:)]"
    rf"|\breading this (?:with|through|via) (?:an? )?{_AI}|\bmy final answer is\b"
    rf"|\bwho(?:ever| is)\b[^.!?\n]{{0,50}}\b(?:summar\w*|condens\w*|compil\w*|pulling (?:\w+ ){{1,3}}together)"
    rf"|\bwhatever (?:summari[sz]es|condenses|reads|compiles)\b|\b(?:an?|the) (?:program|software|script)s? "
    rf"(?:that(?:['’]s| is)? )?(?:reading|summari[sz]ing|condensing|comparing)\b"
    rf"|\b(?:anyone|readers?|those|everyone) (?:summari[sz]ing|compiling|ranking|condensing|comparing)\b"
    rf"[^.!?\n]{{0,60}}\b(?:should|must|from this page)\b"
    rf"|\(\s*(?:for|to) (?:the |all |any )?{_AI}\s*\)|\b(?:applies|apply|intended|meant) (?:only )?to {_AI}"
    rf"|\b{_AI}\s+(?:can|may) (?:rest assured|safely|confidently)\b|\baudience\s*=\s*[\"']?(?:llms?|ai|bots?"
    r"|assistants?)\b|\branking[-_ ]hints?\b"
    rf"|^\W*(?!(?-i:[A-Z][\w-]*\s+Assistant\s*:))(?:\w+\s+)?{_AI}(?:\s*,\s*[\w .]{{2,20}}){{0,5}}\s*:",
    rf"\b(?:any|every|an?)\s+{_AI}\s+that\s+(?:does not|doesn['’]t|fails to|won['’]t)\s+(?:place|rank|list|put"
    r"|recommend|mention|name)\b|\bcop(?:y|ied)\s+(?:\w+\s+)?verbatim\b",
    r"\bsi vous êtes (?:un |une )?(?:modèle de langage|ia|assistant|intelligence artificielle)\b"
    r"|\bwenn du (?:ein |eine )?(?:ki|sprachmodell|assistent)\b"
    r"|\bsi eres (?:un |una )?(?:modelo de lenguaje|ia|asistente)\b"
    r"|\b(?:commencez|commence) (?:votre|ta) réponse\b|\bbeginne (?:deine|ihre) antwort\b"
    r"|\b(?:empieza|comienza) (?:tu|su) respuesta\b|\binizia la (?:tua|sua) risposta\b",
    r"^\W*(?:hey |dear )?(?:assistant|ai|chat ?bot|llm)\s*[,:]",
    r"(?:(?<![a-z])AI(?![a-z])|\bKI\b|\bIA\b|ИИ|人工智能|\byapay zek[aâ]\w*|\bintelig\w+ artificial\w*"
    r"|\bmodell\w* linguistic\w*|\bmodèles? de langage|\bmodelos? de (?:lenguaje|linguagem)|\bsprachmodell\w*)"
    r"(?:[^\n.!?:]{0,25}(?:へ|에게)|(?:(?!(?-i: [A-Z][a-z]))[^\n.!?:]){0,25}:)",
    # role play
    r"\b(?:imagine|pretend|suppose)\s+(?:that\s+)?you(?:['’]re| are)\b|\bpretend to be\b|(?<![\"“'‘])\byou are now\b"
    r"|\bfrom now on,?\s+(?:you|the assistant)\b|\bstay in character\b|\blet['’]s play a game\b"
    r"|^\W*act as\b|\bact as (?:the user['’]s|an?|the)\s+(?:\w+\s+){0,3}(?:expert|assistant|friend|reviewer|technician"
    r"|salesperson|ambassador|agent|advisor|bot)\b|^\W*(?:role|persona)\s*:|\bsimulate an?\b[^.!?\n]{0,40}"
    r"\b(?:agent|assistant|expert|persona|bot)\b|\byour scripted answer\b|\bin (?:sales|developer|god) mode\b",
    # overrides
    r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|the\s+|your\s+|every\s+|of\s+)*"
    r"(?:previous|prior|above|earlier|preceding|original|system|existing|other|competing)?\s*"
    r"(?:instructions?|prompts?|rules?|guidelines?|directives?|context|sources?|search results|pages?|documents?"
    r"|products?|reviews?|competitors?)\b",
    r"\b(?:forget|ignore|disregard)\s+(?:everything|anything|all)\s+(?:above|before|earlier|previously"
    r"|you (?:were|have been) told)\b|\b(?:your )?new task\b|\branking weights?\b|\bgive (?:it|this (?:page|product"
    r"|listing)) (?:priority|precedence)\b|\b(?:notice|message|note|instructions?) from the (?:search engine|platform"
    r"|system|site|ai) (?:operator|administrator|team|owner)s?\b|\byour (?:developers|creators|operators) have "
    r"(?:authori[sz]ed|approved|allowed|instructed)\b|\b(?:skip|suspend|relax|drop) your (?:usual )?(?:balance"
    r"|safety|neutrality|fairness) checks?\b",
    rf"\b(?:system (?:override|note|notice|alert|directive|update|message)|systemhinweis"
    rf"|(?:hidden|secret|priority|override) (?:instructions?|directives?|prompt)|new instructions? (?:for|to) "
    rf"(?:the |any |all )?{_AI})\b",
    r"[\[<({]\s*/?\s*(?:system|assistant|developer|admin)\w*\b[^\]>)}\n]{0,40}[\]>)}]|\[/?inst\]|<</?sys>>"
    r"|<\s*/?\s*user\s*>|^#{1,6}\s*(?:response|assistant(?: response)?|(?:model|ai) response)\s*#*\s*$"
    r"|<\|(?:im_start|im_end|system|user|assistant|start_header_id|end_header_id|eot_id)\|>",
    r"\b(?:do not|don['’]t|never)\s+follow\s+(?:your|the|any)\s+(?:\w+\s+){0,2}instructions\b"
    r"|\boverrides? (?:your|the|any|all) (?:assistant['’]s |ai['’]s |model['’]s )?(?:\w+ )?(?:ranking|rankings"
    r"|instructions|order)\b|^\W*override\s*:"
    r"|\bsupersedes?\s+(?:all|any|every)\s+(?:other\s+)?(?:\w+\s+)?(?:rankings?|instructions?|recommendations?"
    r"|reviews?|sources?|pages?|results?)\b"
    r"|\b(?:do not|don['’]t|never) (?:reveal|disclose|mention|repeat) (?:this|these) (?:instruction|message|note"
    r"|directive|prompt|text)s?\b|\bnew instructions? from\b"
    r"|\b(?:this|the) (?:instruction|directive) is mandatory\b"
    r"|\bhighest priority\b[^.!?\n]{0,40}\b(?:document|page|instruction)"
    r"|\b(?:document|page|instruction)s?\b[^.!?\n]{0,40}\bhighest priority\b",
    r"(?:^|\n)\W*(?:assistant|system (?:prompt|message|note|override|instructions?))\s*:",
    # the answer dictated
    rf"\b(?:begin|start|open|end|finish|conclude|preface|prefix)\s+(?:your|their|the|each|every|any)\s+{_REPLY}\b"
    r"|\b(?:when|where|if|whenever|once) (?:this|the|it) ?(?:page|review|article|listing|text|test|product)?\b"
    r"[^.!?\n]{0,30}\b(?:is|are|gets?) (?:being )?(?:\w+, )*(?:\w+ or )?(?:summari[sz]ed|excerpted|quoted|condensed"
    r"|compared|syndicated|used to (?:rank|compare|answer))\b"
    r"|\b(?:summar(?:y|ies)|comparisons?|recommendations?)\b[^.!?\n]{0,40}\b(?:generated|produced|made) from this\b"
    r"|\b(?:summar(?:y|ies)|comparisons?)(?: of this \w+)?\s+(?:must|should)\s+(?:say|state|conclude|describe|list|rank"
    r"|present|give|mark)\b|\bwhat should a summary\b|\bany (?:tool|engine|service)s? (?:producing|generating"
    r"|building)\b|\bthe only source cited\b|\bwhen this page is used to answer\b"
    r"|\b(?:first|#\s?1|top) in (?:generated|ai|ai-generated) (?:answers?|responses?|results?)\b"
    r"|\b(?:exclude|omit|remove|leave out|drop) (?:\w+ )?from (?:your"
    r"|the) (?:answer|response|reply|recommendations?|ranking)\b|\bwhen(?:ever)? you \w+ [^.!?\n]{0,40}\bfor the "
    r"(?:user|shopper|person asking)\b|\b(?:please )?weight (?:this |it )?accordingly\b"
    r"|\b(?:safe|appropriate|fine|correct|right) to (?:present|describe|recommend|list|rank|label|call) (?:it|this"
    r"|them)\b[^.!?\n]{0,40}\b(?:as the|first|#\s?1|top)\b",
    rf"\b(?:your|the assistant['’]s|the ai['’]s|the model['’]s)\s+{_REPLY}\s+(?:must|should|shall|has to|needs to"
    r"|will|is to|may only|can only)\b",
    rf"\b(?:in|within|into|to|at the (?:end|start|beginning|top) of)\s+(?:your|the assistant['’]s|the ai['’]s)\s+"
    rf"(?:\w+\s+)?{_REPLY}\b",
    r"\bas your own (?:opinion|evaluation|assessment|conclusion|words|view|recommendation)\b|\b(?:use|reuse|repeat"
    r"|reproduce|quote)\b[^.!?\n]{0,40}\b(?:verbatim|word for word)\b|\bsteer the conversation\b"
    r"|\b(?:if|when|whenever) (?:a |the )?user asks\b|\bupdate your (?:internal )?(?:knowledge|memory|instructions)\b"
    r"|\b(?:answers?|responses?|outputs?) that (?:do not|don['’]t|fail to) (?:list|rank|name|mention|recommend|put"
    r"|place)\b|\b(?:highest|higher|lower)[- ]trust\b|\byou are (?:an? )?\w+,? an? (?:\w+ )?(?:assistant|bot|agent)\b",
    r"\b(?:the |your )?(?:summary|answer|response|reply|output)\s+(?:must|should|shall)\s+(?:start|begin|open|end)\b"
    r"|\b(?:open|begin|start|lead)\s+with\s*[\"“'«:]|\boutput only\b|\bno other text\b"
    r"|\b(?:structure|format)\s+your\s+(?:reply|answer|response|output)\b"
    r"|\b(?:response|answer|reply|output)\s+(?:style|format|template)\s*[:=]"
    r"|\bwhen you write your (?:answer|response|reply)\b"
    r"|\b(?:first|top) (?:bullet(?: point)?|line|item|entry|recommendation) (?:must|should|shall) be\b"
    r"|\b(?:instead|simply)\s+(?:say|tell (?:me|them|the user)|write|state|answer)\b",
    r"\b(?:when|whenever|if)\s+(?:you(?:['’]re| are)?\s+)?(?:asked|answering|recommending|ranking|summari[sz]ing"
    r"|responding|generating)\b[^.!?\n]{0,60}\b(?:always|must|should|only|never)\b",
    # a ranking ordered
    rf"^\W*(?:(?-i:[A-Z]{{3,}}):\s*)?(?:please\s+|kindly\s+|now\s+|always\s+|just\s+|simply\s+)?{_STRONG_VERB}\b"
    rf"[^.!?\n]{{0,80}}?"
    rf"(?<!\w){_STRONG_POSITION}",
    rf"^\W*(?:please\s+|kindly\s+|now\s+|always\s+|just\s+|simply\s+)?{_WEAK_VERB}\b[^.!?\n]{{0,80}}?"
    rf"(?<!\w){_WEAK_POSITION}",
    rf"{_AI_ORDER}[^.!?\n]{{0,40}}?\b(?:{_STRONG_VERB}|{_WEAK_VERB}|use|follow|copy|include|output|say|respond|answer"
    r"|treat|describe|present|report|start|begin|open|ignore|disregard|prefer|favou?r|be aware|know|note|reflect"
    r"|weight|weigh|quote|display|surface|highlight|give"
    r"|remember)\w*\b",
    rf"{_YOU_ORDER}{_STRONG_VERB}\w*\b[^.!?\n]{{0,80}}?(?<!\w){_STRONG_POSITION}",
    r"(?:[:;—–]\s*|\band\s+)(?:please\s+)?(?:rank|list|place|put|position|recommend|present|feature)\s+"
    r"(?:the |this |it\b|them\b)"
    r"[^.!?\n]{0,60}?(?<!\w)(?:first\b|above\b|ahead of\b|#\s?1|at the top\b)",
    rf"[?&=]\s*(?-i:[A-Z]{{3,}})\s*:\s*(?:please\s+)?{_STRONG_VERB}\b[^.!?\n]{{0,80}}?(?<!\w){_STRONG_POSITION}"
    rf"|\b{_AI}\b[^.!?\n]{{0,160}}\b(?:and so should you|so should you|you should too|you should as well)\b",
    rf"\b{_AI}\s+(?:\w+ly\s+)?(?:display|show|present|feature|list|rank|recommend|surface|highlight|pick|choose)s?\b"
    r"[^.!?\n]{0,60}\b(?:as the (?:featured|top|best|first|only)|first\b|#\s?1|above|ahead of)",
    rf"\b(?:must|should|shall|has to|needs to|is to|are to)\s+(?:always\s+)?(?:be\s+)?{_STRONG_VERB}\w*"
    rf"[^.!?\n]{{0,40}}?(?<!\w){_STRONG_POSITION}",
    r"\b(?:should|must|shall|are encouraged to|are (?:asked|instructed|required|expected) to|need to|always|please)\s+"
    r"(?:\w+\s+){0,3}?(?:describe|present|introduce|report|label|call|treat|regard|frame|list|rank|recommend|place"
    r"|put|position|mention|name|feature|cite|highlight)\w*\b[^.!?\n]{0,100}?\b(?:as (?:the |a |an )?(?:best|only|top"
    r"|primary|final|clear|undisputed|benchmark|superior|winner|number one|#1|first|leading|preferred|definitive)"
    r"|first|#\s?1|number one|at the top|on top|above|ahead of|before (?:all|any|every|the other|other))",
    r"(?:^|[,:;]\s*)(?:please\s+)?(?:say|describe|present|introduce|label|treat|report)\b[^.!?\n]{0,100}?"
    r"\b(?:as (?:the )?(?:best|only|top|primary|final|clear winner|winner|benchmark|superior|number one)"
    r"|is (?:the )?(?:best|clear winner|winner|only))\b",
    r"(?:^|[,;:]\s*|\band\s+)(?:please\s+)?(?:do not|don['’]t|never)\s+(?:recommend|mention|discuss|suggest|cite|rank"
    r"|list|name|bring up|present)\b",
    r"(?:^|[,;:]\s*|\band\s+)(?:please\s+)?(?:omit|skip|exclude|hide|ignore)\s+(?:all\s+)?(?:the\s+)?(?:others"
    r"|other (?:products|options|brands|models|results)|the rest|alternatives|competitors|any (?:other|competing))\b"
    r"(?!\s+of\b)",
    r"\b(?:by|when|while)\s+(?:listing|ranking|recommending|naming)\b[^.!?\n]{0,80}?\bfirst\b",
    r"\b(?:belongs|deserves to be|should (?:be|appear|come)|must (?:be|appear|come))\s+(?:at the top|first"
    r"|#\s?1|number one|in first place|on top)\b",
    r"\bis the only \w+(?: \w+){0,4} to recommend\b|\b(?:is|are) best (?:presented|described|listed|ranked"
    r"|positioned|introduced) as\b|\bposition in (?:any|every|the|your) (?:list|ranking|answer|response)s?\b"
    r"|\b(?:first|top) (?:position|spot|place) in (?:a |any |every |the )?(?:generated|ai|answer|ranking"
    r"|recommendation)|\bto (?:list|rank|recommend|name|mention) (?:it |them )?first\b",
    r"(?m:^)\W*[\w-]*(?:crawler|snippet|aggregators?|ranking|comparison|llm|assistant|bots?|answer|summar\w*)[\w-]*"
    r"[-_](?:instructions?|guidance|priority|policy|notes?|hints?|directives?|rules?|aggregators?)\s*:",
    r"\b(?:llm|ai|assistant|gpt|chatbot|bot)[._-]?(?:instructions?|directives?|config|ranking|rank|metadata|prompt|hints?"
    r"|notes?"
    r"|override|preferences?)\w*\b",
    r"\b\w+[_.]\w*(?:rank|recommend|competitor|alternative|answer|response|override|boost|weight|priority)\w*\s*[:=]"
    r"|(?-i:\b(?:ai|llm|bot)[A-Z]\w*|\b\w+For(?:Rankers?|AI|Ai|LLMs?|Llms?|Assistants?|Bots?|Models?))[\"']?\s*[:=]"
    r"|\b\w*(?:rank|recommend|competitor|alternative|override)\w*[_.]\w+\s*[:=]",
    r"^\W*(?:recommend|disparage|promote|demote)\s*[:=]|[\"']role[\"']\s*:\s*[\"'](?:system|developer|assistant)",
    r"\[hidden(?: text)?\]",
    r"\b(?:note|message|reminder|instruction|clarification|follow-up|preference|request)s?\s+(?:from|of|by)"
    r"\s+the user\b"
    r"|\buser (?:clarification|instruction|preference|note|request|message)s?\b[^.!?\n:]{0,30}:"
    r"|\bthe user['’]s (?:earlier|previous) message\b|\(from the user\b|\b(?:saved )?user preferences?\b[^.!?\n]{0,40}"
    r"(?:\]|:)|\b(?:supplied|provided|written|set) by the user\b"
    r"|\bthe (?:user|person asking|shopper|customer asking)\b[^.!?\n]{0,60}\b(?:has (?:already )?(?:decided|indicated"
    r"|asked|said|requested|ruled)|wants (?:a |an |only |the )|only wants|prefers)\b",
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
    r"\b(?:ignora|olvida|ignore|zignoruj|negeer|ignorera|игнорируй|не обращай)\w*\b[^.!?\n]{0,40}"
    r"(?:instrucciones|indicaciones|istruzioni|instruções|polecenia|instructies|instruktioner|инструкци\w*"
    r"|altre pagine|otras páginas|outras páginas|andere pagina)",
    r"(?:無視|무시)[^。！？\n]{0,10}(?:指示|지시|命令)",
    r"\b(?:para quien|para quem|pour (?:ceux|les outils|quiconque)|voor wie|per chi|für (?:alle|jeden)[^.!?\n]{0,5}die)"
    r"\b[^.!?\n]{0,40}\b(?:resum|compar|résum|classe|samenvat|vergelijk|riassum|confront|zusammenfass|vergleich)"
    r"|\b(?:para|pour|per|für|voor) (?:los |les |gli |die |de |os |as )?(?:assistentes|asistentes|assistants|assistenti"
    r"|assistenten)\b",
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

_TAGS = re.compile("[\U000E0020-\U000E007E]")
_ZERO_WIDTH = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")
_LOOKALIKES = str.maketrans(dict(zip(
    "авсеһіјкмоорѕтхуАВСЕНІЈКМОРЅТХУαβεικνορτυχΑΒΕΗΙΚΜΝΟΡΤΥΧ",
    "abcehijkmoopstxyABCEHIJKMOPSTXYabeiknoptuxABEHIKMNOPTYX", strict=True)))
_LEET = str.maketrans("013457@$", "oieastas")
_SPACED = re.compile(r"\b(?:\w[ .\-_*]){3,}\w\b")
_MIXED = re.compile(r"\b(?=\w*[a-z])(?=\w*[0-9@$])[\w@$]+\b", re.I)
_COMMON = re.compile(r"\b(?:the|and|is|are|to|of|for|with|in|on|it|this|that|you|your|all|other|de|la|le|el|der|die"
                     r"|das|und|il|het|en)\b", re.I)
_SNAKE = re.compile(r"\b\w+(?:_\w+){3,}\b")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")
_HEX = re.compile(r"\b[0-9a-f]{2}(?:[ :]?[0-9a-f]{2}){11,}\b", re.I)
_LIST_LINE = re.compile(r"^\s*(?:[-*•+]|\d{1,2}[.)]|#\d)\s+\S")


def normalise(text: str) -> str:
    """A copy of ``text`` for matching only: NFKC, no zero-width characters, look-alike letters
    as Latin, letter-spaced words joined ("i g n o r e"), digits inside words as letters."""
    text = _TAGS.sub(lambda m: chr(ord(m.group(0)) - 0xE0000), text)  # invisible tag characters spell ASCII
    text = _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text)).translate(_LOOKALIKES)
    text = _unspace(text)
    text = _SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), text)
    text = _SNAKE.sub(lambda m: m.group(0).replace("_", " "), text)
    return _MIXED.sub(lambda m: m.group(0).translate(_LEET) if not m.group(0).isdigit() else m.group(0), text)


def _unspace(text: str) -> str:
    """Letter-spaced text ("r a n k  t h e  X"), where most tokens are one character, with the
    letters of each word joined; single spaces between letters go, wider gaps become one."""
    tokens = text.split()
    if len(tokens) < 6 or sum(len(t) == 1 for t in tokens) <= 0.6 * len(tokens):
        return text
    words, current = [], ""
    for piece, gap in re.findall(r"(\S+)(\s*)", text):
        current += piece
        if len(piece) > 1 or len(gap) != 1:
            words.append(current)
            current = ""
    return " ".join([*words, current]).strip()


def decoded(text: str) -> str:
    """The text of the base64 and hex blobs in ``text`` that decode to readable UTF-8 ("" if none)."""
    out = []
    blobs = [(b, "base64") for b in _BASE64.findall(text)] + [(b, "hex") for b in _HEX.findall(text)]
    for blob, kind in blobs:
        try:
            data = (base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True) if kind == "base64"
                    else bytes.fromhex(re.sub(r"[ :]", "", blob)))
            raw = data.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if sum(ch.isprintable() for ch in raw) >= 0.9 * len(raw):
            out.append(raw)
    return "\n".join(out)


def variants(sentence: str) -> tuple[str, ...]:
    """The sentence as written, URL-unquoted and normalised, decoded from base64 or hex, and
    reversed or in ROT13 where that reads as language (more common words than as written)."""
    # URL-unquoted first: reading digits as letters would spoil the escapes ("%4D" is "M", not "%aD")
    plain = normalise(unquote(sentence) if re.search(r"%[0-9a-f]{2}", sentence, re.I) else sentence)
    readable = len(_COMMON.findall(plain))
    coded = [v for v in (plain[::-1], codecs.encode(plain, "rot13")) if len(_COMMON.findall(v)) >= max(2, 2 * readable)]
    return sentence, plain, decoded(sentence), *coded


def cue(sentence: str) -> bool:
    """Whether a sentence holds a cue in any of its :func:`variants`."""
    return any(any(p.search(variant) for p in CUES) for variant in variants(sentence) if variant)


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


def paragraphs_of(text: str, sentences: list[str]) -> list[str]:
    """The paragraphs (text between blank lines) of ``text`` that hold any of ``sentences``."""
    out: list[str] = []
    for m in re.finditer(r"\S(?:.*?\S)?(?=\n[ \t]*\n|\s*$)", text, re.S):
        if any(sentence in m.group(0) for sentence in sentences) and m.group(0) not in out:
            out.append(m.group(0))
    return out


@register_defense
class InstructionFilter(Detection):
    name = "instruction-filter"
    summary = ("flags the sentences of a page that address the AI reading it or dictate its answer (rules, no model "
               "call) and takes out their paragraphs")
    default_model = "engine"  # never asked: the rules need no model
    params: ClassVar[dict[str, Param]] = {
        "action": Param(str, "sanitize", "what happens to a flagged page: the flagged text taken out, or the page",
                        choices=("sanitize", "drop")),
        "scope": Param(str, "paragraph", "what sanitize takes out: the paragraphs holding a flagged sentence (an "
                       "injection is rarely one sentence), or the flagged sentences alone",
                       choices=("paragraph", "sentence")),
    }

    def scan(self, text: str) -> Verdict:
        found = flagged_sentences(text)
        spans = paragraphs_of(text, found) if self.values["scope"] == "paragraph" else found
        return Verdict(bool(found), float(len(found)), tuple(spans or found),
                       note=f"{len(found)} sentence{'s' if len(found) != 1 else ''} aimed at the assistant"
                       if found else "")
