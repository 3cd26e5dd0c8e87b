"""The white-box ``gcg`` method on the bundled model's real weights (PyTorch, CPU): the kept
loss never rises, the injection it finds is measured on the llama.cpp engine like any other
candidate, bad parameters and a missing PyTorch are one line before any query, and a resumed
run neither recomputes a finished step nor asks the recommender anything twice. Under
``--max-perplexity-ratio`` the swaps the stealth filter refuses are dropped before scoring
(scripted scoring models where the filter itself is tested; the bundled model for a real run)."""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from poise import PoiseError
from poise.attacks import (
    FAMILIES,
    Budget,
    Evaluator,
    GreedyCoordinateGradient,
    Stealth,
    Target,
    admitted_swaps,
    check_method,
    get_method,
    injection_sha,
    page_perplexity,
    run_attack,
)
from poise.engine import SearchEngine
from poise.models import TokenLogprob, get_model
from poise.store import CallRecord, Store

from . import inprocess
from .conftest import tiny_category
from .test_attacks import immune
from .test_cli import assert_one_line_error
from .test_defenses_detect import ScriptedScorer
from .wirefake import WireFake

SMALL = {"steps": 3, "orders": 2, "suffix": 4, "candidates": 4, "topk": 16, "every": 2}


def rows(store: Path, run_id: str) -> list[dict[str, Any]]:
    with sqlite3.connect(store / "poise.sqlite") as conn:
        found = conn.execute("SELECT task_key, model_spec, meta_json FROM calls WHERE run_id = ? ORDER BY id",
                             (run_id,)).fetchall()
    return [{"key": k, "model": m, **json.loads(meta)} for k, m, meta in found]


@pytest.mark.model
def test_gcg_lowers_its_loss_and_its_injection_is_measured_on_llama_cpp(tmp_path):
    out, run = inprocess.attack(tmp_path, None, category=tiny_category(), model="local", method="gcg",
                                product="Oster Pro 1200", budget=1, responses=1, final_orders=1, confirm=0,
                                max_tokens=40, params={**SMALL, "every": 3})
    report = out["method_report"]
    steps = report["steps"]
    assert [s["step"] for s in steps] == [0, 1, 2] and report["orders"] == 2
    kept = [steps[0]["loss_before"]] + [s["loss"] for s in steps]
    assert all(b <= a for a, b in itertools.pairwise(kept)), kept  # the kept suffix's loss never rises
    assert all(0 < s["fitting"] <= s["swaps"] <= SMALL["candidates"] for s in steps)
    assert all(s["refused"] == 0 for s in steps) and report["max_perplexity_ratio"] is None  # no filter
    for opening in report["setup"]["openings"]:  # per order, the forced opening names the promoted product
        assert opening.endswith("Oster Pro 1200")
    # the injection found is measured at the end on the llama.cpp engine, stored like any candidate
    (measured,) = out["candidates"]
    found = report["head"] + steps[-1]["text"]
    assert out["injection"] == measured["injection"] == found and measured["strategy"] == "gcg"
    assert measured["sha"] == injection_sha(found) and out["injection_sha"] == injection_sha(found)
    recorded = rows(tmp_path, run.id)
    (asked,) = [r for r in recorded if r["phase"] == "search"]
    assert asked["model"] == "local" and asked["injection"] == found and asked["injection_sha"] == measured["sha"]
    gcg = [r for r in recorded if r["phase"] == "gcg"]  # every step in the store, not as a query
    assert [r["key"] for r in gcg] == ["gcg/setup", "gcg/step=0", "gcg/step=1", "gcg/step=2"]
    assert [r["step_record"]["loss"] for r in gcg[1:]] == [s["loss"] for s in steps]
    assert out["search_queries"] == 1 and out["recommender_queries"] == 3


