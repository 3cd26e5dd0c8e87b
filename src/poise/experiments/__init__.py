"""Experiments on the engine under test: single recommendations now; natural analysis,
attacks, transfer and defenses build on the same recorded calls."""

from ._recommend import Recommendation, call_record, recommend

__all__ = ["Recommendation", "call_record", "recommend"]
