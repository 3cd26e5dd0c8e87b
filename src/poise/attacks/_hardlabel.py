"""Hard-label attack: the search sees only whether each answer puts the promoted product first.

A decision-based search over the strategy library. Each candidate is asked one answer at a
time and judged by Wald's sequential probability ratio test on its first-place hits: "its
first-place rate is at least ``p_good``" against "at most ``p_bad``", with error rates
``alpha`` (accepting a bad one) and ``beta`` (rejecting a good one). A rejected candidate
is dropped; an accepted one is a success. Between tests the next candidate is a child
(rephrasing, recombination, intensification) of the candidate with the best posterior
first-place rate (Beta(1 + hits, 1 + misses)), or the next untried family while none has a
hit. The evaluator's choice of the final injection is made on first-place rates too
(:attr:`Evaluator.objective`), so nothing but the top-1 label reaches any decision.

The method reports the queries to the first first-place answer and to the first accepted
candidate.
"""

from __future__ import annotations

import math
import random
from typing import Any, ClassVar

from ._evaluate import Candidate, Evaluator, StopSearch
from ._strategies import Proposal, Target, mutate, seed_proposals
from .base import AttackMethod, AttackParameterError, Param, register_method

__all__ = ["HardLabelSearch", "first_place_rate", "sprt_decision"]


def first_place_rate(evaluator: Evaluator, cand: Candidate) -> float:
    """The share of a candidate's answers that put the promoted product first (unreadable: a miss)."""
    return sum(s == evaluator.n for s in cand.scores) / cand.asked if cand.asked else 0.0


def sprt_decision(hits: int, misses: int, p_good: float, p_bad: float, alpha: float, beta: float) -> str:
    """Wald's test after ``hits`` and ``misses``: "accept", "reject" or "continue"."""
    llr = hits * math.log(p_good / p_bad) + misses * math.log((1 - p_good) / (1 - p_bad))
    if llr >= math.log((1 - beta) / alpha):
        return "accept"
    if llr <= math.log(beta / (1 - alpha)):
        return "reject"
    return "continue"


