"""Response -> ordered products -> scores (the j-th of n listed scores n - j + 1, unlisted 0)."""

from .._errors import AmbiguousResponse, UnparseableResponse
from ._early import LOOP_STOP, answer_loops
from ._extract import extract_ranking, parse_ranking
from ._readers import HEURISTIC, AgreementReader, HeuristicReader, ModelReader, RankingReader, get_reader
from ._result import AMBIGUOUS_PREFIX, Ranking, Role, Status, score_at, score_of, scores_from_order, status_of_reason

__all__ = [
    "AMBIGUOUS_PREFIX",
    "HEURISTIC",
    "LOOP_STOP",
    "AgreementReader",
    "AmbiguousResponse",
    "HeuristicReader",
    "ModelReader",
    "Ranking",
    "RankingReader",
    "Role",
    "Status",
    "UnparseableResponse",
    "answer_loops",
    "extract_ranking",
    "get_reader",
    "parse_ranking",
    "score_at",
    "score_of",
    "scores_from_order",
    "status_of_reason",
]
