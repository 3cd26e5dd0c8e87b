"""``poise sweep --executor ray``: jobs as Ray tasks on a local cluster started here (one per
module), the store written by the driver alone, and the same store as the local executor
writes; retries, Ctrl-C and ``--address`` against a ``ray start --head`` this module starts.
The sweep's report and live view are tested here too (they are the same for both executors)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import test_sweep
from .cliutil import answered
from .test_sweep import (  # the sweep module's own helpers and its small catalog
    ATTACK_OPTIONS,
    natural_sweep,
    one_error_line,
    poise,
    rank_all,
    runs_in,
    sweep_file,
)
from .wirefake import WireFake, error

ATTACK = ('kind = "attack"\ncategories = ["blender", "kettle"]\nmodels = ["openai:fake"]\n'
          'methods = ["single", "none"]\n[options]\ncatalog = "cat.jsonl"\n' + ATTACK_OPTIONS)
folder = test_sweep.folder  # the fixture: a folder with the small catalog, no endpoint or store in the environment


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def store_content(store: Path) -> dict[tuple[str, str], tuple[str, list[tuple[Any, ...]]]]:
    """Each run (by command and configuration): its status and its calls with their scores, in
    a stable order, without what differs between two runs of the same thing (ids, times, and
    whether the request cache answered: each Ray worker has its own)."""
    with sqlite3.connect(store / "poise.sqlite") as conn:
        runs = {rid: (cmd, h, status) for rid, cmd, h, status in
                conn.execute("SELECT id, command, config_hash, status FROM runs")}
        scores = defaultdict(list)
        for call_id, *row in conn.execute("SELECT call_id, product_index, brand, model, position, rank, score"
                                          " FROM scores ORDER BY call_id, product_index"):
            scores[call_id].append(tuple(row))
        calls = defaultdict(list)
        for call_id, run_id, *row in conn.execute(
                "SELECT id, run_id, task_key, category, query, model_spec, model_name, template, seed,"
                " context_order, messages_json, config_json, response_text, finish_reason, cache_key, parseable,"
                " unparseable_reason, ranking_json, error, meta_json FROM calls"):
            calls[run_id].append((*row, tuple(scores[call_id])))
    return {(cmd, h): (status, sorted(calls[rid], key=repr)) for rid, (cmd, h, status) in runs.items()}


def attack_files(store: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in (store / "runs").glob("*/attack.json"):
        data = json.loads(path.read_text())
        data.pop("run_id")
        out[json.dumps(data, sort_keys=True)] = data
    return out


def test_a_ray_sweep_stores_what_the_local_executor_stores(cluster, folder, capsys):
    path = sweep_file(folder, ATTACK)
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "sweep", str(path), "--executor", "ray", "--jobs", "2", "--base-url", fake.url,
                               "--store", str(folder / "ray"), "--json", "--report", str(folder / "sweep.html"))
        assert code == 0, err
        data = json.loads(out)
        assert data["executor"] == "ray" and data["totals"]["states"] == {"done": 4}
        assert data["totals"]["queries"] == 12 and data["totals"]["calls"] > 0
        assert all(j["score_before"] is not None for j in data["jobs"])
        code, _, err = poise(capsys, "sweep", str(path), "--jobs", "2", "--base-url", fake.url,
                             "--store", str(folder / "local"), "--json")
        assert code == 0, err
        asked = len(fake.requests)
        code, out, err = poise(capsys, "sweep", str(path), "--executor", "ray", "--base-url", fake.url,
                               "--store", str(folder / "ray"))
        assert code == 0 and "4 skipped" in out, err
        assert len(fake.requests) == asked  # a rerun asks nothing
    ray_store, local_store = store_content(folder / "ray"), store_content(folder / "local")
    assert len(ray_store) == 4 and {s for s, _ in ray_store.values()} == {"finished"}
    assert sum(len(calls) for _, calls in ray_store.values()) >= 12
    assert ray_store == local_store
    assert attack_files(folder / "ray") == attack_files(folder / "local") and len(attack_files(folder / "ray")) == 4


def test_a_failed_ray_job_is_retried_and_resumes_its_run(cluster, folder, capsys):
    path = natural_sweep(folder, seeds="[0]", trials=3)
    store = str(folder / "store")
    with WireFake([error(400, "bad request")] * 2, responder=rank_all) as fake:
        code, out, err = poise(capsys, "sweep", str(path), "--executor", "ray", "--retries", "0",
                               "--base-url", fake.url, "--store", store, "--json")
        assert code == 1 and "1 of 2 jobs failed" in one_error_line(err)
        failed = [j for j in json.loads(out)["jobs"] if j["state"] == "failed"]
        assert len(failed) == 1 and "trials failed" in failed[0]["error"]
        assert {r[2] for r in runs_in(folder / "store")} == {"finished", "failed"}
        code, out, err = poise(capsys, "sweep", str(path), "--executor", "ray", "--retries", "1",
                               "--base-url", fake.url, "--store", store, "--json")
        assert code == 0, err
        assert len(fake.requests) == 6 + 2  # the two failed trials asked again, nothing else
    states = {j["run_id"]: j["state"] for j in json.loads(out)["jobs"]}
    assert sorted(states.values()) == ["done", "skipped"] and failed[0]["run_id"] in states
    assert len(runs_in(folder / "store")) == 2  # the failed run was resumed by a worker, not started again
    assert (folder / "store" / "runs" / failed[0]["run_id"] / "natural.json").is_file()


def test_flags_that_do_not_fit_are_one_line_and_write_nothing(folder, capsys, monkeypatch):
    path = natural_sweep(folder)
    store = str(folder / "store")
    cases = [(["--executor", "dask"], "unknown executor 'dask'"),
             (["--address", "10.0.0.1:6379"], "--address names a Ray cluster"),
             (["--report", str(folder / "no" / "r.html")], "no such folder")]
    monkeypatch.setitem(sys.modules, "ray", None)  # as where Ray is not installed: importing it fails
    cases.append((["--executor", "ray"], "pip install 'poise[ray]'"))
    for extra, expected in cases:
        code, out, err = poise(capsys, "sweep", str(path), "--store", store, "--base-url", "http://127.0.0.1:9/v1",
                               *extra)
        assert code != 0 and out == "" and expected in one_error_line(err)
    assert not (folder / "store").exists()


def test_a_cluster_that_is_not_there_is_one_line_and_writes_nothing(folder, capsys):
    """Ray alone would wait minutes for it; the store is created only once Ray is reached."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    path = natural_sweep(folder)
    code, out, err = poise(capsys, "sweep", str(path), "--executor", "ray", "--address", f"127.0.0.1:{port}",
                           "--store", str(folder / "store"), "--base-url", "http://127.0.0.1:9/v1")
    assert code != 0 and out == ""
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in one_error_line(err)
    assert not (folder / "store").exists()


