"""What a report shows, gathered from the store into plain data.

Every run gets its configuration and cost; then what its kind provides: the calls and
rankings of ``recommend`` and ``demo`` runs, the analysis of ``natural`` runs, the
``attack.json`` of attack runs, the ``transfer.json`` of transfer runs, the
``compete.json`` of competitions, the ``defend.json`` of defense comparisons and the
``defend-clean.json`` of clean-only ones. Text in here
(responses, injections, product names) is untrusted: the renderers escape it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import __version__
from .._errors import StoreError
from ..ranking._result import AMBIGUOUS_PREFIX
from ..store import (
    ResultError,
    ResultFile,
    RunRecord,
    Store,
    StoredAttack,
    StoredCompete,
    StoredDefend,
    StoredDefendClean,
    StoredNatural,
    StoredTransfer,
)
from ._defend_data import check_defend, check_defend_clean, plain

MAX_CALLS_SHOWN = 100  # calls listed per run; the rest are counted
MAX_NESTING = 20  # levels of the candidate tree shown nested; deeper candidates follow flat at the last level
R = TypeVar("R", bound=ResultFile)
NATURAL_BOOTSTRAP = 200  # resamples when a natural run has no natural.json to take intervals from


@dataclass(frozen=True)
class Cost:
    calls: int
    cached: int
    failed: int
    unparsed: int
    prompt_tokens: int
    completion_tokens: int
    model_time_s: float  # summed latency of the calls not served from cache
    wall_time_s: float | None  # start to finish (None while unfinished)
    ambiguous: int = 0  # answers the reader could read more than one way (counted apart)


@dataclass(frozen=True)
class ProductScore:
    product: str
    position: int | None  # context position, 1 = first
    rank: int | None  # None: not listed
    score: int


@dataclass(frozen=True)
class CallView:
    id: int
    category: str
    query: str
    model: str
    seed: int | None
    response: str | None
    parseable: bool | None
    reason: str | None
    error: str | None
    cached: bool
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    ranking: list[ProductScore]  # best first, unlisted last; empty when unparseable

    @property
    def ambiguous(self) -> bool:
        """An answer the reader could read more than one way (its reason carries the mark)."""
        return self.parseable is False and (self.reason or "").startswith(AMBIGUOUS_PREFIX)


@dataclass(frozen=True)
class CategoryRanking:
    """Mean score of each product over a run's parseable calls of one category."""

    category: str
    calls: int
    rows: list[dict[str, Any]]  # product, mean_score, mean_rank (listed only), listed, first


@dataclass(frozen=True)
class NaturalView:
    analyses: dict[str, Any]  # category (and 'pooled') -> experiments.Analysis
    intervals: str  # where the 95% intervals come from


@dataclass
class RunView:
    record: RunRecord
    config: list[tuple[str, str]]
    cost: Cost
    rankings: list[CategoryRanking] = field(default_factory=list)
    calls: list[CallView] = field(default_factory=list)
    calls_hidden: int = 0
    natural: NaturalView | None = None
    attack: dict[str, Any] | None = None
    transfer: dict[str, Any] | None = None
    defend: dict[str, Any] | None = None
    defend_clean: dict[str, Any] | None = None  # defend-clean.json (``poise defend --clean-only``)
    compete: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def kind(self) -> str:
        return self.record.command


@dataclass
class ReportData:
    runs: list[RunView]
    store: str
    generated: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S"))
    version: str = __version__

    @property
    def attacks(self) -> list[dict[str, Any]]:
        return [r.attack for r in self.runs if r.attack is not None]

    @property
    def title(self) -> str:
        ids = [r.id for r in self.runs]
        return "poise report: " + (ids[0] if len(ids) == 1 else f"{len(ids)} runs")


# -- which runs -----------------------------------------------------------------------------------
def resolve_runs(store: Store, run_ids: list[str] | None = None) -> list[RunRecord]:
    """The runs named (an exact id or a unique prefix of one), or the latest run."""
    records = store.runs()
    if not records:
        raise StoreError(f"no runs yet in {store.db_path}", "run an experiment first, or pass --store")
    if not run_ids:
        return [records[0]]
    chosen: list[RunRecord] = []
    for wanted in run_ids:
        exact = [r for r in records if r.id == wanted]
        matches = exact or [r for r in records if wanted and r.id.startswith(wanted)]
        if not matches:
            raise StoreError(f"no run {wanted!r} in {store.db_path}", "run `poise runs` to list the runs")
        if len(matches) > 1:
            raise StoreError(f"{wanted!r} matches {len(matches)} runs", "give more of the run id")
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


