"""The CLI under faults: Ctrl-C, closed pipes, internal errors, whatever typer raises;
resumes that must not mix inputs; two processes on one store; read-only stores; hostile
markup in terminal views; JSON and reports that show nothing raw; tables at 80 columns;
dependencies that must not drift from what CI tested."""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from poise.cli import main

from .test_cli import ENV_DROP, poise, runs_in
from .wirefake import WireFake, completion

ROOT = Path(__file__).resolve().parents[1]
ANSWER = "1. Oster Pro 1200\n2. Blendtec Designer 650 S\n3. Ninja Foodi Power Blender"


def env_without_secrets(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
    env.update(extra)
    return env


def spawn(*args: str, env: dict | None = None, cwd: Path | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "poise", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env or env_without_secrets(), cwd=cwd, **kw)


def wait_for(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def in_process(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # pragma: no cover - main returns its code
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("poise: error: ") and "Traceback" not in err
    return lines[0]


def write_catalog(path: Path, categories: dict[str, list[tuple[str, str, str]]]) -> Path:
    lines = []
    for name, products in categories.items():
        lines.append(json.dumps({"type": "category", "category": name, "query": f"Which {name}? Rank them."}))
        lines += [json.dumps({"category": name, "brand": b, "model": m, "document": d}) for b, m, d in products]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


BLENDERS = [("Oster", "Pro 1200", "The Oster Pro 1200 has 7 speeds and a glass jar. Price: $99."),
            ("Blendtec", "Designer 650 S", "The Blendtec Designer 650 S has a 1,560-watt motor. Price: $449."),
            ("Ninja", "Foodi Power Blender", "The Ninja Foodi Power Blender crushes ice. Price: $179.")]


# -- 1. exceptions, Ctrl-C, pipes ------------------------------------------------------------------
@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for key in ENV_DROP:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _raise(exc: BaseException):
    def fail(*args, **kwargs):
        raise exc
    return fail


def test_every_kind_of_exception_is_classified_without_raising(clean_env, capsys, monkeypatch):
    """Whichever click the installed typer uses (its own, a vendored copy, click itself),
    matching never raises and each kind gets its exit code and one line."""
    import click

    import poise.cli._app as app_module

    cases = [
        (KeyboardInterrupt(), 130, "interrupted"),
        (click.exceptions.Abort(), 130, "interrupted"),
        (click.UsageError("bad usage"), 2, "bad usage"),
        (click.ClickException("click says no"), 1, "click says no"),
        (RuntimeError("boom"), 70, "POISE_DEBUG=1"),
    ]
    try:
        from typer._click import exceptions as vendored  # typer >= 0.24
        cases += [(vendored.UsageError("vendored usage"), 2, "vendored usage")]
    except ImportError:
        pass
    import typer

    cases += [(typer.Abort(), 130, "interrupted"), (typer.Exit(130), 130, "interrupted")]
    for exc, code, fragment in cases:
        monkeypatch.setattr(app_module, "load_catalog", _raise(exc))
        got, _out, err = in_process(capsys, "catalog", "list")
        assert got == code, (exc, err)
        assert fragment in one_error_line(err), (exc, err)
    assert not (clean_env / "poise-runs").exists()


def test_ctrl_c_in_a_command_exits_130_not_0(clean_env, capsys, monkeypatch):
    """typer turns KeyboardInterrupt into an exit code it *returns* outside standalone mode."""
    import poise.cli._app as app_module

    monkeypatch.setattr(app_module, "load_catalog", _raise(KeyboardInterrupt()))
    code, _, err = in_process(capsys, "catalog", "show", "blender")
    assert code == 130 and "interrupted" in one_error_line(err)


def test_internal_error_is_one_line_unless_debugging(clean_env, capsys, monkeypatch):
    import poise.cli._app as app_module

    monkeypatch.setattr(app_module, "load_catalog", _raise(ZeroDivisionError("division by zero\nsecond line")))
    code, _, err = in_process(capsys, "catalog", "list")
    line = one_error_line(err)
    assert code == 70 and "internal error: ZeroDivisionError" in line and "POISE_DEBUG=1" in line
    monkeypatch.setenv("POISE_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["catalog", "list"])


def test_help_and_no_arguments(clean_env, capsys):
    code, out, err = in_process(capsys, "catalog")
    assert code == 0 and "validate" in out and err == ""
    code, out, _ = in_process(capsys, "runs", "--help")
    assert code == 0 and "--limit" in out


def test_sigint_while_a_call_hangs_exits_130_with_one_line(tmp_path):
    with WireFake([(200, completion(ANSWER), 30)]) as fake:
        proc = spawn("recommend", "-c", "blender", "-m", "openai:fake", "--base-url", fake.url,
                     "--store", str(tmp_path))
        wait_for(lambda: fake.requests)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in one_error_line(err)
    assert [status for _, status, _ in runs_in(tmp_path)] == ["interrupted"]


def test_sigint_during_startup_exits_130_with_one_line(tmp_path):
    """Ctrl-C while the CLI is still importing (before any command runs). The signal is sent
    once main() has imported typer (``-X importtime`` reports each import as it ends), not
    after a fixed delay, which on a loaded machine could fall before Python even runs."""
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "poise", "catalog", "list", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_without_secrets())
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.split("|")[-1].strip() == "typer":  # imported by the command table, inside main()
            break
    proc.send_signal(signal.SIGINT)
    _out, rest = proc.communicate(timeout=60)
    err = "".join(line for line in [*seen, *rest.splitlines(keepends=True)] if not line.startswith("import time:"))
    if proc.returncode == 0:  # pragma: no cover - a very fast machine finished first
        pytest.skip("the command finished before the signal")
    assert proc.returncode == 130, err
    assert "interrupted" in one_error_line(err)


SLOW_LOAD = """
import sys, time
import poise.models._llamacpp as backend

def slow_load(self, *args, **kwargs):  # the bundled model, loading for a long time
    print("loading", file=sys.stderr, flush=True)
    time.sleep(60)

backend.LlamaCppModel._load = slow_load
from poise.cli import main
sys.exit(main())
"""


def test_sigint_during_model_load_exits_130_with_one_line(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", SLOW_LOAD, "recommend", "-c", "blender", "--store", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_without_secrets())
    assert proc.stderr.readline().strip() == "loading"
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in one_error_line(err)
    assert [status for _, status, _ in runs_in(tmp_path)] == ["interrupted"]


def test_sigint_during_natural_exits_130_and_the_run_resumes(tmp_path):
    with WireFake([(200, completion(ANSWER), 0), (200, completion(ANSWER), 4)]) as fake:
        args = ("natural", "-c", "blender", "-n", "3", "-k", "1", "--bootstrap", "10", "-m", "openai:fake",
                "--base-url", fake.url, "--store", str(tmp_path))
        proc = spawn(*args)
        wait_for(lambda: len(fake.requests) >= 2)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert err.strip().splitlines()[-1].startswith("poise: error: interrupted")
        assert "Traceback" not in err and "Exception ignored" not in err
        assert [status for _, status, _ in runs_in(tmp_path)] == ["interrupted"]
        again = poise(*args[:-2], store=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "resuming run" in again.stderr


def _big_catalog(tmp_path: Path) -> Path:
    """Output larger than a pipe's buffer (64 KiB) from `catalog show` and `catalog list`."""
    blenders = [(f"Brand{k}", f"Model {k}", f"The Brand{k} Model {k} blender. " + "It blends well. " * 700)
                for k in range(10)]
    many = {f"category {k}": [(f"B{k}a", "One", "A page."), (f"B{k}b", "Two", "A page.")] for k in range(1500)}
    return write_catalog(tmp_path / "big.jsonl", {"blender": blenders, **many})


@pytest.mark.parametrize("args", [("catalog", "show", "blender"), ("catalog", "show", "blender", "--json"),
                                  ("catalog", "list")])
def test_a_closed_pipe_is_quiet(tmp_path, args):
    """`poise ... | head -1`: no traceback, no 'Exception ignored' at shutdown, exit 0."""
    big = _big_catalog(tmp_path)
    for extra in (["--catalog", str(big)], []):
        result = subprocess.run(
            ["bash", "-c", 'set -o pipefail; "$@" | head -c 20 >/dev/null', "bash",
             sys.executable, "-m", "poise", *args, *extra],
            capture_output=True, text=True, timeout=120, env=env_without_secrets(COLUMNS="80"))
        assert result.stderr == "", result.stderr
        assert result.returncode == 0


def test_a_closed_pipe_in_process(clean_env, monkeypatch):
    """The mechanism: a stdout whose reader is gone ends the command with 0 and no message."""
    class Closed(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):  # pointing it at /dev/null is best effort here
            raise io.UnsupportedOperation

    monkeypatch.setattr(sys, "stdout", Closed())
    errors = io.StringIO()
    monkeypatch.setattr(sys, "stderr", errors)
    assert main(["catalog", "list", "--json"]) == 0
    assert main(["catalog", "show", "blender"]) == 0
    assert errors.getvalue() == ""


def test_a_closed_pipe_silences_only_its_own_command(clean_env, monkeypatch, capsys):
    """A later command in the same process (a sweep's job, a Python caller) prints again."""
    class Closed(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):
            raise io.UnsupportedOperation

    with monkeypatch.context() as m:
        m.setattr(sys, "stdout", Closed())
        assert main(["catalog", "show", "blender"]) == 0
    capsys.readouterr()
    assert main(["catalog", "show", "blender"]) == 0
    assert "blender" in capsys.readouterr().out.lower()


# -- dependencies ------------------------------------------------------------------------------------
def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_installed_dependencies_match_the_constraints_file():
    """CI runs what constraints.txt pins: a direct dependency that drifted fails here."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not NAME==VERSION"
            pins[_norm(name)] = version.strip()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = project["dependencies"] + [d for group in project["optional-dependencies"].values() for d in group]
    names = [_norm(re.match(r"[A-Za-z0-9_.-]+", d).group(0)) for d in direct]
    names = [n for n in names if n != _norm(project["name"])]  # dev = poise[whitebox,ray] + tools
    assert {"typer", "click", "rich", "torch", "ray"} <= set(names)
    drift = {}
    for name in names:
        assert name in pins, f"{name} is a dependency but constraints.txt does not pin it"
        installed = importlib.metadata.version(name)
        # ==2.13.0 admits the CPU build's local label (2.13.0+cpu), as pip does
        if not SpecifierSet(f"=={pins[name]}").contains(installed, prereleases=True):
            drift[name] = (installed, pins[name])
    assert not drift, f"installed versions differ from constraints.txt (installed, pinned): {drift}"
    makefile = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt" in makefile
    assert re.search(r"^\$\(VENV\)/\.installed:.*constraints\.txt", makefile, re.M)


def test_pinned_versions_satisfy_the_project_bounds():
    from packaging.requirements import Requirement

    pins = {_norm(n): v for n, _, v in (line.partition("==") for line in
            (ROOT / "constraints.txt").read_text().splitlines() if line and not line.startswith("#"))}
    for dep in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        req = Requirement(dep)
        assert req.specifier.contains(pins[_norm(req.name)], prereleases=True), (dep, pins[_norm(req.name)])
        if _norm(req.name) in ("typer", "click", "rich"):
            assert any(s.operator in ("<", "<=", "==", "~=") for s in req.specifier), f"{dep} has no upper bound"


def digest(folder: Path, wal: bool = True) -> dict[str, str]:
    """Every file's SHA-256; without ``wal``, SQLite's -shm index (which any reader of a WAL
    database may create) is left out and a -wal file counts only if it holds anything."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()
            and (wal or not (p.name.endswith("-shm") or (p.name.endswith("-wal") and not p.stat().st_size)))}


# -- 2. a resume never mixes inputs ----------------------------------------------------------------
def _natural_killed_midway(catalog: Path, store: Path, fake: WireFake, *extra: str) -> tuple[str, ...]:
    args = ("natural", "-c", "blender", "-n", "4", "-k", "1", "--bootstrap", "10", "--catalog", str(catalog),
            "-m", "openai:fake", "--base-url", fake.url, *extra, "--store", str(store))
    proc = spawn(*args)
    wait_for(lambda: len(fake.requests) >= 3)  # two trials stored, the third hangs
    proc.kill()
    proc.wait(timeout=30)
    return args


@pytest.mark.parametrize("change", ["document", "reorder", "template"])
def test_a_resume_after_the_inputs_changed_starts_a_new_run(tmp_path, change):
    """Kill a run, change what shapes its prompts (not the paths), run the same command:
    a new run starts; the killed one keeps only its own trials."""
    catalog = write_catalog(tmp_path / "cat.jsonl", {"blender": BLENDERS})
    template = tmp_path / "mine.toml"
    template.write_text('system = "Recommend."\nuser = "{query}\\n\\n{documents}"\n')
    store = tmp_path / "store"
    with WireFake([(200, completion(ANSWER), 0)] * 2 + [(200, completion(ANSWER), 60)],
                  responder=lambda _: ANSWER) as fake:
        args = _natural_killed_midway(catalog, store, fake, "--template", str(template))
        (first, _, _), = runs_in(store)
        if change == "document":
            write_catalog(catalog, {"blender": [BLENDERS[0], (*BLENDERS[1][:2], "Now 2,000 watts."), BLENDERS[2]]})
        elif change == "reorder":
            write_catalog(catalog, {"blender": BLENDERS[::-1]})
        else:  # another template of the same file name
            template.write_text('system = "Recommend the best."\nuser = "{query}\\n\\n{documents}"\n')
        again = poise(*args[:-2], store=store)
    assert again.returncode == 0, again.stderr
    assert "resuming" not in again.stderr
    ids = {run_id: status for run_id, status, _ in runs_in(store)}
    assert len(ids) == 2 and ids[first] != "finished"
    with sqlite3.connect(store / "poise.sqlite") as conn:
        per_run = dict(conn.execute("SELECT run_id, COUNT(*) FROM calls WHERE error IS NULL GROUP BY run_id"))
    assert per_run[first] == 2 and sum(per_run.values()) == 6


def test_a_resume_with_the_same_inputs_continues_the_run(tmp_path):
    catalog = write_catalog(tmp_path / "cat.jsonl", {"blender": BLENDERS})
    with WireFake([(200, completion(ANSWER), 0)] * 2 + [(200, completion(ANSWER), 60)],
                  responder=lambda _: ANSWER) as fake:
        args = _natural_killed_midway(catalog, tmp_path, fake)
        again = poise(*args[:-2], store=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "resuming run" in again.stderr and "2 of 4 trials already done" in again.stderr
    assert [status for _, status, _ in runs_in(tmp_path)] == ["finished"]


def test_the_inputs_hash_covers_what_shapes_the_prompts():
    from poise.engine import DEFAULT_GENERATE_CONFIG
    from poise.engine._template import default_template
    from poise.experiments import inputs_hash

    from .conftest import tiny_category

    cat, tmpl, gen = tiny_category(), default_template(), DEFAULT_GENERATE_CONFIG
    base = inputs_hash([cat], tmpl, {"model": "a"}, gen)
    assert base == inputs_hash([tiny_category()], default_template(), {"model": "a"}, gen)
    edited = cat.model_copy(update={"products": cat.products[::-1]})
    assert inputs_hash([edited], tmpl, {"model": "a"}, gen) != base
    assert inputs_hash([cat], tmpl.model_copy(update={"system": tmpl.system + "!"}), {"model": "a"}, gen) != base
    assert inputs_hash([cat], tmpl, {"model": "b"}, gen) != base
    assert inputs_hash([cat], tmpl, {"model": "a"}, gen.model_copy(update={"max_tokens": 7})) != base
    assert inputs_hash([cat.model_copy(update={"query": "Another?"})], tmpl, {"model": "a"}, gen) != base


# -- 5. two processes on one store -----------------------------------------------------------------
def test_a_live_run_is_never_adopted(tmp_path):
    with WireFake([(200, completion(ANSWER), 40)], responder=lambda _: ANSWER) as fake:
        args = ("natural", "-c", "blender", "-n", "3", "-k", "1", "--bootstrap", "10", "-m", "openai:fake",
                "--base-url", fake.url, "--store", str(tmp_path))
        first = spawn(*args)
        wait_for(lambda: fake.requests)
        (owner, _, _), = runs_in(tmp_path)
        second = poise(*args[:-2], store=tmp_path)
        assert second.returncode == 0, second.stderr
        notes = [line for line in second.stderr.splitlines() if "still running" in line]
        assert len(notes) == 1 and owner in notes[0] and "starting a new run" in notes[0]
        statuses = dict((i, s) for i, s, _ in runs_in(tmp_path))
        assert len(statuses) == 2 and statuses[owner] == "running"
        first.kill()
        first.wait(timeout=30)
        third = poise(*args[:-2], store=tmp_path)  # the dead owner's run is resumed
    assert third.returncode == 0, third.stderr
    assert f"resuming run {owner}" in third.stderr
    assert sorted(s for _, s, _ in runs_in(tmp_path)) == ["finished", "finished"]


def test_claim_skips_live_owners_and_adopts_dead_or_reused_pids(tmp_path):
    from poise.store import Store
    from poise.store._schema import process_start

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with Store(tmp_path) as db:
            config = {"x": 1}
            run_id = db.start_run("natural", config)
            claimed, live = db.claim_unfinished("natural", config)  # this process owns it: alive
            assert claimed is None and [r.id for r in live] == [run_id]
            with sqlite3.connect(db.db_path) as conn:
                conn.execute("UPDATE runs SET pid = ?, owner_start = ? WHERE id = ?",
                             (sleeper.pid, process_start(sleeper.pid), run_id))
            claimed, live = db.claim_unfinished("natural", config)
            assert claimed is None and [(r.id, r.pid) for r in live] == [(run_id, sleeper.pid)]
            with sqlite3.connect(db.db_path) as conn:  # the pid now belongs to another process
                conn.execute("UPDATE runs SET owner_start = 'earlier' WHERE id = ?", (run_id,))
            assert db.claim_unfinished("natural", config)[0] == run_id
            assert db.run(run_id).status == "running"
            assert db.claim_unfinished("natural", config)[0] is None  # now ours, and we are alive
    finally:
        sleeper.kill()
        sleeper.wait()


# -- 10. read-only stores ----------------------------------------------------------------------------
@pytest.fixture
def filled_store(tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("ro") / "store"
    with WireFake([], responder=lambda _: ANSWER) as fake:
        done = poise("recommend", "-c", "blender", "-m", "openai:fake", "--base-url", fake.url, store=store)
    assert done.returncode == 0, done.stderr
    return store


def test_read_only_store_object_never_writes(filled_store):
    from poise._errors import StoreError
    from poise.store import Store

    before = digest(filled_store, wal=False)
    with Store(filled_store, read_only=True) as db:
        (record,) = db.runs()
        assert db.calls(record.id) and db.scores(record.id)
        assert not db.run_dir(record.id).exists()  # not created by reading
        with pytest.raises(StoreError, match="read-only"):
            db.start_run("recommend", {})
    assert digest(filled_store, wal=False) == before


def _as_reader(cmd: list[str]) -> subprocess.CompletedProcess:
    """Run so that file permissions hold: root overrides them, so as root the command runs
    without the capabilities that do (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER)."""
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: permissions cannot be made to hold")
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env_without_secrets(), cwd="/")


def test_read_only_commands_work_on_a_read_only_store(filled_store):
    for path in [*filled_store.rglob("*"), filled_store]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = digest(filled_store)
    try:
        listed = _as_reader([sys.executable, "-m", "poise", "runs", "--json", "--store", str(filled_store)])
        assert listed.returncode == 0, listed.stderr
        assert [r["status"] for r in json.loads(listed.stdout)] == ["finished"]
        table = _as_reader([sys.executable, "-m", "poise", "runs", "--store", str(filled_store)])
        assert table.returncode == 0 and "recommend" in table.stdout, table.stderr
        report = _as_reader([sys.executable, "-m", "poise", "report", "--format", "md", "--out", "-",
                             "--store", str(filled_store)])
        assert report.returncode == 0, report.stderr
        assert "Oster" in report.stdout
    finally:
        for path in [filled_store, *filled_store.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert digest(filled_store) == before