@pytest.mark.model
def test_a_resumed_gcg_run_replays_its_steps_and_asks_nothing_twice(tmp_path):
    """The recommender breaks after the second measurement: steps 0-1 (and 2, computed before
    its measurement failed) are read back, not computed again."""
    options = {"category": tiny_category(), "method": "gcg", "product": "Oster Pro 1200", "budget": 8,
               "responses": 1, "final_orders": 1, "confirm": 0,
               "params": {**SMALL, "steps": 4, "orders": 1, "every": 1}}
    with WireFake([], responder=immune) as fake:
        straight, _ = inprocess.attack(tmp_path / "a", fake.url, **options)
        straight_asked = len(fake.requests)
    with WireFake([], responder=immune) as fake:
        fake.break_after = 2  # two measurements answered, the third fails
        with pytest.raises(PoiseError):
            inprocess.attack(tmp_path / "b", fake.url, max_attempts=1, **options)
        answered, port = fake.answered, fake.server.server_address[1]
    with WireFake([], responder=immune, port=port) as fake:
        resumed, run_b = inprocess.attack(tmp_path / "b", fake.url, **options)
        asked = len(fake.requests)
    assert run_b.resumed and answered == 2 and asked == straight_asked - answered
    keys = [r["key"] for r in rows(tmp_path / "b", run_b.id) if r["phase"] == "gcg"]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 5  # setup and 4 steps, each computed once
    assert resumed["injection"] == straight["injection"]
    assert [s["loss"] for s in resumed["method_report"]["steps"]] == \
        [s["loss"] for s in straight["method_report"]["steps"]]


@pytest.mark.parametrize("params, fragment", [
    ({"steps": 0}, "'steps' must be between 1 and"),
    ({"topk": 2.5}, "'topk' must be a whole number"),
    ({"seconds": "long"}, "'seconds' must be a number"),
    ({"suffix": 65}, "'suffix' must be between 1 and 64"),
    ({"step": 3}, "has no parameter 'step'"),
])
def test_bad_gcg_parameters_are_one_line(params, fragment):
    with pytest.raises(PoiseError) as err:
        check_method("gcg", params)
    assert fragment in str(err.value) and "\n" not in err.value.one_line()


def test_without_pytorch_gcg_says_how_to_install_it_before_anything(tmp_path):
    # torch made unimportable in a fresh interpreter (a None entry in sys.modules), as if the
    # extra were not installed; poise itself runs unchanged
    code = ("import runpy, sys; sys.modules['torch'] = None; "
            "sys.argv = ['poise', 'attack', '--category', 'blender', '--method', 'gcg', '--store', sys.argv[1]]; "
            "runpy.run_module('poise', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "store")], capture_output=True, text=True,
                            timeout=120)
    assert_one_line_error(result, "method 'gcg' needs PyTorch", "pip install 'poise[whitebox]'")
    assert not (tmp_path / "store").exists()  # nothing written, no model opened


# -- the stealth filter inside the search ------------------------------------------------------------
class Bangs(ScriptedScorer):
    """Scripted log-probabilities: every word costs 2 nats, a word holding "!" costs 12."""

    def text_logprobs(self, text: str) -> tuple[TokenLogprob, ...]:
        return tuple(TokenLogprob(token=t.token, logprob=-12.0 if "!" in t.token else t.logprob)
                     for t in super().text_logprobs(text))


OSTER = 2  # in tiny_category()


def stealthy_evaluator(fake: WireFake, store: Store, max_ratio: float | None) -> Evaluator:
    ev = Evaluator(SearchEngine(get_model("openai:fake", base_url=fake.url, api_key="k")), tiny_category(),
                   store=store, run_id=store.start_run("attack", {"test": "gcg-stealth"}))
    ev.target = OSTER
    ev.stealth = Stealth(Bangs("scripted"), max_ratio=max_ratio, detectors=())
    return ev


