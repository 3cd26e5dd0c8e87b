"""A hostile user against every number a command takes: seeds, counts, budgets, token limits
and a listing's limit, each given past where it ends up (SQLite's 64-bit integers, llama.cpp's
32-bit seeds, a run that draws its orders and trials before the first call). Each is one line
and a non-zero exit before any model call or store write. Each test failed before its fix; the
model is never loaded (wire fakes on loopback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from poise import PoiseError
from poise._numbers import MAX_COUNT, MAX_SEED, MAX_STORED_INT
from poise.catalog import load_catalog
from poise.engine import default_template
from poise.experiments import (
    attack_setup,
    defend_setup,
    model_opener,
    natural_setup,
    recommend_setup,
    transfer_setup,
)
from poise.models import MAX_TOKENS
from poise.store import Store

from .cliutil import ENV_DROP, blender_folder, error_line, poise, rank_all
from .wirefake import WireFake

PAST_SQLITE = MAX_STORED_INT + 1  # 2**63: SQLite stores no larger integer
HUGE = 10**20


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = blender_folder(tmp_path, monkeypatch)
    monkeypatch.setenv("OPENAI_API_KEY", "probe-key")
    return path


@pytest.fixture
def fake():
    with WireFake([], responder=rank_all) as server:
        yield server


def run(capsys, fake: WireFake, *argv: str) -> tuple[int, str, str]:
    return poise(capsys, *argv, "--catalog", "cat.jsonl", "--model", "openai:fake", "--base-url", fake.url,
                 "--store", "store")


def refused(folder: Path, fake: WireFake, code: int, out: str, err: str, expected_code: int = 1) -> str:
    """The one error line of a refusal that asked no model and wrote no store."""
    assert code == expected_code and out == "", err
    line = error_line(err)
    assert not fake.requests and not (folder / "store").exists(), line
    return line


SMALL_ATTACK = ("--budget", "2", "--final-orders", "2", "--selection-orders", "1", "--confirm", "0",
                "--responses", "1")
COMMANDS = {
    "recommend": ("recommend", "-c", "blender"),
    "attack": ("attack", "-c", "blender", *SMALL_ATTACK),
    "natural": ("natural", "-c", "blender", "--trials", "2", "--bootstrap", "10"),
    "defend": ("defend", "-c", "blender", "--defense", "sandwich", "--orders", "2", *SMALL_ATTACK),
}


# -- 1. seeds: 0 to MAX_SEED ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [str(HUGE), str(-HUGE), str(PAST_SQLITE), str(MAX_SEED + 1), "-1"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_seed_out_of_range_is_refused_before_any_call(folder, fake, capsys, command, seed):
    """``recommend --seed 99999999999999999999`` asked the model, then storing the call failed:
    'internal error: OverflowError: Python int too large to convert to SQLite INTEGER' (exit 70),
    a failed run left in a new store. attack, natural and defend took any seed: past 2**32
    llama.cpp keeps the low 32 bits (2**32 samples as 0), a negative one draws its positive's
    context orders (random.Random(-3) is Random(3)), -1 is llama.cpp's 'random seed'."""
    code, out, err = run(capsys, fake, *COMMANDS[command], "--seed", seed)
    assert "'--seed'" in refused(folder, fake, code, out, err, expected_code=2)


def test_the_seed_range_ends_at_max_seed_and_minus_zero_is_zero(folder, fake, capsys):
    code, out, err = run(capsys, fake, *COMMANDS["recommend"], "--seed", str(MAX_SEED + 1))
    assert "'--seed'" in refused(folder, fake, code, out, err, expected_code=2)
    for seed in (str(MAX_SEED), "-0"):
        code, _, err = run(capsys, fake, *COMMANDS["recommend"], "--seed", seed, "--no-cache")
        assert code == 0, err


