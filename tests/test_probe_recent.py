"""A hostile user against the newest commands (sweep, attack's options, reread, defend, report):
special files where a file is expected, report targets that are not files, seeds the
statistics choke on, keys echoed back in answers, and labels that would break a progress line.
Each test failed before its fix; the model is never loaded (wire fakes on loopback)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import poise as poise_pkg

from .cliutil import ENV_DROP, blender_folder, error_line, poise, rank_all
from .wirefake import WireFake, completion


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return blender_folder(tmp_path, monkeypatch)


def spawned(*argv: str, cwd: Path, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """``poise ARGV`` in a child process; a hang is a failed assertion, not a hung suite."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
    try:
        return subprocess.run([sys.executable, "-m", "poise", *argv], capture_output=True, text=True, cwd=cwd,
                              env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"poise {' '.join(argv)} hung (more than {timeout} s)")


def fifo(path: Path) -> Path:
    """A named pipe nobody writes to: reading it blocks for ever (as /dev/zero never ends)."""
    os.mkfifo(path)
    return path


# -- 1. special files where a file is read ------------------------------------------------------------
SWEEP = 'kind = "natural"\ncategories = ["blender"]\nmodels = ["openai:fake"]\n[options]\ncatalog = "{catalog}"\n' \
        'trials = 2\nbootstrap = 0\n{extra}'
TEMPLATE_AXIS = 'templates = ["{template}"]\n'


@pytest.mark.parametrize("special", ["fifo", "dev-zero"])
def test_a_sweep_file_that_is_not_a_regular_file_is_one_line(folder, special):
    path = fifo(folder / "sweep.toml") if special == "fifo" else folder / "sweep.toml"
    if special == "dev-zero":
        path.symlink_to("/dev/zero")
    proc = spawned("sweep", str(path), "--dry-run", "--store", str(folder / "store"), cwd=folder)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "is not a regular file" in error_line(proc.stderr)
    assert not (folder / "store").exists()


def test_a_sweep_file_too_large_or_not_utf8_is_one_line_with_a_fix(folder, capsys):
    big = folder / "big.toml"
    with big.open("w") as fh:
        fh.truncate(2_000_001)  # sparse: 2 MB of NUL bytes, no disk spent
    code, out, err = poise(capsys, "sweep", str(big), "--dry-run")
    assert code == 1 and out == "" and "too large for a sweep file" in error_line(err)
    latin = folder / "latin.toml"
    latin.write_bytes('kind = "natural"\ncategories = ["caf\xe9"]\n'.encode("latin-1"))
    code, out, err = poise(capsys, "sweep", str(latin), "--dry-run")
    assert code == 1 and out == ""
    assert "not UTF-8 text" in error_line(err) and "save it as UTF-8" in err


def test_a_catalog_that_is_not_a_regular_file_is_one_line(folder):
    (folder / "zero.jsonl").symlink_to("/dev/zero")
    fifo(folder / "pipe.csv")
    for name in ("zero.jsonl", "pipe.csv"):
        proc = spawned("catalog", "validate", name, cwd=folder)
        assert proc.returncode == 1 and proc.stdout == ""
        assert f"{name}: not a regular file" in error_line(proc.stderr)
    sweep = folder / "sweep.toml"  # a sweep's catalog too (a link is followed: /dev/zero has no extension)
    sweep.write_text(SWEEP.format(catalog="pipe.csv", extra=""))
    proc = spawned("sweep", str(sweep), "--dry-run", cwd=folder)
    assert proc.returncode == 1 and "pipe.csv: not a regular file" in error_line(proc.stderr)


def test_a_template_that_is_not_a_regular_file_is_one_line(folder):
    (folder / "zero.toml").symlink_to("/dev/zero")
    proc = spawned("recommend", "-c", "blender", "--catalog", "cat.jsonl", "--template", "zero.toml",
                   "--store", str(folder / "store"), cwd=folder)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "zero.toml: not a regular file" in error_line(proc.stderr)
    fifo(folder / "pipe.toml")
    sweep = folder / "sweep.toml"  # a sweep's templates axis too
    sweep.write_text(SWEEP.format(catalog="cat.jsonl", extra="").replace(
        "[options]", TEMPLATE_AXIS.format(template="pipe.toml") + "[options]"))
    proc = spawned("sweep", str(sweep), "--dry-run", cwd=folder)
    assert proc.returncode == 1 and "pipe.toml: not a regular file" in error_line(proc.stderr)
    assert not (folder / "store").exists()


# -- 2. report targets that are not ordinary files ---------------------------------------------------------
def natural_sweep(folder: Path) -> Path:
    path = folder / "sweep.toml"
    path.write_text(SWEEP.format(catalog="cat.jsonl", extra=""))
    return path


def test_a_report_to_a_pipe_is_written_into_it_not_over_it(folder, capsys):
    """Renaming a finished report over the target replaced a device or pipe with a file (as
    root, ``--report /dev/null`` replaced /dev/null itself); such a target is written in place."""
    pipe = fifo(folder / "report.pipe")
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(pipe.read_bytes()), daemon=True)
    reader.start()
    with WireFake([], responder=rank_all) as fake:
        code, _, err = poise(capsys, "sweep", str(natural_sweep(folder)), "--base-url", fake.url, "--store",
                             str(folder / "store"), "--report", str(pipe))
    assert code == 0, err
    assert stat.S_ISFIFO(pipe.stat().st_mode)  # still the pipe
    reader.join(10)
    assert got and got[0].startswith(b"<!doctype html>")
    assert [p.name for p in folder.iterdir() if p.name.startswith(".report")] == []  # no temporary file left


