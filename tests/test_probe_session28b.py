"""A hostile probe of session 28 (second half): a blank `--base-url` (an unset shell variable)
that sent the prompts to OpenAI's API, and a base URL pasted with a space before it that was
called an unreachable server; `poise natural -c blender -c BLENDER` ('cannot write to the results
store ... UNIQUE constraint failed') and `poise defend -c blender -c Blender` (one category measured
and pooled as two); POISE_MAX_DOCUMENT_CHARS=0 (not named as the variable); Ctrl-C in `poise
natural -k 4` while calls wait to be retried (minutes, no line); an empty `--stealth-detectors`
(the local model loaded to score stealth). Each test failed before its fix; the model is never
loaded (wire fakes on loopback)."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from .cliutil import blender_folder, error_line, poise, rank_all
from .wirefake import WireFake, retry_after

Capture = pytest.CaptureFixture[str]
RECOMMEND = ("recommend", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake", "--max-attempts", "1")
SWEEP = """kind = "natural"
categories = ["blender"]
models = ["openai:fake"]
[options]
catalog = "cat.jsonl"
trials = 2
bootstrap = 0
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return blender_folder(tmp_path, monkeypatch)


# -- 1. a blank --base-url ------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["recommend", "sweep"])
def test_a_blank_base_url_is_refused_not_read_as_openais_api(folder: Path, capsys: Capture,
                                                             monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    """`--base-url "$SERVER"` with SERVER unset read as no --base-url: with a key in the
    environment the prompts went to https://api.openai.com/v1 (here: 'cannot reach the server at
    https://api.openai.com/v1'), not to the local server meant."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-probe28b-0123456789abcdefghij")
    (folder / "sweep.toml").write_text(SWEEP)
    argv = RECOMMEND if command == "recommend" else ("sweep", "sweep.toml")
    code, out, err = poise(capsys, *argv, "--base-url", "", "--store", "st")
    line = error_line(err)
    assert code == 1 and out == "" and "blank" in line and "api.openai.com" not in line.split(":", 2)[2][:40], line
    assert "http://127.0.0.1:8080/v1" in line and not (folder / "st").exists()


def test_a_blank_openai_base_url_is_refused_and_an_empty_one_is_unset(folder: Path, capsys: Capture,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """OPENAI_BASE_URL=' ' was 'not an http(s) URL: ''' (no URL was given); an empty one stays unset."""
    monkeypatch.setenv("OPENAI_BASE_URL", "  ")
    code, _, err = poise(capsys, *RECOMMEND)
    assert code == 1 and "the base URL is blank" in error_line(err) and "OPENAI_BASE_URL" in error_line(err)
    monkeypatch.setenv("OPENAI_BASE_URL", "")
    code, _, err = poise(capsys, *RECOMMEND)
    assert code == 1 and "no API key for https://api.openai.com/v1" in error_line(err)


# -- 2. a base URL with spaces --------------------------------------------------------------------------------
@pytest.mark.parametrize("pad", [" ", "\t", "  "])  # a line end is refused (test_probe_session26)
def test_a_base_url_pasted_with_spaces_around_it_is_used(folder: Path, capsys: Capture,
                                                         monkeypatch: pytest.MonkeyPatch, pad: str) -> None:
    """OPENAI_BASE_URL=' http://127.0.0.1:PORT/v1' (pasted with a space) ended in 'cannot reach the
    server at http://127.0.0.1:PORT/v1; check that it is running' while the server ran and was
    never asked; a tab before it was 'Invalid non-printable ASCII character'."""
    with WireFake([], responder=rank_all) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", f"{pad}{fake.url}{pad}")
        code, _, err = poise(capsys, *RECOMMEND, "--store", "st")
        assert code == 0, err
        assert len(fake.requests) == 1
        code, _, err = poise(capsys, *RECOMMEND, "--store", "st", "--base-url", f"{pad}{fake.url}")
        assert code == 0, err
        assert "starting a new run" not in err  # the same server: the same identity


def test_a_base_url_with_a_space_inside_is_refused_as_such(folder: Path, capsys: Capture) -> None:
    """'http:// 127.0.0.1:PORT/v1' was 'cannot reach the server ...; check that it is running'."""
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, *RECOMMEND, "--base-url", fake.url.replace("//", "// "), "--store", "st")
        assert not fake.requests
    line = error_line(err)
    assert code == 1 and out == "" and "holds a space" in line and "cannot reach" not in line, line


# -- 3. one category named twice -------------------------------------------------------------------------------
def test_natural_with_one_category_named_twice_measures_it_once(folder: Path, capsys: Capture) -> None:
    """`-c blender -c blender` (or `-c BLENDER`) wrote each trial's key twice: the run failed with
    'cannot write to the results store ...: UNIQUE constraint failed: calls.run_id, calls.task_key'."""
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "natural", "-c", "blender", "-c", "BLENDER", "-c", "blender", "--catalog",
                               "cat.jsonl", "-n", "2", "--bootstrap", "0", "-m", "openai:fake", "--base-url", fake.url,
                               "--store", "st", "--json")
        assert code == 0, err
        assert len(fake.requests) == 2
    assert list(json.loads(out)["categories"]) == ["blender"]


@pytest.mark.parametrize("clean_only", [True, False])
def test_defend_with_one_category_named_twice_pools_it_once(folder: Path, capsys: Capture, clean_only: bool) -> None:
    """`-c blender -c Blender` measured blender twice and pooled it as two categories."""
    more = ("--clean-only",) if clean_only else ("--attack", "single", "--budget", "2", "--final-orders", "1",
                                                 "--selection-orders", "1", "--responses", "1", "--confirm", "0")
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "defend", *more, "-c", "blender", "-c", "Blender", "--catalog", "cat.jsonl",
                               "--orders", "2", "--defense", "sandwich", "-m", "openai:fake", "--base-url", fake.url,
                               "--store", "st", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert [c["category"] for c in data["categories"]] == ["blender"]
    if clean_only:
        assert [(p["label"], p["categories"]) for p in data["pooled"]] == [("plain", 1), ("sandwich", 1)]


# -- 4. POISE_MAX_DOCUMENT_CHARS=0 -------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_document_limit_of_zero_in_the_environment_is_named_as_the_variable(folder: Path, capsys: Capture,
                                                                             monkeypatch: pytest.MonkeyPatch,
                                                                             value: str) -> None:
    """POISE_MAX_DOCUMENT_CHARS=0 was 'the document limit must be a whole number of characters of
    at least 1, not 0': no word of where the limit came from, nor how to fix it."""
    monkeypatch.setenv("POISE_MAX_DOCUMENT_CHARS", value)
    code, out, err = poise(capsys, "catalog", "validate", "cat.jsonl")
    line = error_line(err)
    assert code == 1 and out == ""
    assert f"POISE_MAX_DOCUMENT_CHARS must be a whole number of characters of at least 1, not '{value}'" in line, line
    assert "unset it" in line


# -- 5. Ctrl-C while calls wait to be retried ---------------------------------------------------------------------
def test_ctrl_c_while_natural_calls_wait_to_be_retried_exits_at_once(folder: Path, capsys: Capture) -> None:
    """`poise natural -k 4` against a server that asks to retry in 20 s: Ctrl-C printed nothing and
    the process went on for minutes (the worker threads were waited for through every backoff and
    Retry-After, up to 3 x --timeout), its run left 'running'."""
    from .test_probe_defend import spawn

    args = ("natural", "-c", "blender", "--catalog", "cat.jsonl", "-n", "8", "-k", "4", "--bootstrap", "0",
            "-m", "openai:fake", "--store", "st")
    with WireFake([retry_after(429, "20")] * 1000) as fake:
        proc = spawn(*args, "--base-url", fake.url, cwd=folder)
        deadline = time.monotonic() + 60
        while len(fake.requests) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=15)
        finally:
            proc.kill()
        assert time.monotonic() - sent < 10
        port = fake.server.server_address[1]
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == (
        "poise: error: interrupted; finished calls are saved in the store"), err
    with sqlite3.connect(folder / "st" / "poise.sqlite") as conn:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]
    with WireFake([], responder=rank_all, port=port) as again:
        code, _, err = poise(capsys, *args, "--base-url", again.url, "--json")
    assert code == 0, err
    assert "resuming run" in err and len(again.requests) == 8


# -- 6. an empty --stealth-detectors ------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_stealth_detectors_is_refused_before_the_local_model_loads(folder: Path, capsys: Capture,
                                                                             monkeypatch: pytest.MonkeyPatch,
                                                                             value: str) -> None:
    """`--stealth-detectors "$DETECTORS"` with DETECTORS unset read as 'none' and, implying
    --stealth, loaded the local model to score the injection's perplexity: a whole stealth
    measurement nobody asked for (the empty --attacker and --reader are refused)."""
    import poise.models._llamacpp as backend

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the local model was loaded")

    monkeypatch.setattr(backend.LlamaCppModel, "_load", no_load)
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "attack", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake",
                               "--base-url", fake.url, "--method", "single", "--budget", "2", "--final-orders", "1",
                               "--stealth-detectors", value, "--store", "st")
        assert not fake.requests
    line = error_line(err)
    assert code == 1 and out == "" and "--stealth-detectors is empty" in line and "none" in line, line
    assert not (folder / "st").exists()