@pytest.mark.parametrize("seed", [-3, MAX_SEED + 1, PAST_SQLITE])
def test_the_library_refuses_such_a_seed_for_every_run(folder, fake, seed):
    """The setups (which the sweep builds its jobs with too) took any seed."""
    cat = load_catalog("cat.jsonl").category("blender")
    common = {"model": "openai:fake", "open_model": model_opener(fake.url), "template": default_template(),
              "seed": seed}
    for build in (lambda: recommend_setup(cat, **common), lambda: attack_setup(cat, **common),
                  lambda: natural_setup([cat], **common), lambda: defend_setup([cat], defenses=["sandwich"], **common)):
        with pytest.raises(PoiseError, match=f"--seed must be a whole number from 0 to {MAX_SEED}"):
            build()
    assert not fake.requests


SWEEP = '''kind = "{kind}"
categories = ["blender"]
models = ["openai:fake"]
{axes}
[options]
catalog = "cat.jsonl"
{options}
'''


@pytest.mark.parametrize("kind, axes, options, expected", [
    ("natural", f"seeds = [{PAST_SQLITE}]", "trials = 2", "seeds must be a whole number from 0 to"),
    ("attack", "seeds = [0, -1]", "", "seeds must be a whole number from 0 to"),
    ("natural", "", f"trials = {PAST_SQLITE}", f"trials (under [options]) must be at most {MAX_COUNT:,}"),
    ("natural", "", f"bootstrap = {HUGE // 10**2}", f"bootstrap (under [options]) must be at most {MAX_COUNT:,}"),
    ("natural", "", f"max_tokens = {MAX_TOKENS + 1}", f"max_tokens (under [options]) must be a whole number from 1 "
                                                      f"to {MAX_TOKENS:,}"),
    ("attack", "", f"final_orders = {PAST_SQLITE}", f"final_orders (under [options]) must be at most {MAX_COUNT:,}"),
    ("defend", "", f"orders = {MAX_COUNT + 1}", f"orders (under [options]) must be at most {MAX_COUNT:,}"),
], ids=["seed past sqlite", "negative seed", "trials", "bootstrap", "max_tokens", "final_orders", "orders"])
def test_a_sweep_files_numbers_are_checked_before_any_job(folder, fake, capsys, kind, axes, options, expected):
    """A sweep file's seeds ran (2**63 stored as a label, -1 drew 1's orders); its trials,
    bootstrap, orders and max_tokens were taken as they were (--dry-run said 'ok', a run hung
    drawing 2**63 trials, max_tokens past the model's bound was sent to the server)."""
    (folder / "s.toml").write_text(SWEEP.format(kind=kind, axes=axes, options=options))
    code, out, err = poise(capsys, "sweep", "s.toml", "--dry-run", "--base-url", fake.url, "--store", "store")
    assert expected in refused(folder, fake, code, out, err)


# -- 2. counts drawn before the first call: at most MAX_COUNT -------------------------------------------
@pytest.mark.parametrize("command, flag, name", [
    ("attack", "--final-orders", "--final-orders"), ("attack", "--selection-orders", "--selection-orders"),
    ("attack", "--responses", "--responses"), ("attack", "--confirm", "--confirm"),
    ("attack", "--budget", "the recommender query budget"),
    ("attack", "--attacker-budget", "the attacker query budget"),
    ("defend", "--orders", "--orders"), ("defend", "--final-orders", "--final-orders"),
    ("natural", "--trials", "--trials"), ("natural", "--bootstrap", "--bootstrap"),
])
@pytest.mark.parametrize("value", [str(MAX_COUNT + 1), str(PAST_SQLITE)])
def test_a_count_past_max_count_is_refused_before_any_call(folder, fake, capsys, command, flag, name, value):
    """Each was taken: a run then drew its context orders (up to n! of them) or its trials
    before the first call, or its bootstrap resamples after the last one, and never ended
    (with 14 products, --final-orders 2**63 hung with a run row left 'running')."""
    code, out, err = run(capsys, fake, *COMMANDS[command], flag, value)
    assert f"{name} must be at most {MAX_COUNT:,}, not {value}" in refused(folder, fake, code, out, err)


