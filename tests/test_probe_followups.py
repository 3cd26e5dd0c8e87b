"""Follow-ups to the hostile probe of the CLI (test_probe_recent.py): SIGTERM handled as Ctrl-C,
control characters in model specs, empty parts of a composed defense, --stealth-detectors
alone, a Ray address whose port is no port, and the rounds of a competition in its HTML
report. Each test failed before its fix; the model is never loaded (wire fakes on loopback)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .cliutil import ENV_DROP, answered, blender_folder, error_line, poise, rank_all
from .wirefake import WireFake, completion

TERM_LINE = "poise: error: terminated (SIGTERM); finished calls are saved in the store"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return blender_folder(tmp_path, monkeypatch)


def spawn(*argv: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
    env["RAY_AUTH_MODE"] = "disabled"  # a local cluster on loopback for this test alone
    return subprocess.Popen([sys.executable, "-m", "poise", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=cwd, env=env)


def statuses(store: Path) -> list[str]:
    with sqlite3.connect(store / "poise.sqlite") as conn:
        return [status for (status,) in conn.execute("SELECT status FROM runs ORDER BY created_at")]


def hangs_after(n: int, hung: threading.Event, seconds: float = 60) -> list:
    """Wire-fake replies: ``n`` answers, then each after ``seconds`` (``hung`` set)."""
    asked = iter(range(1, 101))

    def answer(body: dict, headers: dict) -> tuple:
        if next(asked) > n:
            hung.set()
            return (200, completion(rank_all(body)), seconds)
        return (200, completion(rank_all(body)), 0)

    return [answer] * 100


def terminate_when_hung(proc: subprocess.Popen[str], hung: threading.Event, store: Path, kept: int) -> str:
    """SIGTERM once ``kept`` answers are stored and the next call hangs; stderr of the exit."""
    assert hung.wait(60)
    deadline = time.monotonic() + 30
    while answered(store) < kept:
        assert time.monotonic() < deadline, "the answers before the hang were never stored"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and out == "", err
    lines = [line for line in err.splitlines() if line.strip()]
    assert [line for line in lines if line.startswith("poise: ")] == [TERM_LINE] == lines[-1:], err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    return err


# -- 1. SIGTERM is handled as Ctrl-C is -----------------------------------------------------------------------
def test_sigterm_during_natural_marks_the_run_interrupted_and_a_rerun_resumes(folder):
    """SIGTERM (timeout, kill, a CI runner) killed the process outright: the run stayed
    'running' until a later command adopted it."""
    store = folder / "store"
    args = ("natural", "-c", "blender", "--catalog", "cat.jsonl", "-n", "3", "-k", "1", "--bootstrap", "0",
            "-m", "openai:fake", "--store", str(store))
    hung = threading.Event()
    with WireFake(hangs_after(2, hung, seconds=1)) as fake:  # a command waits for the call in flight (as on Ctrl-C)
        terminate_when_hung(spawn(*args, "--base-url", fake.url, cwd=folder), hung, store, kept=2)
    assert statuses(store) == ["interrupted"]
    kept = answered(store)
    with WireFake([], responder=rank_all, port=fake.server.server_address[1]) as again:  # a run's key has the URL
        proc = spawn(*args, "--base-url", again.url, cwd=folder)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "resuming run" in err and len(again.requests) == 3 - kept  # what was answered is not asked again
    assert statuses(store) == ["finished"]


SWEEP = ('kind = "natural"\ncategories = ["blender"]\nmodels = ["openai:fake"]\nseeds = [0, 1]\n[options]\n'
         'catalog = "cat.jsonl"\ntrials = 3\nbootstrap = 0\n')


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_sigterm_during_a_sweep_marks_its_runs_interrupted_and_a_rerun_resumes(folder, executor):
    """The sweep's executors mark their running runs interrupted on Ctrl-C; on SIGTERM the
    process died with them 'running' (under Ray, Ray's own SIGTERM handler exited 15)."""
    if executor == "ray":
        pytest.importorskip("ray")
    (folder / "sweep.toml").write_text(SWEEP)
    store = folder / "store"
    args = ("sweep", "sweep.toml", "--executor", executor, "--jobs", "1", "--store", str(store))
    hung = threading.Event()
    with WireFake(hangs_after(2, hung)) as fake:  # the first job's third trial hangs; the second job waits
        terminate_when_hung(spawn(*args, "--base-url", fake.url, cwd=folder), hung, store, kept=2)
    assert statuses(store) == ["interrupted"]
    with WireFake([], responder=rank_all, port=fake.server.server_address[1]) as again:
        proc = spawn(*args, "--base-url", again.url, "--json", cwd=folder)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert len(again.requests) == 6 - 2  # the answered trials are not asked again
    assert statuses(store) == ["finished", "finished"]
    assert {job["state"] for job in json.loads(out)["jobs"]} == {"done"}


# -- 2. control characters in a model spec --------------------------------------------------------------------
NATURAL = ("natural", "-c", "blender", "--catalog", "cat.jsonl", "-n", "2", "--bootstrap", "0")
ATTACK = ("attack", "-c", "blender", "--catalog", "cat.jsonl", "--budget", "2", "--final-orders", "1",
          "--selection-orders", "1", "--confirm", "0", "--responses", "1")


@pytest.mark.parametrize(("flag", "command", "spec", "shown"), [
    ("--model", NATURAL, "openai:a\rb", "'openai:a\\rb'"),
    ("--model", NATURAL, "openai:fake\nrm -rf", "'openai:fake\\nrm -rf'"),
    ("--attacker", (*ATTACK, "--method", "tap", "-m", "openai:fake"), "openai:\x1b[31mred", "'openai:\\x1b[31mred'"),
    ("--reader", (*NATURAL, "-m", "openai:fake"), "heuristic+openai:a\tb", "'openai:a\\tb'"),
    ("--model", NATURAL, "openai:evil\u202eexe", "'openai:evil\\u202eexe'"),
])
def test_a_model_spec_with_a_control_character_is_refused_before_anything_runs(folder, capsys, flag, command, spec,
                                                                                 shown):
    """A CR, newline, tab or ESC inside a spec was sent to the server as part of the model's name."""
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, *command, flag, spec, "--base-url", fake.url, "--store", str(folder / "st"))
        assert fake.requests == []
    assert code == 1 and out == ""
    line = error_line(err)
    assert f"model spec {shown} has a control or invisible character" in line and "retype" in line, line
    assert not (folder / "st").exists()