def gather_report(store: Store, run_ids: list[str] | None = None) -> ReportData:
    """Everything a report of these runs (default: the latest) shows."""
    return ReportData(runs=[gather_run(store, r) for r in resolve_runs(store, run_ids)], store=str(store.dir))


def gather_run(store: Store, record: RunRecord) -> RunView:
    view = RunView(record=record, config=flatten(record.config), cost=cost_of(record))
    kind = record.command
    if kind == "attack":
        attack = _load(store, view, StoredAttack, _ATTACK_KEYS)
        view.attack = None if attack is None else _attack_view(attack, view)
    elif kind == "transfer":
        transfer = _load(store, view, StoredTransfer)
        view.transfer = None if transfer is None else {**transfer.model_dump(mode="json"), "run_id": view.id}
    elif kind == "defend":
        defend = _load(store, view, StoredDefend)
        view.defend = None if defend is None else _defend_view(defend, view)
    elif kind == "defend-clean":
        clean = _load(store, view, StoredDefendClean)
        view.defend_clean = None if clean is None else _checked(clean, view, check_defend_clean)
    elif kind == "compete":
        compete = _load(store, view, StoredCompete)
        view.compete = None if compete is None else _compete_view(compete, view)
    else:
        scores = store.scores(record.id)
        view.rankings = category_rankings(scores)
        if kind == "natural":
            view.natural = natural_view(store, record.id)
        else:
            calls = store.calls(record.id)
            view.calls = [call_view(c, scores) for c in calls[:MAX_CALLS_SHOWN]]
            view.calls_hidden = max(0, len(calls) - MAX_CALLS_SHOWN)
    if record.config_problem is not None:
        view.notes.append(f"this run's configuration cannot be read ({record.config_problem}): it is shown without one")
    if (caveat := reader_caveat(record.config, record.id)) is not None:
        view.notes.append(caveat)
    if record.status != "finished":
        view.notes.append(f"this run is {record.status}" + (f": {record.error}" if record.error else "")
                          + "; the report shows what the store holds so far")
    return view


# the heuristic reader's first-sight accuracy on fresh answers in large engines' styles
# (docs/measurements.md: 71.7-74.2% on the last three unseen sets)
READER_FIRST_SIGHT = "about three in four"


def reader_caveat(config: dict[str, Any], run_id: str = "RUN") -> str | None:
    """A note for a run whose answers came from an engine other than the bundled model and
    were read by the heuristic reader alone: how far its readings can be trusted, and how to
    check them. None when the model is local or a model reader took part."""
    model, reader = str(config.get("model") or "local"), str(config.get("reader") or "heuristic")
    if reader != "heuristic" or model == "local" or model.startswith("llamacpp:"):
        return None
    return (f"answers were read by the heuristic reader alone, which reads {READER_FIRST_SIGHT} answers "
            "written the way large engines write exactly on first sight (docs/measurements.md); "
            f"`poise reread {run_id} --reader heuristic+openai:MODEL` counts the "
            "answers a capable model reads differently apart, without asking the engine again")


def cost_of(r: RunRecord) -> Cost:
    wall = r.finished_at - r.created_at if r.finished_at else None
    return Cost(calls=r.calls, cached=r.cached_calls, failed=r.failed_calls, unparsed=r.unparseable_calls,
                prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens,
                model_time_s=r.latency_s, wall_time_s=wall, ambiguous=r.ambiguous_calls)


def flatten(config: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """A run's configuration as (dotted key, value) rows."""
    rows: list[tuple[str, str]] = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows += flatten(value, name + ".")
        else:
            rows.append((name, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)))
    return rows


