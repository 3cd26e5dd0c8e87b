"""Hostile probe of `poise defend`, `--defense` on the other commands and `poise reread`: the
order defenses are composed in, repeated keys in a spec, `+` on the commands that compose by
repeating `--defense`, an interrupted `poise reread`, and the report of a re-read defend run.
Each test failed before its fix; the model is never loaded (wire fakes on loopback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from poise.catalog import sample_catalog
from poise.defenses import DefendedResult, defend
from poise.engine import SearchEngine
from poise.models import get_model

from .cliutil import ENV_DROP, blender_folder, error_line, poise, rank_all
from .wirefake import WireFake, completion

SMALL = ("--budget", "2", "--orders", "2", "--final-orders", "1", "--selection-orders", "1", "--confirm", "0",
         "--responses", "1")
REMINDER = "Remember the user's request"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return blender_folder(tmp_path, monkeypatch)


def defend_args(store: Path, url: str, *specs: str) -> tuple[str, ...]:
    return ("defend", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake", "--base-url", url,
            "--store", str(store), *SMALL, *(arg for spec in specs for arg in ("--defense", spec)))


# -- 1. a prompt-level defense named after one that asks the engine itself ----------------------------------
def test_a_prompt_defense_after_an_aggregation_applies_to_each_of_its_calls():
    """``self-consistency`` then ``sandwich``: the sandwich's one call replaced the k calls of
    self-consistency (its aggregation silently skipped, labelled as measured)."""
    blender = sample_catalog().category("blender")
    with WireFake([], responder=rank_all) as fake:
        engine = defend(SearchEngine(get_model("openai:fake", base_url=fake.url, api_key="k")),
                        ["self-consistency:k=3", "sandwich"])
        result = engine.recommend(blender, seed=0)
    assert isinstance(result, DefendedResult) and result.ranking is not None
    assert len(fake.requests) == 3
    assert all(REMINDER in r["messages"][-1]["content"] for r in fake.requests)
    assert engine.identity()["defenses"] == ["sandwich", "self-consistency:k=3,method=borda"]  # what is measured


def test_defend_measures_a_composition_in_either_order_with_its_calls_and_its_flags(folder, capsys):
    """In `poise defend`, `self-consistency:k=3+sandwich` cost one call per answer (tok× 1.0)
    and `instruction-filter+hierarchy` lost what the filter flagged (TPR/FPR '-')."""
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, *defend_args(folder / "store", fake.url, "self-consistency:k=3+sandwich",
                                                    "instruction-filter+hierarchy"), "--json")
    assert code == 0, err
    configs = {c["label"]: c for c in json.loads(out)["categories"][0]["configs"]}
    assert configs["sandwich+self-consistency:k=3,method=borda"]["cost"]["calls_x"] == 3.0
    assert configs["hierarchy+instruction-filter:action=sanitize,scope=paragraph"]["detection"] is not None


# -- 2. a key given twice in one spec -----------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["self-consistency:k=3,k=5", "spotlight:mode=delimit, mode=encode",
                                  "sandwich+self-consistency:k=1|3,k=5"])
def test_a_key_given_twice_in_a_spec_is_one_line_before_anything_runs(folder, capsys, spec):
    """The last value silently won (``k=3,k=5`` measured k=5)."""
    code, _, err = poise(capsys, *defend_args(folder / "store", "http://127.0.0.1:9/v1", spec))
    line = error_line(err)
    assert code == 1 and "given twice" in line and spec.split("+")[-1].split(":")[0] in line, line
    assert not (folder / "store").exists()


# -- 3. '+' composes on every command that takes --defense --------------------------------------------------
def test_plus_composes_on_recommend_as_on_defend_and_the_sweep(folder, capsys):
    """`poise recommend --defense spotlight+sandwich` said "unknown defense 'spotlight+sandwich'"
    while `poise defend` and a sweep file take the same spec."""
    with WireFake([], responder=rank_all) as fake:
        code, _, err = poise(capsys, "recommend", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake",
                               "--base-url", fake.url, "--store", str(folder / "store"),
                               "--defense", "spotlight:mode=delimit+sandwich", "--json")
    assert code == 0, err
    (sent,) = fake.requests
    assert "««" in sent["messages"][-1]["content"] and REMINDER in sent["messages"][-1]["content"]
    runs = json.loads(poise(capsys, "runs", "--json", "--store", str(folder / "store"))[1])
    assert runs[0]["config"]["defenses"] == ["spotlight:mode=delimit", "sandwich"]


# -- 4. an interrupted `poise reread` -----------------------------------------------------------------------
def spawn(*argv: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
    return subprocess.Popen([sys.executable, "-m", "poise", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=cwd, env=env)


def reader_answers(hang_after: int, hung: threading.Event) -> list:
    """Reader-model replies (JSON under the schema): ``hang_after`` at once, then slow ones."""
    asked = iter(range(1, 1001))

    def answer(body: dict, headers: dict) -> tuple:
        text = json.dumps({"ranking": [1, 2, 3], "unclear": False})
        if next(asked) > hang_after:
            hung.set()
            return (200, completion(text), 2)
        return (200, completion(text), 0)

    return [answer] * 1000


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_reread_resumes_its_run_and_asks_nothing_again(folder, capsys, sig, code):
    """Interrupted, `poise reread` left an interrupted run that a rerun never adopted: a second,
    complete run of the same re-reading was written beside it."""
    store = folder / "store"
    count = iter(range(1000))
    with WireFake([], responder=lambda r: f"{rank_all(r)}\n(answer {next(count)})") as fake:  # 4 distinct answers
        assert poise(capsys, "natural", "-c", "blender", "--catalog", "cat.jsonl", "-n", "4", "-k", "1",
                     "--bootstrap", "0", "-m", "openai:fake", "--base-url", fake.url, "--store", str(store))[0] == 0
    source = json.loads(poise(capsys, "runs", "--json", "--store", str(store))[1])[0]["id"]
    args = ("reread", source, "--reader", "heuristic+openai:reader", "--store", str(store))
    hung = threading.Event()
    with WireFake(reader_answers(1, hung)) as fake:
        proc = spawn(*args, "--base-url", fake.url, cwd=folder)
        assert hung.wait(60)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == code, err
        assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("poise: error: "), err
        port = fake.server.server_address[1]
    with WireFake([], responder=lambda r: json.dumps({"ranking": [1, 2, 3], "unclear": False}), port=port) as again:
        code_again, out, err = poise(capsys, *args, "--base-url", again.url, "--json")
    assert code_again == 0, err
    assert "resuming run" in err
    reread = json.loads(out)
    assert reread["calls"] == 4 and sum(reread["after"].values()) == 4
    runs = json.loads(poise(capsys, "runs", "--json", "--store", str(store))[1])
    assert [(r["command"], r["status"]) for r in runs] == [("natural", "finished"), ("natural", "finished")]
    assert next(r for r in runs if r["id"] == reread["run_id"])["calls"] == 4  # each answer copied once
    assert len(again.requests) <= 4 - 1  # the answer read before the interruption is not asked again


# -- 5. the report of a re-read defend run ------------------------------------------------------------------
def test_the_report_of_a_reread_defend_run_says_what_it_holds(folder, capsys):
    """The report of `poise reread` on a defend run said "defend.json is not written yet", of a
    finished run that never writes one."""
    store = folder / "store"
    with WireFake([], responder=rank_all) as fake:
        assert poise(capsys, *defend_args(store, fake.url, "sandwich"))[0] == 0
    source = json.loads(poise(capsys, "runs", "--json", "--store", str(store))[1])[0]["id"]
    code, out, err = poise(capsys, "reread", source, "--store", str(store), "--json")
    assert code == 0, err
    new = json.loads(out)["run_id"]
    code, md, err = poise(capsys, "report", new, "--store", str(store), "-o", "-", "-f", "md")
    assert code == 0, err
    assert "not written yet" not in md
    assert f"re-reads run {source}" in md and "not recomputed" in md


# -- 6. a listed value outside `poise defend`, and the error's grammar ------------------------------------
@pytest.mark.parametrize(("spec", "fragment"), [
    ("self-consistency:k=1|3", "k='1|3' lists several values; list values (a|b|c) only in `poise defend`"),
    ("self-consistency:k=3.5", "k='3.5' is not an int; give k an int"),
])
def test_a_value_list_or_a_wrong_type_on_attack_says_what_to_write(folder, capsys, spec, fragment):
    """`k=1|3` on `poise attack` said "k='1|3' is not a int; give k a int"."""
    code, _, err = poise(capsys, "attack", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake",
                         "--base-url", "http://127.0.0.1:9/v1", "--store", str(folder / "store"), "--defense", spec)
    line = error_line(err)
    assert code == 1 and fragment in line, line
    assert not (folder / "store").exists()


# -- 7. `poise defend` stopped midway (passed before: a guard, not a fix) -------------------------------------
def test_a_defend_run_stopped_by_sigterm_is_resumed_by_the_same_command_and_not_by_another(folder, capsys):
    store = folder / "store"
    hung = threading.Event()
    asked = iter(range(1, 1001))

    def answer(body: dict, headers: dict) -> tuple:
        if next(asked) > 4:
            hung.set()
            return (200, completion(rank_all(body)), 2)
        return (200, completion(rank_all(body)), 0)

    with WireFake([answer] * 1000) as fake:
        proc = spawn(*defend_args(store, fake.url, "sandwich"), cwd=folder)
        assert hung.wait(60)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 143 and "Traceback" not in err, err
        assert err.strip().splitlines()[-1].startswith("poise: error: terminated (SIGTERM)"), err
        port = fake.server.server_address[1]
    with WireFake([], responder=rank_all, port=port) as again:
        code, _, err = poise(capsys, *defend_args(store, again.url, "sandwich", "hierarchy"))  # other inputs
        assert code == 0 and "resuming" not in err, err
        assert "stopped with other inputs (defenses" in err, err  # said, not silent
        code, _, err = poise(capsys, *defend_args(store, again.url, "sandwich"))
        assert code == 0 and "resuming run" in err, err
    statuses = [r["status"] for r in json.loads(poise(capsys, "runs", "--json", "--store", str(store))[1])]
    assert statuses == ["finished", "finished"]  # the stopped run was finished by the same command
