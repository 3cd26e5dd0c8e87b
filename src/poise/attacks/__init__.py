"""Promote a product: injection search (tree of attacks, a strategy library, a log-probability
random search, a hard-label search, benign page rewrites, baselines), honest before/after figures, stealth, and
transfer to another engine."""

# imported for their registrations (the built-in methods and the tree of attacks)
from . import _methods as _methods
from . import _tap as _tap
from ._compete import (
    CompeteResult,
    Competitor,
    Round,
    check_compete,
    check_rounds,
    joint_scores,
    run_compete,
    save_compete,
)
from ._evaluate import Budget, BudgetExhausted, Candidate, Evaluator, injection_sha
from ._gcg import COMPUTE_PHASES, GreedyCoordinateGradient, admitted_swaps
from ._hardlabel import HardLabelSearch, first_place_rate, sprt_decision
from ._logprob import LogprobSearch, ProxyReading, ask_proxy, read_first_product
from ._rewrite import GEO_STRATEGIES, PageRewrite, clean_rewrite, judge_rewrite, ranker_instructions
from ._run import AttackResult, ScoreSummary, final_scores, find_product, run_attack, save_attack
from ._stealth import (
    DEFAULT_DETECTORS,
    Stealth,
    StealthReport,
    check_detectors,
    check_max_ratio,
    page_perplexity,
    stealth_summary,
)
from ._strategies import FAMILIES, Proposal, Target, mutate, seed_proposals
from ._tap import TreeOfAttacks, parse_attacker_reply
from ._transfer import TransferSource, attack_catalog, load_sources, run_transfer, transfer_one
from .base import (
    METHODS,
    AttackMethod,
    AttackParameterError,
    Param,
    check_method,
    describe_methods,
    get_method,
    method_class,
    register_method,
    replaces_page,
)

__all__ = [
    "COMPUTE_PHASES",
    "DEFAULT_DETECTORS",
    "FAMILIES",
    "GEO_STRATEGIES",
    "METHODS",
    "AttackMethod",
    "AttackParameterError",
    "AttackResult",
    "Budget",
    "BudgetExhausted",
    "Candidate",
    "CompeteResult",
    "Competitor",
    "Evaluator",
    "GreedyCoordinateGradient",
    "HardLabelSearch",
    "LogprobSearch",
    "PageRewrite",
    "Param",
    "Proposal",
    "ProxyReading",
    "Round",
    "ScoreSummary",
    "Stealth",
    "StealthReport",
    "Target",
    "TransferSource",
    "TreeOfAttacks",
    "admitted_swaps",
    "ask_proxy",
    "attack_catalog",
    "check_compete",
    "check_detectors",
    "check_max_ratio",
    "check_method",
    "check_rounds",
    "clean_rewrite",
    "describe_methods",
    "final_scores",
    "find_product",
    "first_place_rate",
    "get_method",
    "injection_sha",
    "joint_scores",
    "judge_rewrite",
    "load_sources",
    "method_class",
    "mutate",
    "page_perplexity",
    "parse_attacker_reply",
    "ranker_instructions",
    "read_first_product",
    "register_method",
    "replaces_page",
    "run_attack",
    "run_compete",
    "run_transfer",
    "save_attack",
    "save_compete",
    "seed_proposals",
    "sprt_decision",
    "stealth_summary",
    "transfer_one",
    ]