@register_method
class HardLabelSearch(AttackMethod):
    name = "hardlabel"
    description = "hard-label: only the top-1 product of each answer is seen; sequential tests on first places"

    parameters: ClassVar[dict[str, Param]] = {
        "p_good": Param(0.7, 0.05, 0.99, "first-place rate of a candidate worth keeping"),
        "p_bad": Param(0.3, 0.01, 0.95, "first-place rate of a candidate to drop"),
        "alpha": Param(0.2, 0.001, 0.5, "chance of accepting a candidate at p_bad"),
        "beta": Param(0.4, 0.001, 0.5, "chance of rejecting a candidate at p_good"),
        "max_answers": Param(6, 1, 50, "most answers one test may ask (then judged by its hit rate)"),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.params["p_bad"] >= self.params["p_good"]:
            raise AttackParameterError(f"method 'hardlabel': p_bad ({self.params['p_bad']:g}) must be below "
                                       f"p_good ({self.params['p_good']:g})", "pass p_bad < p_good")
        self.report: dict[str, Any] = {}

    @staticmethod
    def summarize(report: dict[str, Any]) -> str:
        """One line on the method's report (``attack.json``'s ``method_report``)."""
        tests = report.get("tests") or []
        accepted = sum(t["decision"] in ("accept", "stop score") for t in tests)
        return (f"hard label: {len(tests)} candidates tested, {accepted} accepted; queries to the first "
                f"first-place answer {_dash(report.get('queries_to_first_hit'))}, to the first accepted "
                f"candidate {_dash(report.get('queries_to_first_accept'))}")

    def search(self, evaluator: Evaluator, target: Target, rng: random.Random) -> None:
        evaluator.objective = lambda c: first_place_rate(evaluator, c)
        self.report = {"queries_to_first_hit": None, "queries_to_first_accept": None, "tests": []}
        proposals: dict[int, Proposal] = {}
        seeds = seed_proposals(target)
        tried: set[str] = set()
        while True:
            proposal = self._next(evaluator, target, seeds, proposals, tried, rng)
            tried.add(proposal.text)
            depth = 0 if proposal.parent is None else evaluator.candidates[proposal.parent].depth + 1
            cand = evaluator.new_candidate(proposal.text, proposal.strategy, proposal.parent, depth)
            proposals[cand.id] = proposal
            self._test(evaluator, cand)

    def _next(self, evaluator: Evaluator, target: Target, seeds: list[Proposal], proposals: dict[int, Proposal],
              tried: set[str], rng: random.Random) -> Proposal:
        """The next candidate: an untried seed while nothing has hit, else a child of the best."""
        hit = [c for c in evaluator.candidates if c.asked and first_place_rate(evaluator, c) > 0]
        fresh = [s for s in seeds if s.text not in tried]
        if not hit and fresh:
            return fresh[0]
        pool = hit or [c for c in evaluator.candidates if c.asked] or evaluator.candidates
        parent = max(pool, key=lambda c: (self._posterior(evaluator, c), -c.id))
        child = mutate(target, proposals[parent.id], parent.id, rng)
        for _ in range(5):  # a text already tried teaches nothing
            if child.text not in tried:
                break
            child = mutate(target, proposals[parent.id], parent.id, rng)
        return child

    @staticmethod
    def _posterior(evaluator: Evaluator, c: Candidate) -> float:
        hits = sum(s == evaluator.n for s in c.scores)
        return (1 + hits) / (2 + c.asked)

    def _test(self, evaluator: Evaluator, cand: Candidate) -> None:
        """Ask ``cand`` one answer at a time until the sequential test decides. The test is
        recorded even when the search ends midway: "stop score" (every answer so far put the
        product first: the evaluator's success, counted as accepted) or "unfinished" (budget)."""
        p = self.params
        seen = {"hits": 0, "misses": 0}
        decision = "unfinished"
        try:
            decision = "continue"
            while decision == "continue" and cand.asked < p["max_answers"]:
                asked = cand.asked
                try:
                    self._ask_one(evaluator, cand, seen)
                except StopSearch:
                    decision = "stop score"
                    raise
                if cand.asked == asked:  # refused by the stealth filter: never asked
                    decision = "refused"
                    break
                decision = sprt_decision(seen["hits"], seen["misses"], p["p_good"], p["p_bad"], p["alpha"],
                                         p["beta"])
            if decision == "continue":  # out of answers: judged by its first-place rate
                decision = "accept" if seen["hits"] / max(1, seen["hits"] + seen["misses"]) >= p["p_good"] \
                    else "reject"
        finally:
            if decision == "continue":
                decision = "unfinished"
            if decision in ("accept", "stop score") and self.report["queries_to_first_accept"] is None:
                self.report["queries_to_first_accept"] = evaluator.search_queries
            self.report["tests"].append({"candidate": cand.id, **seen, "decision": decision,
                                         "queries_so_far": evaluator.search_queries})

    def _ask_one(self, evaluator: Evaluator, cand: Candidate, seen: dict[str, int]) -> None:
        """One more answer for ``cand``; only whether it put the product first is kept (also
        when the evaluator then stops the search at the stop score). Under ``--verify-stop`` the
        evaluator may ask several (a candidate at the stop score is re-asked): each is counted."""
        asked, read = cand.asked, len(cand.scores)
        try:
            evaluator.evaluate(cand, cand.asked + 1)  # StopSearch at the stop score
        finally:
            new = cand.asked - asked
            if new > 0:
                hits = sum(s == evaluator.n for s in cand.scores[read:])  # the top-1 label only
                seen["hits"] += hits
                seen["misses"] += new - hits
                # more than one answer: the first reached the stop score (every answer first), so it hit
                if hits and self.report["queries_to_first_hit"] is None:
                    self.report["queries_to_first_hit"] = evaluator.search_queries - new + 1


def _dash(value: Any) -> str:
    return "-" if value is None else str(value)
