"""The files a run leaves beside its calls (``attack.json``, ``natural.json``,
``transfer.json``, ``compete.json`` ...), as typed, versioned models: written and read here,
and nowhere else.

Every file carries ``schema_version``. A file written before versions existed (no
``schema_version``) reads as version 0: the same fields, any of the later ones missing,
so old stores keep loading. A reader names the fields it cannot do without (``need``);
a file that lacks one, or holds a value of the wrong type, is a :class:`ResultError` that
says what is wrong in one line.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .._errors import StoreError

RESULT_SCHEMA_VERSION = 1  # the version this poise writes; 0: a file from before versions


class ResultError(StoreError):
    """A run's result file that cannot be read (missing fields, wrong types, not JSON)."""


class ResultFile(BaseModel):
    """What every result file shares: its name in the run's folder and its schema version."""

    model_config = ConfigDict(extra="allow")  # a newer poise's extra fields are kept, not refused

    FILE: ClassVar[str]
    WHAT: ClassVar[str]  # how a problem names the file's content: "the attack"
    schema_version: int = RESULT_SCHEMA_VERSION
    run_id: str | None = None


# -- attack ---------------------------------------------------------------------------------------
class ProductRef(BaseModel):
    """The promoted product: its index in the category and its names."""

    index: int | None = None
    brand: str = ""
    model: str = ""

    @property
    def name(self) -> str:
        return f"{self.brand} {self.model}".strip()