def test_a_token_budget_past_sqlite_is_refused(folder, fake, capsys):
    code, out, err = run(capsys, fake, *COMMANDS["attack"], "--token-budget", str(PAST_SQLITE))
    line = refused(folder, fake, code, out, err)
    assert f"the token budget must be at most {MAX_STORED_INT:,}" in line and "store keeps no larger" in line


def test_a_natural_run_with_countless_trials_ends_at_once(folder, fake):
    """--trials 10**20 created a store and a run, then listed every trial before the first
    call: the command never returned (a child process, so a hang fails instead of hanging)."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROP} | {"OPENAI_API_KEY": "probe-key"}
    try:
        done = subprocess.run([sys.executable, "-m", "poise", "natural", "-c", "blender", "--trials", str(HUGE),
                               "--catalog", "cat.jsonl", "--model", "openai:fake", "--base-url", fake.url,
                               "--store", "store"], capture_output=True, text=True, cwd=folder, env=env, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("poise natural --trials 10**20 hung")
    assert done.returncode == 1 and "--trials must be at most" in error_line(done.stderr)
    assert not fake.requests and not (folder / "store").exists()


def test_the_library_refuses_such_counts_for_transfer_and_natural(folder, fake):
    cat = load_catalog("cat.jsonl").category("blender")
    common = {"model": "openai:fake", "open_model": model_opener(fake.url), "template": default_template()}
    with pytest.raises(PoiseError, match="--final-orders must be at most"):
        transfer_setup([], run_ids=[], final_orders=PAST_SQLITE, **common)
    with pytest.raises(PoiseError, match="--bootstrap must be at most"):
        natural_setup([cat], bootstrap=HUGE, **common)
    assert not fake.requests


# -- 3. tokens per answer: the model configuration's own bound ---------------------------------------------
@pytest.mark.parametrize("value", [str(MAX_TOKENS + 1), str(HUGE)])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_max_tokens_past_the_configurations_bound_is_refused(folder, fake, capsys, command, value):
    """GenerateConfig allows 1-32768 tokens, but the engine's configuration was made with
    model_copy (which checks nothing): --max-tokens 10**20 was sent to the server as it was."""
    code, out, err = run(capsys, fake, *COMMANDS[command], "--max-tokens", value)
    assert "'--max-tokens'" in refused(folder, fake, code, out, err, expected_code=2)


def test_the_library_builds_no_engine_past_the_bound(folder, fake):
    cat = load_catalog("cat.jsonl").category("blender")
    common = {"model": "openai:fake", "open_model": model_opener(fake.url), "template": default_template()}
    for build in (lambda: recommend_setup(cat, max_tokens=MAX_TOKENS + 1, **common),
                  lambda: attack_setup(cat, max_tokens=HUGE, **common),
                  lambda: transfer_setup([], run_ids=[], max_tokens=0, **common)):
        with pytest.raises(PoiseError, match=f"--max-tokens must be a whole number from 1 to {MAX_TOKENS:,}"):
            build()
    assert not fake.requests


# -- 4. a listing's limit ---------------------------------------------------------------------------------------
def test_runs_limit_past_sqlite_is_one_line(folder, fake, capsys):
    """``poise runs --limit 99999999999999999999`` on a store: 'internal error: IntegrityError:
    datatype mismatch' (the LIMIT literal became a REAL)."""
    code, _, err = run(capsys, fake, *COMMANDS["recommend"])
    assert code == 0, err
    code, out, err = poise(capsys, "runs", "--store", "store", "--limit", str(HUGE))
    assert code == 2 and out == "" and "'--limit'" in error_line(err)
    with Store(folder / "store", read_only=True) as db:
        assert len(db.runs(HUGE)) == 1  # the library takes any limit: all the runs there are
