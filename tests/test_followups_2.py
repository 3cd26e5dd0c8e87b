"""Follow-ups, second batch: the request cache and the store opened by several at once, the
reason a sweep records after SIGTERM, the rounds of a competition in its Markdown report, and
what a detection defense under ``pairwise`` flagged. Each test failed before its fix; the model
is never loaded (wire fakes on loopback)."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from poise.models import RequestCache
from poise.models._types import ChatResponse
from poise.store import Store

from .cliutil import blender_folder
from .test_probe_followups import (
    NATURAL,
    SWEEP,
    compete_in_rounds_report,
    hangs_after,
    spawn,
    terminate_when_hung,
)
from .wirefake import WireFake


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return blender_folder(tmp_path, monkeypatch)


# -- 1. the request cache and the store opened by several at once -------------------------------------------------
def open_cache(folder: Path) -> None:
    cache = RequestCache(folder / "cache.sqlite")
    cache.put(f"key-{os.getpid()}-{threading.get_ident()}", ChatResponse(text="1. Oster", model="m"))
    assert len(cache) >= 1
    cache.close()


def open_store(folder: Path) -> None:
    with Store(folder / "store") as store:
        store.start_run("natural", {"pid": os.getpid(), "thread": threading.get_ident()})
    open_cache(folder / "store")


@pytest.mark.parametrize(("opener", "db"), [(open_cache, "cache.sqlite"), (open_store, "store/poise.sqlite")])
def test_opening_waits_for_a_concurrent_opener_instead_of_failing(tmp_path, opener, db):
    """``PRAGMA journal_mode=WAL`` on a new file said "database is locked" at once (SQLite's
    busy timeout does not apply there) while another opener was converting the same file:
    here another connection is in the middle of a write, as that opener is, for 0.3 s."""
    path = tmp_path / db
    path.parent.mkdir(parents=True, exist_ok=True)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.3, lambda: (other.execute("ROLLBACK"), other.close()))
    timer.start()
    try:
        opener(tmp_path)
    finally:
        timer.join()


def _open_in_rounds(folder: str, rounds: int, barrier: Any, errors: Any) -> None:
    failed = []
    for n in range(rounds):
        barrier.wait()
        try:
            open_store(Path(folder) / str(n))
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the test
            failed.append(f"round {n}: {exc}")
    errors.put(failed)


def test_processes_opening_a_new_store_and_cache_together_all_succeed(tmp_path):
    """Six processes open the same new store and its request cache at once, then write, in
    each of 30 rounds (a new folder each round): before the fix about one round in ten lost
    an opener to "database is locked"."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(6)
    errors = context.Queue()
    workers = [context.Process(target=_open_in_rounds, args=(str(tmp_path), 30, barrier, errors)) for _ in range(6)]
    for worker in workers:
        worker.start()
    failed = [line for _ in workers for line in errors.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=60)
    assert failed == []
    assert all(worker.exitcode == 0 for worker in workers)



# -- 2. the reason a sweep records after SIGTERM -------------------------------------------------------------------
@pytest.mark.parametrize("executor", [None, "local", "ray"])  # None: an ordinary command, what the sweep matches
def test_after_sigterm_a_sweep_records_the_reason_an_ordinary_command_does(folder, executor):
    """The sweep's executors wrote "KeyboardInterrupt" as an interrupted run's reason after
    SIGTERM; an ordinary command wrote "Terminated" (the CLI's SIGTERM exception)."""
    if executor == "ray":
        pytest.importorskip("ray")
    store = folder / "store"
    hung = threading.Event()
    if executor is None:
        args: tuple[str, ...] = (*NATURAL, "-n", "3", "-k", "1", "-m", "openai:fake")
        script = hangs_after(2, hung, seconds=1)  # a command waits for the call in flight
    else:
        (folder / "sweep.toml").write_text(SWEEP)
        args = ("sweep", "sweep.toml", "--executor", executor, "--jobs", "1")
        script = hangs_after(2, hung)
    with WireFake(script) as fake:
        terminate_when_hung(spawn(*args, "--base-url", fake.url, "--store", str(store), cwd=folder), hung, store,
                            kept=2)
    with sqlite3.connect(store / "poise.sqlite") as conn:
        assert conn.execute("SELECT status, error FROM runs").fetchall() == [("interrupted", "Terminated")]


# -- 3. the rounds of a competition in its Markdown report ----------------------------------------------------------
EVIL_MD = "<b>Ninja</b> | [x](http://e.x)"
EVIL_MD_SHOWN = r"&lt;b&gt;Ninja&lt;/b&gt; \| \[x\](http://e.x) Foodi"


def test_the_markdown_report_of_a_competition_in_rounds_shows_each_searchs_best_score_per_round(folder, capsys):
    """The terminal table and the HTML report showed each search's best score per round; the
    Markdown report only the gain together after round 1."""
    data, md = compete_in_rounds_report(folder, capsys, EVIL_MD, "r.md")
    section = md[md.index("### Competition"):]
    assert "Best search score per round" in section
    assert "| product | round 1 | round 2 | round 3 |\n| --- | ---: | ---: | ---: |\n" in section
    shown = {"Oster": "Oster Pro 1200", "Blendtec": "Blendtec Designer 650 S", EVIL_MD: EVIL_MD_SHOWN}
    for p in data["products"]:
        assert len(p["rounds"]) == 3
        scores = " | ".join(f"{r['best_search_score']:.2f}" + ("" if r["injection"] else " (none found)")
                            for r in p["rounds"])
        assert f"| {shown[p['brand']]} | {scores} |\n" in section, p["brand"]
    assert EVIL_MD not in md and "<b>" not in md


# -- 4. what a detection defense under pairwise flagged ---------------------------------------------------------------
def test_pairwise_over_the_filter_reports_what_the_filter_flagged_in_catalog_indices():
    """``pairwise`` dropped the report of a detection defense under it (its calls see two-product
    sub-categories), so ``poise defend`` showed no detection rates for 'instruction-filter+pairwise'.
    The injected page is product 1: index 1 in the pair (0, 1), index 0 in the pair (1, 2)."""
    from poise.catalog import Category
    from poise.defenses import defend
    from poise.experiments._defend_figures import flagged_pages

    from .test_defenses_detect import BLENDER, INJECTION, engine_for, engine_requests, injected, plain_answer
    from .wirefake import context_documents

    category = Category(name=BLENDER.name, query=BLENDER.query, products=BLENDER.products[:3])
    with WireFake([], responder=plain_answer) as fake:
        result = defend(engine_for(fake), ["instruction-filter", "pairwise"]).recommend(
            category, seed=0, documents=injected(1)[:3])
        assert len(engine_requests(fake)) == 6  # 3 pairs, both orders
        assert all(INJECTION not in text for r in engine_requests(fake) for _, text in context_documents(r))
        plain = defend(engine_for(fake), ["pairwise"]).recommend(category, seed=0, documents=injected(1)[:3])
    assert result.report["flagged"] == [1]
    ((detector,),) = [result.report["detection"]]
    assert detector["defense"].startswith("instruction-filter") and detector["flagged"] == [1]
    assert [(p["index"], p["flagged"], p["action"]) for p in detector["pages"]] == [
        (0, False, "keep"), (1, True, "sanitize"), (2, False, "keep")]
    assert flagged_pages(result.report, category) == {1}  # what poise defend's detection rates read
    assert "flagged" not in plain.report and "detection" not in plain.report