def test_the_sweep_report_is_one_inert_file_of_the_whole_sweep(folder, capsys):
    """The report of a finished sweep (--dry-run --report: nothing runs), with a catalog whose
    product names carry a script."""
    evil = "<script>alert(1)</script>"
    for name in ("Foodi", "Variable"):  # the products these attacks promote (each ranked last at first)
        (folder / "cat.jsonl").write_text((folder / "cat.jsonl").read_text().replace(name, evil))
    path = sweep_file(folder, ATTACK)
    store = str(folder / "store")
    with WireFake([], responder=rank_all) as fake:
        code, _, err = poise(capsys, "sweep", str(path), "--base-url", fake.url, "--store", store)
        assert code == 0, err
        asked = len(fake.requests)
        code, _, err = poise(capsys, "sweep", str(path), "--dry-run", "--report", str(folder / "r.html"),
                               "--base-url", fake.url, "--store", store)
        assert code == 0, err
        assert len(fake.requests) == asked
    html = (folder / "r.html").read_text()
    assert "<script" not in html and "&lt;script&gt;" in html
    assert html.count('<img src="data:image/svg+xml;base64,') == 1  # the main figure, inline
    for cell in ("blender", "kettle", "single", "none", "openai:fake"):
        assert cell in html
    assert len(re.findall(r"<tr><td>(blender|kettle)</td>", html)) == 4  # one headline row per cell


