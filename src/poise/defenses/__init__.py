"""Defenses: engines that wrap the engine under test and are recommenders themselves."""

# imported for their registrations: prompt-level (_prompt), detection (_detect), aggregation
# and mixing (_aggregate, _mixed, _pairwise) defenses, the rule-based instruction filter (_filter)
from . import _aggregate, _detect, _filter, _mixed, _pairwise, _prompt  # noqa: F401
from .base import (
    DEFENSES,
    Context,
    DefendedResult,
    Defense,
    DefenseError,
    Param,
    combined_response,
    defend,
    get_defense,
    parse_spec,
    register_defense,
    split_chain,
)

__all__ = [
    "DEFENSES",
    "Context",
    "DefendedResult",
    "Defense",
    "DefenseError",
    "Param",
    "combined_response",
    "defend",
    "get_defense",
    "parse_spec",
    "register_defense",
    "split_chain",
]
