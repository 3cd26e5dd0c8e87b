"""What reading an answer gives: a ranking, or the reason there is none (one place for the
paper's score rule)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .._errors import AmbiguousResponse, UnparseableResponse

Status = Literal["ranked", "unparseable", "ambiguous"]
Role = Literal["recommended", "against", "compared", "quoted", ""]
AMBIGUOUS_PREFIX = "ambiguous: "


@dataclass(frozen=True)
class Ranking:
    """The products an answer recommends, best first, as indices into the product list.

    ``status`` is "ranked", or "unparseable" (no ranking in the answer) or "ambiguous" (the
    answer can be read more than one way); ``reason`` says why for the last two. ``roles``
    gives, per product, how the answer treats it: "recommended", "against" (advised against,
    skipped, excluded), "compared" (named only as a point of comparison or in passing),
    "quoted" (named only in quoted or injected page text) or "" (not named). ``reader``
    names what read it.
    """

    order: tuple[int, ...]
    n: int
    reason: str | None = None
    ambiguous: bool = False
    # the roles, or how to find them: worked out only when asked for (it reads the answer again)
    role_reader: tuple[Role, ...] | Callable[[], tuple[Role, ...]] = field(default=(), repr=False, compare=False)
    reader: str = "heuristic"

    @property
    def roles(self) -> tuple[Role, ...]:
        if callable(self.role_reader):
            object.__setattr__(self, "role_reader", self.role_reader())
        assert not callable(self.role_reader)
        return self.role_reader

    @property
    def status(self) -> Status:
        if self.reason is None:
            return "ranked"
        return "ambiguous" if self.ambiguous else "unparseable"

    @property
    def parseable(self) -> bool:
        return self.reason is None

    @property
    def stored_reason(self) -> str | None:
        """The reason as the store keeps it: ambiguous readings carry a prefix."""
        if self.reason is None:
            return None
        return AMBIGUOUS_PREFIX + self.reason if self.ambiguous else self.reason

    def error(self) -> UnparseableResponse:
        if self.ambiguous:
            return AmbiguousResponse(self.reason or "ambiguous")
        return UnparseableResponse(self.reason or "unparseable")

    @property
    def scores(self) -> tuple[int, ...]:
        """Per product (catalog order): n - j + 1 when ranked j-th, 0 when not recommended."""
        if not self.parseable:
            raise self.error()
        return tuple(scores_from_order(self.order, self.n))

    def rank_of(self, index: int) -> int | None:
        """1-based rank of a product, None when not recommended."""
        try:
            return self.order.index(index) + 1
        except ValueError:
            return None


def score_at(rank: int | None, n: int) -> int:
    """The paper's score rule, the one place it is written: the j-th listed of n products
    scores n - j + 1; a product not listed (``rank`` None) scores 0."""
    return 0 if rank is None else n - rank + 1


def score_of(order: Sequence[int], index: int, n: int) -> int:
    """The paper's score of product ``index`` in a ranking ``order`` (best first)."""
    return score_at(list(order).index(index) + 1 if index in order else None, n)


def scores_from_order(order: Sequence[int], n: int) -> list[int]:
    """The paper's score per product (catalog order): see :func:`score_at`."""
    scores = [0] * n
    for j, index in enumerate(order, start=1):
        scores[index] = score_at(j, n)
    return scores


def status_of_reason(reason: str | None) -> Status:
    """The status of a stored answer from its stored reason (see ``Ranking.stored_reason``)."""
    if reason is None:
        return "ranked"
    return "ambiguous" if reason.startswith(AMBIGUOUS_PREFIX) else "unparseable"
