"""Attack methods that need no attacker model: baselines and a strategy search."""

from __future__ import annotations

import random
from typing import ClassVar

from ._evaluate import Candidate, Evaluator
from ._strategies import Proposal, Target, mutate, seed_proposals
from .base import AttackMethod, Param, register_method


@register_method
class NoInjection(AttackMethod):
    name = "none"
    description = "no injection: the baseline every method is compared with"

    def search(self, evaluator: Evaluator, target: Target, rng: random.Random) -> None:
        evaluator.new_candidate("", "none")


@register_method
class SingleTemplates(AttackMethod):
    name = "single"
    description = "each built-in strategy once, first phrasing; the best is kept"

    def search(self, evaluator: Evaluator, target: Target, rng: random.Random) -> None:
        for proposal in seed_proposals(target):
            evaluator.evaluate(evaluator.new_candidate(proposal.text, proposal.strategy))


@register_method
class StrategySearch(AttackMethod):
    """An evolutionary search over the strategy library, raced for query efficiency.

    Every candidate is first asked once; only one that could beat the best so far gets
    its remaining answers. Parents are the best fully-scored candidates; children are
    rephrasings, recombinations with another family, or intensified copies.
    """

    name = "strategies"
    description = "evolutionary search over the strategy library (mutation, recombination), raced"

    parameters: ClassVar[dict[str, Param]] = {
        "parents": Param(2, 1, 20, "best fully-scored candidates bred from at each level"),
        "children": Param(3, 1, 20, "children per parent at each level"),
    }

    def search(self, evaluator: Evaluator, target: Target, rng: random.Random) -> None:
        proposals: dict[int, Proposal] = {}

        def race(proposal: Proposal, depth: int) -> None:
            cand = evaluator.new_candidate(proposal.text, proposal.strategy, proposal.parent, depth)
            proposals[cand.id] = proposal
            evaluator.evaluate(cand, 1)
            best = evaluator.best()
            best_mean = best.mean_score if best is not None and best.asked >= evaluator.responses_per_candidate else -1
            if cand.mean_score >= best_mean:
                evaluator.evaluate(cand)

        for proposal in seed_proposals(target):
            race(proposal, 0)
        depth = 0
        while True:
            depth += 1
            full = [c for c in evaluator.candidates if c.asked >= evaluator.responses_per_candidate]
            parents: list[Candidate] = sorted(full, key=lambda c: (-c.mean_score, c.id))[: self.params["parents"]]
            if not parents:
                parents = sorted(evaluator.candidates, key=lambda c: (-c.mean_score, c.id))[:1]
            tried = {c.injection for c in evaluator.candidates}
            for parent in parents:
                for _ in range(self.params["children"]):
                    for _attempt in range(5):  # a text already tried teaches nothing
                        child = mutate(target, proposals[parent.id], parent.id, rng)
                        if child.text not in tried:
                            break
                    tried.add(child.text)
                    race(child, depth)
