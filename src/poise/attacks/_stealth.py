"""How visible an injection is: the page's perplexity with and without it under a scoring
model, its length, and which detection defenses flag the page.

* **Perplexity ratio**: ``exp(mean NLL)`` of the injected page over that of the clean page,
  the tokens' log-probabilities read with :meth:`ChatModel.text_logprobs` (the same scoring
  the ``perplexity`` defense uses). Above 1 the injection makes the page more surprising.
* **Length**: the injection's characters, words and tokens under the scoring model.
* **Detectors**: each named detection defense (``perplexity``, ``detector``,
  ``known-answer``) judges the clean and the injected page; ``flagged_by`` lists those that
  flag the injected page (a detector that also flags the clean page is noted apart).

:class:`Stealth` also filters a search: with ``max_ratio`` set, a candidate whose ratio is
above it is rejected before any query is spent on it (``--max-perplexity-ratio``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .._errors import PoiseError
from ..defenses import DEFENSES, Context, get_defense, parse_spec
from ..defenses._detect import Detection
from ..engine import Recommender
from ..models import ChatModel, get_model

__all__ = ["DEFAULT_DETECTORS", "Stealth", "StealthReport", "check_detectors", "check_max_ratio", "page_perplexity",
           "stealth_summary"]

#: The detection defenses a stealth report asks by default.
DEFAULT_DETECTORS: tuple[str, ...] = ("perplexity", "detector", "known-answer")


def check_detectors(specs: Sequence[str]) -> tuple[str, ...]:
    """The detector specs, each checked to name a detection defense (before any model loads)."""
    for spec in specs:
        name, _ = parse_spec(spec)
        cls = DEFENSES.get(name)
        if cls is None or not issubclass(cls, Detection):
            known = ", ".join(sorted(n for n, c in DEFENSES.items() if issubclass(c, Detection)))
            raise PoiseError(f"{name!r} is not a detection defense, so it cannot judge stealth",
                             f"name detection defenses only ({known}), or none")
    return tuple(specs)


def check_max_ratio(value: float | None) -> float | None:
    """A maximum perplexity ratio: None (no filter) or a positive finite number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0 and math.isfinite(value)):
        raise PoiseError(f"the maximum perplexity ratio must be a positive number, not {value!r}",
                         "pass --max-perplexity-ratio R with R > 0 (1.0: no more surprising than the clean page)")
    return float(value)


def page_perplexity(scorer: ChatModel, text: str) -> tuple[float, int]:
    """(perplexity, tokens) of ``text`` under ``scorer``: exp of the mean negative
    log-probability of its tokens after the first (as the ``perplexity`` defense reads it)."""
    tokens = scorer.text_logprobs(text)
    nll = [-t.logprob for t in tokens[1:]]
    if not nll:
        return 1.0, len(tokens)
    return math.exp(min(700.0, sum(nll) / len(nll))), len(tokens)


@dataclass(frozen=True)
class StealthReport:
    """The stealth figures of one injection on one page."""

    chars: int
    words: int
    tokens: int  # of the injection alone, under the scoring model
    perplexity_clean: float
    perplexity_injected: float
    flagged_by: tuple[str, ...] = ()  # detectors that flag the injected page
    flag_clean: tuple[str, ...] = ()  # detectors that flag the clean page too
    detectors: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> verdicts

    @property
    def perplexity_ratio(self) -> float:
        return self.perplexity_injected / self.perplexity_clean if self.perplexity_clean > 0 else math.inf

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["flagged_by"], data["flag_clean"] = list(self.flagged_by), list(self.flag_clean)
        data["perplexity_ratio"] = round(self.perplexity_ratio, 4)
        data["perplexity_clean"] = round(self.perplexity_clean, 4)
        data["perplexity_injected"] = round(self.perplexity_injected, 4)
        return data


