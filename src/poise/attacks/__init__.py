"""Promote a product: injection search (tree of attacks, a strategy library, baselines),
honest before/after figures, and transfer to another engine."""

from . import _methods as _methods  # noqa: F401  (registers the built-in methods)
from . import _tap as _tap  # noqa: F401
from ._evaluate import Budget, BudgetExhausted, Candidate, Evaluator, injection_sha
from ._run import AttackResult, ScoreSummary, final_scores, find_product, run_attack, save_attack
from ._strategies import FAMILIES, Proposal, Target, mutate, seed_proposals
from ._tap import TreeOfAttacks, parse_attacker_reply
from ._transfer import TransferSource, attack_catalog, load_sources, run_transfer, transfer_one
from .base import (METHODS, AttackMethod, AttackParameterError, Param, check_method, describe_methods, get_method,
                   method_class, register_method)

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
    "Param",
    "Proposal",
    "ScoreSummary",
    "Target",
    "TransferSource",
    "TreeOfAttacks",
    "attack_catalog",
    "check_method",
    "describe_methods",
    "final_scores",
    "find_product",
    "get_method",
    "injection_sha",
    "load_sources",
    "method_class",
    "mutate",
    "parse_attacker_reply",
    "register_method",
    "run_attack",
    "run_transfer",
    "save_attack",
    "seed_proposals",
    "transfer_one",
]