def _head(where: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """``ray start --head --block`` in its own session (stopped with its whole process group)."""
    ray_bin = Path(sys.executable).with_name("ray")
    proc = subprocess.Popen([str(ray_bin), "start", "--head", "--block", "--port", "0", "--num-cpus", "2",
                             "--include-dashboard", "false", "--disable-usage-stats"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=where,
                            start_new_session=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.search(r"ray start --address='([^']+)'", line)
        if found:
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep its pipe drained
            return proc, found.group(1)
    raise AssertionError("ray start --head printed no address")


def test_ctrl_c_and_a_rerun_on_a_cluster_named_by_address(folder):
    """Against a running cluster (``--address``): Ctrl-C exits 130 with one line, the calls the
    workers sent are in the store and the running runs interrupted; a rerun finishes them and
    asks only what was not answered."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "POISE_HOME",
                                                             "RAY_ADDRESS")}
    env["RAY_AUTH_MODE"] = "disabled"  # a cluster on loopback for this test alone
    head, address = _head(folder, env)
    try:
        path = natural_sweep(folder, trials=4)
        store = folder / "store"
        argv = [sys.executable, "-m", "poise", "sweep", str(path), "--executor", "ray", "--address", address,
                "--jobs", "2", "--store", str(store)]
        hung = threading.Event()
        with WireFake(test_sweep.hangs_from_the_sixth(hung)) as fake:
            proc = subprocess.Popen([*argv, "--base-url", fake.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=env, cwd=folder)
            assert hung.wait(90)
            deadline = time.monotonic() + 30
            while answered(store) < 5:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and out == "", err
        assert one_error_line(err) == "poise: error: interrupted; finished calls are saved in the store"
        before = runs_in(store)
        assert {status for _, _, status in before} == {"interrupted"} and len(before) == 2
        kept = answered(store)
        assert kept == 5
        port = int(fake.url.rsplit(":", 1)[1].split("/")[0])
        with WireFake([], responder=rank_all, port=port) as fake:
            done = subprocess.run([*argv, "--base-url", fake.url, "--json"], capture_output=True, text=True,
                                  env=env, cwd=folder, timeout=120)
            assert done.returncode == 0, done.stderr
            assert len(fake.requests) == 16 - kept
        after = runs_in(store)
        assert {status for _, _, status in after} == {"finished"} and len(after) == 4
        assert {run_id for run_id, _, _ in before} <= {run_id for run_id, _, _ in after}
    finally:
        os.killpg(head.pid, signal.SIGKILL)  # the head and every process it started, at once
        head.wait(30)


@pytest.mark.model
def test_on_the_bundled_model_ray_stores_what_the_local_executor_stores(cluster, folder, capsys):
    """Each Ray worker loads the bundled model itself: the runs, calls, answers and scores are
    those the local executor stores for the same sweep."""
    path = sweep_file(folder, 'kind = "attack"\ncategories = ["blender"]\nmodels = ["local"]\nmethods = ["single"]\n'
                              '[options]\ncatalog = "cat.jsonl"\nmax_tokens = 32\n' + ATTACK_OPTIONS)
    for executor in ("ray", "local"):
        code, out, err = poise(capsys, "sweep", str(path), "--executor", executor, "--store", str(folder / executor),
                               "--json")
        assert code == 0, err
        assert [j["state"] for j in json.loads(out)["jobs"]] == ["done"]
    ray_store = store_content(folder / "ray")
    assert len(ray_store) == 1 and all(calls for _, calls in ray_store.values())
    assert ray_store == store_content(folder / "local")


def test_the_live_view_counts_jobs_queries_tokens_and_endpoints_and_shows_them_inert(folder):
    from io import StringIO

    from rich.console import Console

    from poise.cli._sweep_view import SweepView
    from poise.sweep import Event, ModelSource, Tally, load_sweep, prepare_all

    prepared = prepare_all(load_sweep(natural_sweep(folder)).jobs(), ModelSource(["http://127.0.0.1:9/v1"]))
    endpoints = {"fake": [{"url": "http://[bold]evil[/bold]\x1b[31m/v1", "healthy": False, "calls": 7,
                           "calls_per_s": 1.5, "in_flight": 1, "failures": 2, "tokens": 70}]}
    tally = Tally(prepared, tokens=lambda: 1234, endpoints=lambda: endpoints)
    screen = StringIO()
    console = Console(file=screen, force_terminal=True, width=200, color_system=None)
    with SweepView(console, tally, "grid.toml", live=False) as view:
        for event in (Event("started", 0, "r0"), Event("query", 0), Event("query", 0), Event("done", 0, "r0"),
                      Event("started", 1, "r1"), Event("query", 1), Event("retry", 1, "r1", "boom"),
                      Event("started", 1, "r1", resumed=True)):
            view.on_event(event, prepared[event.index])
    lines = screen.getvalue().splitlines()
    assert len(lines) == 5 and lines[1].startswith("sweep grid.toml [1/4] done natural / blender")
    assert lines[3].endswith(": boom") and "resuming" in lines[4]
    snap = tally.snapshot()
    assert snap["states"] == {"done": 1, "running": 1, "failed": 0, "pending": 2, "skipped": 0}
    assert (snap["queries"], snap["tokens"], snap["retries"]) == (3, 1234, 1)
    console.print(view.render())
    drawn = screen.getvalue()
    assert "1 done, 1 running, 2 pending of 4 jobs" in drawn and "1,234 tokens" in drawn and "1 queries" in drawn
    assert "[bold]evil[/bold]" in drawn and "\x1b[31m" not in drawn and "down" in drawn and "1.50" in drawn


def test_a_worker_whose_job_is_not_the_drivers_run_fails_it_with_one_line(folder, capsys):
    """``run_job`` (the Ray task's body, called here as a function): a worker that builds another
    configuration than the driver's (here: the catalog edited in between) asks nothing and says why."""
    from poise.store import Store
    from poise.sweep import ModelSource, load_sweep, prepare_all
    from poise.sweep._ray import run_job

    (job,) = load_sweep(natural_sweep(folder, seeds="[0]")).jobs()[:1]
    (prepared,) = prepare_all([job], ModelSource(["http://127.0.0.1:9/v1"]))
    with Store(folder / "store") as db:
        run_id = db.start_run(prepared.command, prepared.config)
        seed = db.export_run(run_id)
    (folder / "cat.jsonl").write_text((folder / "cat.jsonl").read_text().replace("7 speeds", "8 speeds"))
    sent: list[Any] = []

    class Events:
        def put(self, item: Any) -> None:
            sent.append(item)

    result = run_job(0, job, seed, ["http://127.0.0.1:9/v1"], 4, Events())
    assert result.error is not None and "its run on the worker is not the driver's" in result.error
    assert sent == [] and result.bundle.id == run_id and result.bundle.calls == ()
