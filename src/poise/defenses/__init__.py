"""Defenses: engines that wrap the engine under test and are recommenders themselves."""

from . import _prompt  # noqa: F401  (registers the prompt-level defenses)
from . import _detect  # noqa: F401  (registers the detection defenses)
from . import _aggregate, _mixed, _pairwise  # noqa: F401  (aggregation and mixing defenses)
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
]