@pytest.mark.parametrize("urls", [1, 2])  # one endpoint: get_model; several: the sweep's pooled models
def test_a_sweep_files_model_with_a_control_character_is_refused_before_anything_runs(folder, capsys, urls):
    (folder / "sweep.toml").write_text(SWEEP.replace('"openai:fake"', '"openai:fa\\rke"'))
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "sweep", "sweep.toml", *["--base-url", fake.url] * urls,
                               "--store", str(folder / "st"))
        assert fake.requests == []
    assert code == 1 and out == ""
    assert "model spec 'openai:fa\\rke' has a control or invisible character" in error_line(err)
    assert not (folder / "st").exists()


# -- 3. an empty part of a composed defense ---------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["+", " + ", "spotlight++sandwich", "+spotlight", "spotlight+"])
@pytest.mark.parametrize("kind", ["natural", "defend"])
def test_a_sweep_defense_with_an_empty_part_is_refused_before_anything_runs(folder, capsys, spec, kind):
    """``defenses = ["+"]`` silently meant no defense, ``"a++b"`` silently meant a+b."""
    body = SWEEP.replace("natural", kind).replace("[options]", f"defenses = {json.dumps([spec])}\n[options]")
    if kind == "defend":
        body = body.replace("trials = 3\nbootstrap = 0\n", "orders = 2\nbudget = 1\nfinal_orders = 1\n")
    (folder / "sweep.toml").write_text(body)
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "sweep", "sweep.toml", "--base-url", fake.url, "--store", str(folder / "st"))
        assert fake.requests == []
    assert code == 1 and out == ""
    assert f"defense spec {spec!r} has an empty part" in error_line(err)
    assert not (folder / "st").exists()


@pytest.mark.parametrize("spec", ["+", "spotlight++sandwich", "+spotlight"])
def test_the_defend_commands_defense_with_an_empty_part_is_one_clear_line(folder, capsys, spec):
    code, out, err = poise(capsys, "defend", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake",
                           "--base-url", "http://127.0.0.1:9/v1", "--defense", spec, "--store", str(folder / "st"))
    assert code == 1 and out == ""
    line = error_line(err)
    assert f"defense spec {spec!r} has an empty part" in line and "spotlight+sandwich" in line, line
    assert not (folder / "st").exists()


def test_a_plus_inside_a_value_is_still_part_of_the_value():
    from poise.defenses import split_chain

    assert split_chain("detector:model=openai:g++") == ["detector:model=openai:g++"]
    assert split_chain("detector:model=openai:g++ + sandwich") == ["detector:model=openai:g++", "sandwich"]