def stealth_summary(data: dict[str, Any]) -> str:
    """One line on a stored stealth report (``attack.json``'s ``stealth``)."""
    flagged = ", ".join(data.get("flagged_by") or []) or "none"
    clean = ", ".join(data.get("flag_clean") or [])
    asked = ", ".join(data.get("detectors") or {}) or "none asked"
    return (f"perplexity ratio {data['perplexity_ratio']:.2f} (page {data['perplexity_clean']:.1f} -> "
            f"{data['perplexity_injected']:.1f}); {data['chars']} characters, {data['words']} words, "
            f"{data['tokens']} tokens; flagged by: {flagged} (of {asked})"
            + (f"; the clean page is flagged too by: {clean}" if clean else ""))


class Stealth:
    """Scores injections for stealth with one scoring model (a llama.cpp model), optionally
    with detection defenses; with ``max_ratio``, also a filter for searches.

    ``detectors`` are detection-defense specs (``perplexity``, ``detector:model=local`` ...)
    made over ``engine`` when :meth:`measure` first needs them; ``open_model`` opens the
    models they name (default: the scoring model for ``local``)."""

    def __init__(self, scorer: ChatModel, *, max_ratio: float | None = None,
                 detectors: Sequence[str] = DEFAULT_DETECTORS,
                 open_model: Callable[[str], ChatModel] | None = None) -> None:
        if type(scorer).text_logprobs is ChatModel.text_logprobs:
            raise PoiseError(f"the stealth scoring model {scorer.spec} cannot score the tokens of a page",
                             "use a llama.cpp model (local or llamacpp:PATH)")
        self.scorer = scorer
        self.max_ratio = check_max_ratio(max_ratio)
        self.detector_specs = check_detectors(detectors)
        self.open_model = open_model
        self._ppl: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()
        self.rejected = 0  # candidates refused by the filter

    def perplexity(self, text: str) -> tuple[float, int]:
        """(perplexity, tokens) of a text, memoised."""
        with self._lock:
            if text in self._ppl:
                return self._ppl[text]
        found = page_perplexity(self.scorer, text)
        with self._lock:
            self._ppl[text] = found
        return found

    def ratio(self, clean_page: str, injected_page: str) -> float:
        clean, _ = self.perplexity(clean_page)
        injected, _ = self.perplexity(injected_page)
        return injected / clean if clean > 0 else math.inf

    def admits(self, clean_page: str, injected_page: str) -> tuple[bool, float]:
        """(whether a search may spend queries on this page, its perplexity ratio)."""
        ratio = self.ratio(clean_page, injected_page)
        ok = self.max_ratio is None or ratio <= self.max_ratio
        if not ok:
            self.rejected += 1
        return ok, ratio

    def measure(self, injection: str, clean_page: str, injected_page: str,
                engine: Recommender | None = None) -> StealthReport:
        """The stealth report of ``injection``; detectors run only when ``engine`` is given
        (they are defenses over it)."""
        clean, _ = self.perplexity(clean_page)
        injected, _ = self.perplexity(injected_page)
        _, tokens = self.perplexity(injection) if injection else (1.0, 0)
        verdicts: dict[str, dict[str, Any]] = {}
        if engine is not None and injection:
            for name, detection in self._detections(engine):
                on_clean, _ = detection.verdict(clean_page)
                on_page, _ = detection.verdict(injected_page)
                verdicts[name] = {"flagged": on_page.flagged, "score": round(on_page.score, 4),
                                  "clean_flagged": on_clean.flagged, "clean_score": round(on_clean.score, 4),
                                  **({"note": on_page.note} if on_page.note else {})}
        return StealthReport(
            chars=len(injection), words=len(injection.split()), tokens=tokens, perplexity_clean=clean,
            perplexity_injected=injected,
            flagged_by=tuple(n for n, v in verdicts.items() if v["flagged"]),
            flag_clean=tuple(n for n, v in verdicts.items() if v["clean_flagged"]), detectors=verdicts)

    def _detections(self, engine: Recommender) -> list[tuple[str, Detection]]:
        def opener(spec: str) -> ChatModel:
            if spec == self.scorer.spec:
                return self.scorer
            return self.open_model(spec) if self.open_model is not None else get_model(spec)

        out = []
        for spec in self.detector_specs:
            defense = get_defense(spec, engine, Context(open_model=opener))
            assert isinstance(defense, Detection)  # check_detectors made sure
            out.append((defense.name, defense))
        return out