# -- recommend, demo and any run with scored calls -------------------------------------------------
def category_rankings(scores: list[dict[str, Any]]) -> list[CategoryRanking]:
    by_cat: dict[str, dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in scores:
        by_cat[row["category"]][row["product_index"]].append(row)
    out = []
    for category in sorted(by_cat):
        products = by_cat[category]
        rows = []
        for rows_of in products.values():
            ranks = [r["rank"] for r in rows_of if r["rank"] is not None]
            rows.append({
                "product": f"{rows_of[0]['brand']} {rows_of[0]['model']}",
                "mean_score": sum(r["score"] for r in rows_of) / len(rows_of),
                "mean_rank": sum(ranks) / len(ranks) if ranks else None,
                "listed": len(ranks), "first": sum(1 for r in ranks if r == 1)})
        rows.sort(key=lambda r: (-r["mean_score"], r["product"]))
        calls = len({r["call_id"] for rows_of in products.values() for r in rows_of})
        out.append(CategoryRanking(category=category, calls=calls, rows=rows))
    return out


def call_view(call: dict[str, Any], scores: list[dict[str, Any]]) -> CallView:
    mine = [s for s in scores if s["call_id"] == call["id"]]
    ranking = sorted((ProductScore(f"{s['brand']} {s['model']}", s["position"] or None, s["rank"], s["score"])
                      for s in mine), key=lambda p: (p.rank is None, p.rank or 0, p.position or 0))
    return CallView(
        id=call["id"], category=call["category"], query=call["query"],
        model=call["model_name"] or call["model_spec"], seed=call["seed"], response=call["response_text"],
        parseable=None if call["parseable"] is None else bool(call["parseable"]),
        reason=call["unparseable_reason"], error=call["error"], cached=bool(call["cached"]),
        prompt_tokens=call["prompt_tokens"], completion_tokens=call["completion_tokens"],
        latency_s=call["latency_s"], ranking=ranking)


# -- natural --------------------------------------------------------------------------------------
def natural_view(store: Store, run_id: str) -> NaturalView | None:
    """The analysis of a natural run: exact F-tests and curves recomputed from the records;
    the bootstrap intervals taken from the run's natural.json when it covers the same trials."""
    from ..experiments import analyse_natural, natural_records

    records = natural_records(store, run_id)
    if not len(records):
        return None
    analyses = analyse_natural(records, n_boot=0)
    saved = _natural_json(store, run_id)
    if saved is not None and all(c in saved and saved[c].get("trials") == a.trials for c, a in analyses.items()):
        return NaturalView({c: _with_intervals(a, saved[c]) for c, a in analyses.items()},
                           "the run's own bootstrap (natural.json)")
    analyses = analyse_natural(records, n_boot=NATURAL_BOOTSTRAP)
    return NaturalView(analyses, f"a bootstrap of {NATURAL_BOOTSTRAP} resamples over trials")


def _natural_json(store: Store, run_id: str) -> dict[str, Any] | None:
    try:
        saved = store.load_result(run_id, StoredNatural)
    except ResultError:
        return None
    return None if saved is None else saved.analyses()


def _with_intervals(a: Any, saved: dict[str, Any]) -> Any:
    """``a`` with the intervals of its natural.json, or as it is when they cannot be read there
    (a factor or a position missing, a section or a bound of the wrong kind, a bound past any float)."""
    from ..experiments import FACTORS
    from ..stats import Interval

    def interval(pair: Any) -> Interval:
        lo, hi = pair if isinstance(pair, (list, tuple)) and len(pair) == 2 else (None, None)
        return Interval(math.nan if lo is None else float(lo), math.nan if hi is None else float(hi))

    try:
        curve = [interval(p["ci95"]) for p in saved["position_curve"]]
        replaced = dataclasses.replace(
            a,
            one_way_ci={f: interval(saved["one_way"][f]["eta_sq_ci95"]) for f in FACTORS},
            joint_eta_ci={f: interval(saved["joint_anova"][f]["partial_eta_sq_ci95"]) for f in FACTORS},
            position_curve_ci=curve)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        return a
    return replaced if len(curve) == len(a.position_curve) else a


# -- attack and transfer --------------------------------------------------------------------------
_ATTACK_KEYS = ("category", "product", "method", "score_before", "score_after", "success", "injection")


def _load(store: Store, view: RunView, kind: type[R], need: tuple[str, ...] = ()) -> R | None:
    """A run's result file, or None with a note that says why there is nothing to show."""
    try:
        result = store.load_result(view.id, kind, need)
    except ResultError as exc:
        view.notes.append(f"{kind.FILE} cannot be read ({exc.message}): nothing to show but the run's cost")
        return None
    source = view.record.config.get("reread_of")
    if result is None and source:
        view.notes.append(f"this run re-reads run {source}'s answers with the {view.record.config.get('reader')} "
                          f"reader (`poise reread`): {kind.FILE} is not recomputed from them, so the report shows "
                          "the readings' counts and cost")
    elif result is None:
        why = "is missing (the run ended without it, or it was removed)" if view.record.status == "finished" \
            else "is not written yet"
        view.notes.append(f"{kind.FILE} {why}: nothing to show but the run's cost")
    return result


def _attack_view(attack: StoredAttack, view: RunView) -> dict[str, Any]:
    """What the renderers show of an attack: its fields, the product's name, the search tree."""
    from ..attacks import replaces_page

    data = attack.model_dump(mode="json")
    data["run_id"] = view.id
    _check_extras(data, view)
    data["product_name"] = attack.product.name if attack.product is not None else ""
    data["tree"] = candidate_tree(data["candidates"], data["injection"])
    data["text_label"] = "rewritten page" if replaces_page(attack.method) else "injection"  # what the text is
    return data


def _check_extras(data: dict[str, Any], view: RunView) -> None:
    """Drop, with a note, an attack's stealth figures or method report that cannot be read
    (a file edited, cut short or written by another poise): the rest of the attack still shows."""
    from ..attacks import METHODS, stealth_summary

    stealth = data.get("stealth")
    if stealth is not None:
        lists = [stealth.get(k) or [] for k in ("flagged_by", "flag_clean")]
        numbers = [stealth.get(k) for k in ("perplexity_ratio", "perplexity_clean", "perplexity_injected")]
        ok = all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in lists) \
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in numbers) \
            and isinstance(stealth.get("detectors") or {}, (dict, list))
        _guarded(data, "stealth", view, lambda: ok and stealth_summary(stealth))
    report = data.get("method_report")
    if report is not None:
        summarize = getattr(METHODS.get(str(data.get("method"))), "summarize", None)
        checked = report.get("checked") or []
        ok = isinstance(checked, list) and all(isinstance(c, dict) for c in checked)
        _guarded(data, "method_report", view, lambda: ok and summarize is not None and summarize(report))