# -- 4. --stealth-detectors alone ------------------------------------------------------------------------------------
def test_stealth_detectors_alone_imply_stealth(folder, capsys):
    """``--stealth-detectors`` without ``--stealth`` was silently ignored: no stealth measured.
    The run's configuration (recorded before any query) says what it measures; the server
    fails every call, so the run ends before the stealth scorer (the bundled model) is needed."""
    store = folder / "store"
    with WireFake([]) as fake:
        fake.break_after = 0  # every call: 500
        code, out, err = poise(capsys, *ATTACK, "-m", "openai:fake", "--base-url", fake.url, "--max-attempts", "1",
                               "--stealth-detectors", "instruction-filter", "--store", str(store))
    assert code == 1 and out == "" and "500" in error_line(err)
    with sqlite3.connect(store / "poise.sqlite") as conn:
        ((config,),) = conn.execute("SELECT config_json FROM runs").fetchall()
    assert json.loads(config)["stealth"] == {"detectors": ["instruction-filter"], "max_perplexity_ratio": None}


# -- 5. a Ray address whose port is no port -------------------------------------------------------------------------
@pytest.mark.parametrize(("address", "fragment"), [
    ("127.0.0.1:99999", "99999 is not a port (1-65535)"), ("ray://head:0", "0 is not a port (1-65535)"),
    ("[::1]:65536", "65536 is not a port (1-65535)"), ("127.0.0.1:abc", "is not HOST:PORT"),
    (":6379", "is not HOST:PORT"), ("head:", "is not HOST:PORT")])
def test_a_ray_address_that_is_not_host_and_port_is_one_line_before_anything(folder, capsys, address, fragment):
    """``--address 127.0.0.1:99999`` said 'Connection refused'; ``HOST:abc`` went to Ray."""
    (folder / "sweep.toml").write_text(SWEEP)
    code, out, err = poise(capsys, "sweep", "sweep.toml", "--executor", "ray", "--address", address,
                           "--base-url", "http://127.0.0.1:9/v1", "--store", str(folder / "st"))
    assert code == 1 and out == ""
    line = error_line(err)
    assert f"--address {address}" in line and fragment in line and "Connection refused" not in line, line
    assert not (folder / "st").exists()


# -- 6. the rounds of a competition in its HTML report --------------------------------------------------------------
EVIL = "<b onmouseover=alert(1)>Ninja</b>"


def compete_in_rounds_report(folder: Path, capsys: pytest.CaptureFixture[str], brand: str,
                             out_name: str) -> tuple[dict, str]:
    """``attack --compete 2 --rounds 3`` against a wire fake, with the Ninja's brand written
    ``brand``, then ``poise report --out OUT_NAME``: the run's JSON and the report's text."""
    from .test_attacks import gullible  # the first page (in context order) that asks to be first wins

    (folder / "cat.jsonl").write_text((folder / "cat.jsonl").read_text().replace('"Ninja"', json.dumps(brand)))
    store = folder / "store"
    with WireFake([], responder=gullible) as fake:
        code, out, err = poise(capsys, *ATTACK[:-2], "--compete", "2", "--rounds", "3", "--final-orders", "2",
                               "--responses", "1", "-m", "openai:fake", "--base-url", fake.url, "--store", str(store),
                               "--json")
    assert code == 0, err
    data = json.loads(out)
    code, _, err = poise(capsys, "report", data["run_id"], "--store", str(store), "--out", out_name)
    assert code == 0, err
    return data, (folder / out_name).read_text()


def test_the_html_report_of_a_competition_in_rounds_shows_the_rounds(folder, capsys):
    """The terminal and the Markdown report showed the gain together after round 1 beside the
    one after round R; the HTML report showed nothing of the rounds."""
    data, html = compete_in_rounds_report(folder, capsys, EVIL, "r.html")
    section = html[html.index("<h3>Competition"):]
    section = section[:section.index("</section>")] if "</section>" in section else section
    assert "in place (the round before's) in rounds 2-3" in section
    assert "<th class=\"n\">gain together: round 1</th><th class=\"n\">round 3</th>" in section
    assert "Best search score per round" in section
    for p in data["products"]:
        name = f"{p['brand']} {p['model']}".replace("<", "&lt;").replace(">", "&gt;")
        scores = "".join(f'<td class="n">{r["best_search_score"]:.2f}'
                         + ("" if r["injection"] else " (none found)") + "</td>" for r in p["rounds"])
        assert f"<tr><td>{name}</td>{scores}</tr>" in section, name
        assert f'<td class="n">{p["gain_together_round1"]:.2f}</td><td class="n">{p["gain_together"]:.2f}</td>' \
            in section
    assert EVIL not in html and "&lt;b onmouseover=alert(1)&gt;Ninja&lt;/b&gt;" in section