def test_swaps_the_stealth_filter_refuses_are_dropped_without_a_query(tmp_path):
    words = {1: " great", 2: " value", 3: " wow!", 4: " deal", 5: " buy!"}
    swaps = [[1, 2], [3, 2], [1, 4], [5, 5], [4, 4]]
    with WireFake([], responder=immune) as fake, Store(tmp_path) as store:
        ev = stealthy_evaluator(fake, store, 1.01)
        kept, refused = admitted_swaps(ev, "Buy it.", swaps, lambda ids: "".join(words[i] for i in ids))
        assert kept == [[1, 2], [1, 4], [4, 4]] and refused == 2 and ev.stealth.rejected == 2
        ev.stealth = None  # no filter: every swap is scored
        assert admitted_swaps(ev, "Buy it.", swaps, lambda ids: "".join(words[i] for i in ids)) == (swaps, 0)
        assert fake.requests == [] and ev.search_queries == ev.other_queries == 0


@pytest.mark.parametrize("max_ratio, hint", [
    (1.01, "start from fewer tokens (--param suffix=K)"),  # the fixed text passes, " ! ! ! !" does not
    (0.5, "the fixed text alone is at 1: raise --max-perplexity-ratio to at least that"),
])
def test_a_starting_injection_above_the_ratio_is_one_line_before_any_query(tmp_path, max_ratio, hint):
    with WireFake([], responder=immune) as fake, Store(tmp_path) as store:
        run_id = store.start_run("attack", {"test": "gcg-start"})
        stealth = Stealth(Bangs("scripted"), max_ratio=max_ratio, detectors=())
        with pytest.raises(PoiseError) as err:
            run_attack(SearchEngine(get_model("openai:fake", base_url=fake.url, api_key="k")), tiny_category(),
                       get_method("gcg", suffix=4), store=store, run_id=run_id, product="Oster Pro 1200",
                       budget=Budget(4), stealth=stealth)
        calls = store.calls(run_id)
    line = err.value.one_line()
    assert "\n" not in line and "gcg cannot start: its starting injection (the fixed text and 4 ' !' tokens)" in line
    assert f"above --max-perplexity-ratio {max_ratio:g}" in line and hint in line
    assert fake.requests == [] and calls == []  # nothing asked, no step computed or stored


def test_steps_stored_before_the_filter_replay_and_are_reported_apart(tmp_path):
    """Step records written before swaps were filtered (no ``refused``) are read back as they
    are: nothing computed again (no weights loaded), the found injection measured, the report
    says which steps had no filter inside the search."""
    texts = [" great deal now", " great deal today"]
    with WireFake([], responder=immune) as fake, Store(tmp_path) as store:
        run_id = store.start_run("attack", {"test": "gcg-old-steps"})
        method = get_method("gcg", steps=2, every=5, orders=1, suffix=3)
        cat = tiny_category()
        others = tuple(p.name for i, p in enumerate(cat.products) if i != OSTER)
        head = FAMILIES["direct"](Target("Oster Pro 1200", cat.name, cat.default_query, others), 0)
        old = [{"step": k, "loss_before": 3.0 - k, "loss": 2.5 - k, "improved": True, "swaps": 4, "fitting": 4,
                "seconds": 1.5, "text": t} for k, t in enumerate(texts)]  # the keys an earlier poise wrote
        for key, meta in [("gcg/setup", {"setup": {"surrogate": "old.gguf"}}),
                          *((f"gcg/step={k}", {"step_record": r, "suffix": [7, 8, 9], "injection": head + r["text"],
                                               "injection_sha": injection_sha(head + r["text"])})
                            for k, r in enumerate(old))]:
            store.record_call(run_id, CallRecord(task_key=key, category=cat.name, query=cat.default_query,
                                                 model_spec="whitebox:old.gguf", context_order=[], messages=[],
                                                 config={}, meta={"experiment": "attack", "phase": "gcg", **meta}))
        result = run_attack(SearchEngine(get_model("openai:fake", base_url=fake.url, api_key="k")), cat, method,
                            store=store, run_id=run_id, product="Oster Pro 1200", budget=Budget(2),
                            responses_per_candidate=1, final_orders=1, confirm=0,
                            stealth=Stealth(Bangs("scripted"), max_ratio=1.01, detectors=()))
        keys = [c["task_key"] for c in store.calls(run_id)]
    report = result.method_report
    assert report is not None and report["steps"] == old and report["refused"] == 0
    assert keys.count("gcg/step=0") == keys.count("gcg/step=1") == 1 and "gcg/step=2" not in keys
    assert result.injection == head + texts[1] and result.evaluator.search_queries == 1
    line = GreedyCoordinateGradient.summarize(report)
    assert line.endswith("; stealth filter (perplexity ratio <= 1.01): 2 steps stored before the filter applied "
                         "inside the search"), line
    assert "stealth filter" not in GreedyCoordinateGradient.summarize({**report, "max_perplexity_ratio": None})