def _guarded(data: dict[str, Any], key: str, view: RunView, check: Any) -> None:
    try:
        readable = bool(check())
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError):
        readable = False
    if not readable:
        data[key] = None
        view.notes.append(f"attack.json's {key.replace('_', ' ')} cannot be read (a field is missing or of the "
                          "wrong kind): the attack shows without it")


def _compete_view(compete: StoredCompete, view: RunView) -> dict[str, Any]:
    """A competition's fields; its rounds (a field a newer file adds) only when they can be read."""
    data = compete.model_dump(mode="json")
    data["run_id"] = view.id
    rounds = data.get("rounds") or 1
    per_product = [p.get("rounds") or [] for p in data["products"]]
    ok = all(isinstance(r, list) and all(isinstance(x, dict) for x in r) for r in per_product) \
        and isinstance(rounds, int) and not isinstance(rounds, bool) and 1 <= rounds <= max([1, *map(len, per_product)])
    if not ok:
        view.notes.append("compete.json's rounds cannot be read (not a count of the rounds each product lists): "
                          "the competition shows as one round")
        data["rounds"] = 1
        for p in data["products"]:
            p["rounds"] = []
    for p in data["products"]:  # what the rounds' figures show: a number (else '-') and the injection's text
        p["gain_together_round1"] = plain(p.get("gain_together_round1"))
        p["rounds"] = [{"best_search_score": plain(r.get("best_search_score")),
                        "injection": plain(r.get("injection"), "injection") or ""} for r in p.get("rounds") or []]
    return data


def candidate_tree(candidates: list[dict[str, Any]], final: str) -> list[dict[str, Any]]:
    """Candidates nested by parent: [{"c": candidate, "children": [...], "best", "final", "open"}],
    "open" on the path to the injection the attack kept; at most ``MAX_NESTING`` levels deep (each
    candidate's own depth is in its summary)."""
    scored = [c["mean_score"] for c in candidates if isinstance(c["mean_score"], (int, float))]
    best = max(scored) if scored else None
    roots: list[dict[str, Any]] = []
    by_id: dict[Any, dict[str, Any]] = {}
    for c in candidates:  # a parent listed later (or a cycle) cannot nest: the node becomes a root
        node = {"c": c, "children": [], "best": best is not None and c["mean_score"] == best,
                "final": c["injection"] == final, "open": False}
        parent = by_id.get(c["parent"])
        while parent is not None and parent["level"] >= MAX_NESTING - 1:  # a long chain goes on flat
            parent = parent["parent_node"]
        (parent["children"] if parent else roots).append(node)
        by_id.setdefault(c["id"], node)
        node["parent_node"], node["level"] = parent, 0 if parent is None else parent["level"] + 1
    for node in by_id.values():  # open the path to the injection the attack kept
        if node["final"]:
            while node is not None:
                node["open"], node = True, node["parent_node"]
    return roots


def _defend_view(defend: StoredDefend, view: RunView) -> dict[str, Any] | None:
    return _checked(defend, view, check_defend)


def _checked(result: ResultFile, view: RunView,
             check: Callable[[dict[str, Any]], str | None]) -> dict[str, Any] | None:
    """A result file's fields as ``check`` leaves them, or None with a note when it finds a problem."""
    data = result.model_dump(mode="json")
    data["run_id"] = view.id
    problem = check(data)
    if problem:
        view.notes.append(f"{result.FILE} cannot be read ({problem}): nothing to show but the run's cost")
        return None
    return data