@pytest.mark.skipif(not Path("/proc/version").is_file(), reason="needs Linux's /proc")
def test_a_report_that_cannot_be_written_names_the_flag_given(folder, capsys):
    with WireFake([], responder=rank_all) as fake:
        code, _, err = poise(capsys, "sweep", str(natural_sweep(folder)), "--base-url", fake.url, "--store",
                             str(folder / "store"), "--report", "/proc/version")
    assert code == 1
    line = error_line(err)
    assert "cannot write the report to /proc/version" in line and "with --report" in line and "--out" not in line


# -- 3. a negative seed ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [
    ("attack", "--budget", "2", "--final-orders", "2", "--selection-orders", "1", "--confirm", "0", "--responses", "1"),
    ("natural", "--trials", "3", "--bootstrap", "20")])
def test_a_negative_seed_is_refused_before_anything_runs(folder, capsys, command):
    """--seed -3 was taken, every query made, then the bootstrap refused the seed: an internal
    error (exit 70) and a failed run. A negative seed draws its positive's context orders
    (random.Random(-3) is Random(3)), so seeds are 0 to MAX_SEED (tests/test_probe_numbers.py)."""
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, *command, "-c", "blender", "--catalog", "cat.jsonl", "--model", "openai:fake",
                               "--base-url", fake.url, "--seed", "-3", "--store", str(folder / "store"), "--json")
    assert code == 2 and out == "" and "'--seed'" in error_line(err)
    assert not fake.requests and not (folder / "store").exists()


# -- 4. a key echoed back in an answer ---------------------------------------------------------------------------
KEY = "probe-key-7f3a9c2e51d0"  # no well-known shape: only redaction by value can catch it


def echo_key_in_answer(body: dict, headers: dict) -> tuple:
    """A 200 answer (and model name) that quote the request's key, as a logging proxy or a
    compromised model server might."""
    key = headers.get("authorization", "").removeprefix("Bearer ")
    reply = completion(f"Your key is {key}.\n" + rank_all(body))
    reply["model"] = f"fake-{key}"
    return (200, reply, 0)


def test_a_key_echoed_in_an_answer_is_stored_nowhere(folder, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    store, report = folder / "store", folder / "sweep.html"
    with WireFake([echo_key_in_answer] * 20) as fake:
        code, out, err = poise(capsys, "sweep", str(natural_sweep(folder)), "--base-url", fake.url, "--store",
                               str(store), "--report", str(report), "--json")
        assert code == 0, err
        assert fake.headers and all(h["authorization"] == f"Bearer {KEY}" for h in fake.headers)  # it was sent
    run_id = json.loads(out)["jobs"][0]["run_id"]
    code, _, err = poise(capsys, "report", run_id, "--store", str(store), "--out", str(folder / "run.md"))
    assert code == 0, err
    written = [p for p in folder.rglob("*") if p.is_file()]
    assert [p.name for p in written if KEY.encode() in p.read_bytes()] == []
    with sqlite3.connect(store / "poise.sqlite") as conn:
        (answer,) = conn.execute("SELECT response_text FROM calls LIMIT 1").fetchone()
    assert "Your key is [redacted]." in answer and "1. Oster Pro 1200" in answer  # the answer still reads
    assert KEY not in out + err


# -- 5. one line per progress event ------------------------------------------------------------------------------
def test_a_newline_in_a_job_label_keeps_each_progress_event_on_one_line(folder, capsys):
    """A sweep file's values (here a model name) reach the job label; a newline in one split a
    progress line in two, the second half looking like a line of its own. (A model spec with a
    newline is refused since: test_probe_followups; a template's file name still may have one.)"""
    path = folder / "sweep.toml"
    (folder / "t\nsweep x.toml").write_bytes((Path(poise_pkg.__file__).parent / "engine/templates/default.toml")
                                             .read_bytes())
    path.write_text(SWEEP.format(catalog="cat.jsonl", extra="").replace(
        "[options]", TEMPLATE_AXIS.format(template="t\\nsweep x.toml") + "[options]"))
    with WireFake([], responder=rank_all) as fake:
        code, _, err = poise(capsys, "sweep", str(path), "--base-url", fake.url, "--store", str(folder / "store"),
                             "--json")
    assert code == 0, err
    lines = err.splitlines()
    assert len(lines) == 2 and all(line.startswith("sweep sweep.toml [") for line in lines), err
    assert "openai:fake / t sweep x / none" in lines[1]


def db_rows(path: Path) -> list[str]:
    """A database's content, not its bytes: a WAL checkpoint (when a connection closes, at a time
    the garbage collector picks) moves pages into the main file and changes its bytes, not its rows."""
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


# -- 6. a report over the results store itself ---------------------------------------------------------------------
@pytest.mark.parametrize("target", ["poise.sqlite", "cache.sqlite", "poise.sqlite-wal"])
def test_a_report_is_never_written_over_the_stores_own_files(folder, capsys, target):
    """``--report STORE/poise.sqlite`` replaced the database with HTML: every run lost."""
    store = folder / "store"
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "sweep", str(natural_sweep(folder)), "--base-url", fake.url, "--store",
                               str(store), "--json")
        assert code == 0, err
        run_id = json.loads(out)["jobs"][0]["run_id"]
        before = {name: db_rows(store / name) for name in ("poise.sqlite", "cache.sqlite")}
        code, out, err = poise(capsys, "sweep", str(natural_sweep(folder)), "--base-url", fake.url, "--store",
                               str(store), "--report", str(store / target))
    assert code == 1 and out == ""
    assert "is a file of the results store" in error_line(err)
    code, out, err = poise(capsys, "report", run_id, "--store", str(store), "--out", str(store / target))
    assert code == 1 and out == "" and "is a file of the results store" in error_line(err)
    assert {name: db_rows(store / name) for name in before} == before
    code, out, err = poise(capsys, "runs", "--store", str(store), "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [run_id]