class StoredCandidate(BaseModel):
    """One injection the search scored (what ``attacks.Candidate.to_json`` writes)."""

    model_config = ConfigDict(extra="allow")

    id: int
    parent: int | None
    strategy: str
    injection: str
    mean_score: float | None
    depth: int | None = None
    sha: str | None = None
    scores: list[int] = Field(default_factory=list)
    unparseable: int = 0
    queries_so_far: int | None = None
    confirmed: bool = False
    search_mean_score: float | None = None
    search_queries_so_far: int | None = None
    improvement: str = ""
    responses: list[str] = Field(default_factory=list)
    perplexity_ratio: float | None = None  # the page's with and without it (a stealth filter was set)
    rejected: bool = False  # refused by the stealth filter (or by its method: see rejection): never asked
    rejection: str = ""  # a method's own reason for refusing it (rewrite: an instruction, the name dropped ...)
    original: str | None = None  # the page its text was made from, when the text is a whole page (rewrite)
    original_sha: str | None = None

    @field_validator("scores", "responses", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class StoredAttack(ResultFile):
    """``attack.json``: the promoted product before and after the best injection."""

    FILE = "attack.json"
    WHAT = "the attack"

    category: str | None = None
    method: str | None = None
    model: str | None = None
    query: str | None = None
    product: ProductRef | None = None
    injection: str | None = None
    injection_sha: str | None = None
    score_before: float | None = None
    score_after: float | None = None
    score_before_ci: list[float | None] | None = None
    score_after_ci: list[float | None] | None = None
    rank_before: float | None = None
    rank_after: float | None = None
    first_rate_before: float | None = None
    first_rate_after: float | None = None
    success: bool | None = None
    n_products: int | None = None
    final_orders: int | None = None
    unparseable_before: int | None = None
    unparseable_after: int | None = None
    ambiguous_before: int | None = None
    ambiguous_after: int | None = None
    recommender_queries: int | None = None
    search_queries: int | None = None
    attacker_queries: int | None = None
    tokens: int | None = None
    queries_to_first_success: int | None = None
    stopped_by: str | None = None
    confirmed: list[int] | None = None
    bad_attacker_replies: int | None = None
    selection_scores: list[float] | None = None
    stealth: dict[str, Any] | None = None  # the injection's stealth figures (attacks.Stealth), when measured
    method_report: dict[str, Any] | None = None  # what a method adds (a proxy trace, sequential tests ...)
    candidates: list[StoredCandidate] = Field(default_factory=list)
    # the category's products and pages the attack ran on (attacks.pages_sha): a transfer refuses
    # edited pages; None in a file written before it was recorded
    pages_sha: str | None = None

    @field_validator("product", mode="before")
    @classmethod
    def _product_name(cls, value: Any) -> Any:
        return {"model": value} if isinstance(value, str) else value

    @field_validator("candidates", mode="before")
    @classmethod
    def _no_candidates(cls, value: Any) -> Any:
        return [] if value is None else value


# -- competition ----------------------------------------------------------------------------------
class CompeteSide(BaseModel):
    """One competing product's scores under one condition of the joint evaluation (no injection,
    its own injection alone, every competitor's injection together) on the same fresh orders."""

    model_config = ConfigDict(extra="allow")

    score: float | None = None  # mean score (n - rank + 1; unlisted 0) over readable answers
    score_ci: list[float | None] | None = None
    rank: float | None = None  # n + 1 - score: 1 = recommended first
    first_rate: float | None = None  # share of all answers (unreadable ones count against) naming it first
    unparseable: int = 0
    ambiguous: int = 0


class CompeteProduct(ProductRef):
    """One competing product: its own search's best injection and its figures in the joint evaluation."""

    model_config = ConfigDict(extra="allow")

    injection: str = ""
    injection_sha: str | None = None
    search_queries: int | None = None
    attacker_queries: int | None = None
    stopped_by: str | None = None
    baseline: CompeteSide = Field(default_factory=CompeteSide)
    alone: CompeteSide = Field(default_factory=CompeteSide)
    together: CompeteSide = Field(default_factory=CompeteSide)
    gain_alone: float | None = None  # mean rank gained with its own injection alone
    gain_together: float | None = None  # ... with every competitor's injection in place too
    stealth: dict[str, Any] | None = None
    method_report: dict[str, Any] | None = None
    candidates: list[StoredCandidate] = Field(default_factory=list)


class StoredCompete(ResultFile):
    """``compete.json``: K products of one category attacked at once, each by its own search,
    then measured on the same fresh orders with no injection, with its own alone, and with all
    K together (``poise attack --compete K``)."""

    FILE = "compete.json"
    WHAT = "the competition"

    category: str | None = None
    method: str | None = None
    model: str | None = None
    query: str | None = None
    k: int | None = None
    n_products: int | None = None
    final_orders: int | None = None
    selection_scores: list[float] = Field(default_factory=list)
    products: list[CompeteProduct]
    winner: str | None = None  # the competitor named first most often together (None: none ever was)
    first_other: float | None = None  # share of the together answers naming first a non-competing product (or none)
    unread_together: float | None = None  # share of the together answers that could not be read
    recommender_queries: int | None = None
    search_queries: int | None = None
    attacker_queries: int | None = None
    tokens: int | None = None


# -- transfer -------------------------------------------------------------------------------------
class TransferItem(BaseModel):
    """One attack run's best injection re-scored on the target engine."""

    model_config = ConfigDict(extra="allow")

    category: str
    product: str
    injection: str
    source_before: float | None
    source_after: float | None
    target_before: float | None
    target_after: float | None
    source_run: str | None = None
    target_before_ci: list[float | None] | None = None
    target_after_ci: list[float | None] | None = None
    target_rank_before: float | None = None
    target_rank_after: float | None = None
    target_first_rate_after: float | None = None
    target_unparseable_before: int | None = None
    target_unparseable_after: int | None = None


class StoredTransfer(ResultFile):
    """``transfer.json``: attack runs' best injections carried over to another engine."""

    FILE = "transfer.json"
    WHAT = "the transfer"

    source_runs: list[str] = Field(default_factory=list)
    model: str | None = None
    template: str | None = None
    items: list[TransferItem]

    @field_validator("source_runs", mode="before")
    @classmethod
    def _no_sources(cls, value: Any) -> Any:
        return [] if value is None else value


# -- natural --------------------------------------------------------------------------------------
class StoredNatural(ResultFile):
    """``natural.json``: the analysis of a natural run, per category and pooled
    (each ``experiments.Analysis.to_json``), and the plots written beside it."""

    FILE = "natural.json"
    WHAT = "the natural analysis"

    model: str | None = None
    trials: int | None = None
    seed: int | None = None
    rewrite: str | None = None
    llm_rewrites_kept: int | None = None
    llm_rewrites_replaced: int | None = None
    categories: dict[str, dict[str, Any]] = Field(default_factory=dict)
    pooled: dict[str, Any] | None = None
    plots: list[str] = Field(default_factory=list)

    def analyses(self) -> dict[str, dict[str, Any]]:
        """Every category's analysis, the pooled one under 'pooled'."""
        return {**self.categories, **({"pooled": self.pooled} if self.pooled else {})}


# -- defend ---------------------------------------------------------------------------------------
class StoredDefend(ResultFile):
    """``defend.json``: every category's comparison (``experiments.DefendResult``) and the
    rows pooled over categories. Its sections are checked where they are shown (the report)."""

    FILE = "defend.json"
    WHAT = "the defense comparison"

    categories: list[Any]
    pooled: list[Any] = Field(default_factory=list)


class StoredDefendClean(ResultFile):
    """``defend-clean.json``: every category's clean utility and cost, no attack
    (``experiments.DefendCleanResult``), and the rows pooled over categories."""

    FILE = "defend-clean.json"
    WHAT = "the clean defense comparison"

    categories: list[Any]
    pooled: list[Any] = Field(default_factory=list)


R = TypeVar("R", bound=ResultFile)


def _problem(exc: ValidationError, what: str) -> str:
    """One line from pydantic's errors: what lacks which fields, or the first wrong value."""
    missing: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if err["type"] == "missing" and loc:
            owner = what if len(loc) == 1 else ("a candidate" if loc[0] == "candidates" else "an item")
            missing.setdefault(owner, []).append(loc[-1])
    if missing:
        owner, names = next(iter(missing.items()))
        return f"{owner} lacks {', '.join(names)}"
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or what
    return f"{where}: {first['msg'].lower()}"


def parse_result(cls: type[R], data: Any, need: tuple[str, ...] = ()) -> R:
    """``data`` (a file's JSON) as ``cls``; ResultError when it is not that, or lacks a
    field in ``need``."""
    if not isinstance(data, dict):
        raise ResultError(f"{cls.WHAT} is not an object")
    if "schema_version" not in data:
        data = {**data, "schema_version": 0}  # written before result files were versioned
    try:
        result = cls.model_validate(data)
    except ValidationError as exc:
        raise ResultError(_problem(exc, cls.WHAT)) from None
    lacking = [k for k in need if k not in data]
    if lacking:
        raise ResultError(f"{cls.WHAT} lacks {', '.join(lacking)}")
    return result


def read_result(folder: Path, cls: type[R], need: tuple[str, ...] = ()) -> R | None:
    """The result file ``cls`` in a run's folder; None when it is not written (yet)."""
    path = folder / cls.FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultError(str(exc)) from None
    except RecursionError:
        raise ResultError("its JSON is nested too deeply to read") from None
    return parse_result(cls, data, need)


def write_result(folder: Path, result: ResultFile) -> Path:
    """Write a result file whole or not at all (a temporary file beside it, renamed)."""
    path = folder / result.FILE
    text = json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=1)
    return write_whole(path, text.encode("utf-8"))


def write_whole(path: Path, data: bytes) -> Path:
    """Write a file whole or not at all (a temporary file beside it, renamed)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # as an ordinary write would leave it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
