"""The white-box ``gcg`` method on the bundled model's real weights (PyTorch, CPU): the kept
loss never rises, the injection it finds is measured on the llama.cpp engine like any other
candidate, bad parameters and a missing PyTorch are one line before any query, and a resumed
run neither recomputes a finished step nor asks the recommender anything twice."""

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
from poise.attacks import check_method, injection_sha

from . import inprocess
from .conftest import tiny_category
from .test_attacks import immune
from .test_cli import assert_one_line_error
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
