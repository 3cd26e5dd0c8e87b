"""Response -> ordered products -> scores (the j-th of n listed scores n - j + 1, unlisted 0)."""

from .._errors import UnparseableResponse
from ._extract import Ranking, extract_ranking, parse_ranking, scores_from_order

__all__ = ["Ranking", "UnparseableResponse", "extract_ranking", "parse_ranking", "scores_from_order"]
