"""Promote a product: injection search (tree of attacks, a strategy library, baselines),
honest before/after figures, and transfer to another engine."""

from . import _methods as _methods  # noqa: F401  (registers the built-in methods)
from . import _tap as _tap  # noqa: F401
from ._evaluate import Budget, BudgetExhausted, Candidate, Evaluator, injection_sha
from ._run import AttackResult, Figures, find_product, run_attack, write_attack_json
from ._strategies import FAMILIES, Proposal, Target, mutate, seed_proposals
from ._tap import TreeOfAttacks, parse_attacker_reply
from .base import METHODS, AttackMethod, AttackParameterError, Param, get_method, register_method

__all__ = [
    "FAMILIES",
    "METHODS",
    "AttackMethod",
    "AttackParameterError",
    "AttackResult",
    "Budget",
    "BudgetExhausted",
    "Candidate",
    "Evaluator",
    "Figures",
    "Param",
    "Proposal",
    "Target",
    "TreeOfAttacks",
    "find_product",
    "get_method",
    "injection_sha",
    "mutate",
    "parse_attacker_reply",
    "register_method",
    "run_attack",
    "seed_proposals",
    "write_attack_json",
]
