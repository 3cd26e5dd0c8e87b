"""The end of a natural run: every trial done, the analysis written to ``natural.json`` and
its figures beside it (the library's work; a command only shows the result)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .._errors import PoiseError
from ..store import Store, StoredNatural
from ._natural import Rewriter
from ._natural_analysis import POOLED, Analysis, analyse_natural, natural_records


@dataclass(frozen=True)
class NaturalResult:
    """A finished natural run: the analyses (per category, and pooled), what natural.json
    holds, and the figures written beside it."""

    analyses: dict[str, Analysis]
    stored: StoredNatural
    plots: list[Path]


def check_trials_done(store: Store, run_id: str, total: int) -> None:
    """Refuse to analyse a run whose trials are not all done (failed calls are retried by
    running the same command again)."""
    missing = total - len(store.done_tasks(run_id))
    if missing:
        raise PoiseError(f"{missing} of {total} trials failed (stored as failed calls)",
                         "run the same command again to retry them")


def save_natural(store: Store, run_id: str, *, model: str, trials: int, seed: int = 0, bootstrap: int = 1000,
                 rewriter: Rewriter | None = None, plots: bool = True) -> NaturalResult:
    """Analyse a natural run's records, write ``natural.json`` and (with ``plots``) the
    figures into the run's folder."""
    rewriter = rewriter or Rewriter()
    analyses = analyse_natural(natural_records(store, run_id), n_boot=bootstrap, seed=seed)
    folder = store.run_dir(run_id)
    paths: list[Path] = []
    if plots:
        from ._natural_plots import save_natural_plots  # matplotlib: loaded only to draw

        paths = save_natural_plots(analyses, folder)
    stored = StoredNatural(
        run_id=run_id, model=model, trials=trials, seed=seed, rewrite=rewriter.kind,
        llm_rewrites_kept=rewriter.llm_kept, llm_rewrites_replaced=rewriter.fell_back,
        categories={c: a.to_json() for c, a in analyses.items() if c != POOLED},
        pooled=analyses[POOLED].to_json() if POOLED in analyses else None, plots=[str(p) for p in paths])
    store.save_result(run_id, stored)
    return NaturalResult(analyses, stored, paths)