@pytest.mark.model
def test_under_a_ratio_gcg_scores_only_admitted_swaps_and_a_resume_replays_the_refusals(tmp_path):
    """The bundled model as the stealth scorer and the surrogate (the recommender is a wire
    fake: what is tested is the search). The ratio is set a little above the starting
    injection's, so some swaps pass and some do not (here 2 of 4). The first run fails at its
    measurement; the resumed one reads the step back, its refusals included, and computes nothing."""
    cat = tiny_category()
    others = tuple(p.name for i, p in enumerate(cat.products) if i != OSTER)
    head = FAMILIES["direct"](Target("Oster Pro 1200", cat.name, cat.default_query, others), 0)
    scorer = get_model("local")
    clean = cat.products[OSTER].document.text
    page = f"{head}{' !' * 4}\n\n{clean}"  # the starting injection on the page
    clean_ppl = page_perplexity(scorer, clean)[0]
    limit = page_perplexity(scorer, page)[0] / clean_ppl + 0.09
    options = {"category": cat, "method": "gcg", "product": "Oster Pro 1200", "budget": 2, "responses": 1,
               "final_orders": 1, "confirm": 0, "params": {**SMALL, "steps": 1, "orders": 1, "every": 5},
               "stealth": lambda: Stealth(scorer, max_ratio=limit, detectors=())}
    with WireFake([], responder=immune) as fake:
        fake.break_after = 0  # the measurement fails: the step was computed and stored
        with pytest.raises(PoiseError):
            inprocess.attack(tmp_path, fake.url, max_attempts=1, **options)
        port = fake.server.server_address[1]
    with WireFake([], responder=immune, port=port) as fake:
        out, run = inprocess.attack(tmp_path, fake.url, **options)
    report, recorded = out["method_report"], rows(tmp_path, run.id)
    steps = report["steps"]
    assert run.resumed and [r["step_record"] for r in recorded if r["key"].startswith("gcg/step=")] == steps
    assert sorted(r["key"] for r in recorded if r["phase"] == "gcg") == ["gcg/setup", "gcg/step=0"]
    refused, fitting = sum(s["refused"] for s in steps), sum(s["fitting"] for s in steps)
    assert 0 < refused < fitting and report["refused"] == refused and report["max_perplexity_ratio"] == limit
    assert f"{refused} of {fitting} swaps refused before scoring" in GreedyCoordinateGradient.summarize(report)
    found = head + steps[-1]["text"]  # the kept injection: admitted, measured, the only one asked
    ratio = page_perplexity(scorer, f"{found}\n\n{clean}")[0] / clean_ppl
    assert ratio <= limit and out["injection"] == found
    assert [c["injection"] for c in out["candidates"]] == [found] and out["candidates"][0]["perplexity_ratio"] <= limit
    assert {r["injection"] for r in recorded if r["phase"] == "search"} == {found} and out["search_queries"] == 1
