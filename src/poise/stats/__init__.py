"""Statistics for experiments: exact F-tests (one-way, within blocks, Type II) and a
cluster bootstrap."""

from ._anova import FTest, one_way, type2
from ._bootstrap import Interval, bootstrap

__all__ = ["FTest", "Interval", "bootstrap", "one_way", "type2"]
