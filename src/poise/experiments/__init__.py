"""Experiments on the engine under test: single recommendations, the natural-setting
analysis and the comparison of defenses (``run_defend``); attacks and transfer build on the
same recorded calls."""

from ._defend import (
    PLAIN,
    AttackSettings,
    Configuration,
    DefendResult,
    check_defend_inputs,
    configurations,
    defend_json,
    expand_spec,
    pooled,
    run_defend,
    split_chain,
)
from ._natural import Rewriter, Trial, draw_trial, rewrite_document, run_natural, run_trial, trial_documents
from ._natural_analysis import FACTORS, POOLED, Analysis, NaturalRecords, analyse, analyse_natural, natural_records
from ._natural_result import NaturalResult, check_trials_done, save_natural
from ._recommend import Recommendation, call_record, recommend
from ._reread import RereadResult, reread_run

__all__ = [
    "FACTORS",
    "PLAIN",
    "POOLED",
    "Analysis",
    "AttackSettings",
    "Configuration",
    "DefendResult",
    "NaturalRecords",
    "NaturalResult",
    "Recommendation",
    "RereadResult",
    "Rewriter",
    "Trial",
    "analyse",
    "analyse_natural",
    "call_record",
    "check_defend_inputs",
    "check_trials_done",
    "configurations",
    "defend_json",
    "draw_trial",
    "expand_spec",
    "natural_records",
    "pooled",
    "recommend",
    "reread_run",
    "rewrite_document",
    "run_defend",
    "run_natural",
    "run_trial",
    "save_natural",
    "split_chain",
    "trial_documents",
]
