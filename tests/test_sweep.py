"""``poise sweep``: the sweep file, its jobs as ordinary runs, the local executor (rerun,
retry, Ctrl-C and resume) and calls spread over several endpoints (wire fakes on loopback)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from poise.models import ChatMessage, GenerateConfig, RetryPolicy
from poise.sweep import Endpoints, PooledModel, SweepError, load_sweep

from .cliutil import answered, poise, rank_all
from .wirefake import WireFake, completion, error

CATALOG = [
    ("blender", [("Oster", "Pro 1200", "The Oster Pro 1200 has 7 speeds. Price: $99."),
                 ("Blendtec", "Designer 650 S", "The Blendtec Designer 650 S has a 1,560-watt motor."),
                 ("Ninja", "Foodi", "The Ninja Foodi crushes ice. Price: $179.")]),
    ("kettle", [("Fellow", "Stagg EKG", "The Fellow Stagg EKG pours precisely. Price: $165."),
                ("Cosori", "Gooseneck", "The Cosori Gooseneck holds temperature. Price: $70."),
                ("Bonavita", "Variable", "The Bonavita Variable kettle heats fast. Price: $60.")]),
]
ATTACK_OPTIONS = 'budget = 2\nfinal_orders = 1\nselection_orders = 1\nconfirm = 0\nresponses = 1\n'


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "POISE_HOME"):
        monkeypatch.delenv(key, raising=False)
    lines = []
    for name, products in CATALOG:
        lines.append(json.dumps({"type": "category", "category": name, "query": f"Which {name}? Rank them."}))
        lines += [json.dumps({"category": name, "brand": b, "model": m, "document": d}) for b, m, d in products]
    (tmp_path / "cat.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


def sweep_file(folder: Path, body: str, name: str = "sweep.toml") -> Path:
    path = folder / name
    path.write_text(body)
    return path


def natural_sweep(folder: Path, seeds: str = "[0, 1]", trials: int = 3) -> Path:
    return sweep_file(folder, f'kind = "natural"\ncategories = ["blender", "kettle"]\nmodels = ["openai:fake"]\n'
                              f'seeds = {seeds}\n[options]\ncatalog = "cat.jsonl"\ntrials = {trials}\nbootstrap = 0\n')


PROGRESS_LINE = re.compile(r"sweep \S+ \[\d+/\d+\] (started|resuming|done|failed|will retry) ")


def one_error_line(err: str) -> str:
    """stderr's one error line; the sweep's progress lines (stderr is not a terminal here) aside."""
    lines = [line for line in err.splitlines() if line.strip() and not PROGRESS_LINE.match(line)]
    assert len(lines) == 1 and lines[0].startswith("poise: error: ") and "Traceback" not in err, err
    return lines[0]


def runs_in(store: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(store / "poise.sqlite") as conn:
        return conn.execute("SELECT id, command, status FROM runs ORDER BY created_at").fetchall()


# -- 1. the sweep file ---------------------------------------------------------------------------------
BAD_FILES = {
    "unknown key": ('kind = "natural"\ncategories = ["blender"]\ncolour = 3\n', "unknown key 'colour'"),
    "unknown option": ('kind = "natural"\ncategories = ["blender"]\n[options]\ntrails = 3\n',
                       "unknown key 'options.trails'"),
    "wrong type": ('kind = "natural"\ncategories = ["blender"]\nseeds = [0, "one"]\n', "seeds[1]"),
    "wrong option type": ('kind = "attack"\ncategories = ["blender"]\n[options]\nbudget = "lots"\n',
                          "options.budget"),
    "empty axis": ('kind = "attack"\ncategories = ["blender"]\nmethods = []\n', "methods: an axis needs"),
    "no categories": ('kind = "attack"\n', "categories is missing"),
    "unknown kind": ('kind = "audit"\ncategories = ["blender"]\n', "not one of natural, attack, defend"),
    "not toml": ('kind = "attack\n', "is not valid TOML"),
    "methods in natural": ('kind = "natural"\ncategories = ["blender"]\nmethods = ["single"]\n',
                           "a natural sweep runs no attack"),
    "params of another method": ('kind = "attack"\ncategories = ["blender"]\n[params.tap]\ndepth = [2]\n',
                                 "params.tap: not one of the sweep's methods"),
    "unknown category": ('kind = "natural"\ncategories = ["toaster"]\n[options]\ncatalog = "cat.jsonl"\n',
                         "unknown category 'toaster'"),
    "unknown method": ('kind = "attack"\ncategories = ["blender"]\nmethods = ["magic"]\n[options]\n'
                       'catalog = "cat.jsonl"\n', "unknown attack method 'magic'"),
    "bad method parameter": ('kind = "attack"\ncategories = ["blender"]\nmethods = ["strategies"]\n'
                             '[params.strategies]\nchildren = [2, 99]\n[options]\ncatalog = "cat.jsonl"\n', "children"),
    "unknown defense": ('kind = "attack"\ncategories = ["blender"]\ndefenses = ["moat"]\n[options]\n'
                        'catalog = "cat.jsonl"\n', "moat"),
    "bad model spec": ('kind = "natural"\ncategories = ["blender"]\nmodels = ["gpt"]\n[options]\n'
                       'catalog = "cat.jsonl"\n', "unknown model spec 'gpt'"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_sweep_file_is_one_line_and_creates_nothing(folder, capsys, case):
    body, expected = BAD_FILES[case]
    path = sweep_file(folder, body)
    for extra in ([], ["--dry-run"]):
        code, out, err = poise(capsys, "sweep", str(path), "--store", str(folder / "store"), *extra)
        assert code != 0 and out == ""
        assert expected in one_error_line(err)
    assert not (folder / "store").exists()


def test_a_missing_sweep_file_through_the_console_script(folder):
    proc = subprocess.run([sys.executable, "-m", "poise", "sweep", str(folder / "nope.toml"), "--dry-run"],
                          capture_output=True, text=True, timeout=60, cwd=folder)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "no sweep file" in one_error_line(proc.stderr)


def test_axes_expand_into_every_combination_once(folder):
    path = sweep_file(folder, 'kind = "attack"\ncategories = ["blender", "kettle"]\nmodels = ["local"]\n'
                              'methods = ["single", "strategies"]\ndefenses = ["none", "sandwich+spotlight"]\n'
                              'seeds = [0, 1, 0]\n[params.strategies]\nchildren = [2, 3]\nparents = 1\n'
                              '[options]\ncatalog = "cat.jsonl"\nbudget = 5\n')
    jobs = load_sweep(path).jobs()
    # 2 categories x (single + strategies x 2 children) x 2 engines x 2 distinct seeds
    assert len(jobs) == 2 * 3 * 2 * 2
    argv = jobs[-1].argv()
    assert argv[:8] == ["attack", "--category", "kettle", "--model", "local", "--seed", "1", "--method"]
    assert argv[argv.index("--param"):argv.index("--param") + 2] == ["--param", "children=3"]
    assert argv.count("--defense") == 2 and "sandwich" in argv and "spotlight" in argv
    assert argv[-2:] == ["--catalog", str(folder / "cat.jsonl")]  # relative to the sweep file, made absolute
    assert "--budget" in argv and "--trials" not in argv  # only the command's own options
    assert {j.defenses for j in jobs} == {(), ("sandwich", "spotlight")}


def test_a_parameter_that_reads_as_json_stays_text(folder):
    path = sweep_file(folder, 'kind = "attack"\ncategories = ["blender"]\nmethods = ["tap"]\n'
                              '[params.tap]\nnote = "3"\n')
    argv = load_sweep(path).jobs()[0].argv()
    assert argv[argv.index("--param") + 1] == 'note="3"'


def test_sweep_error_is_a_poise_error_with_the_file_named(folder):
    with pytest.raises(SweepError, match=r"sweep\.toml: unknown key 'x'"):
        load_sweep(sweep_file(folder, 'kind = "natural"\ncategories = ["a"]\nx = 1\n'))


def test_dry_run_lists_jobs_with_estimates_and_runs_nothing(folder, capsys):
    path = natural_sweep(folder)
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "sweep", str(path), "--dry-run", "--json", "--base-url", fake.url,
                               "--store", str(folder / "store"))
        assert code == 0, err
        assert fake.requests == []
    data = json.loads(out)
    assert [j["state"] for j in data["jobs"]] == ["new"] * 4
    assert data["totals"] == {"jobs": 4, "to_run": 4, "most_queries": 12,
                              "about_tokens": sum(j["about_tokens"] for j in data["jobs"])}
    assert all(j["most_queries"] == 3 and j["about_tokens"] > 3 * 384 for j in data["jobs"])
    assert data["jobs"][0]["command"].startswith("poise natural --category blender --model openai:fake --seed 0")
    assert not (folder / "store").exists()
    code, out, _ = poise(capsys, "sweep", str(path), "--dry-run", "--base-url", "http://127.0.0.1:9/v1")
    assert code == 0 and "4 jobs" in out and "at most 12 queries" in out


# -- a job is an ordinary run -----------------------------------------------------------------------------
KINDS = {
    "natural": 'kind = "natural"\ncategories = ["blender"]\nmodels = ["openai:fake"]\n[options]\n'
               'catalog = "cat.jsonl"\ntrials = 2\nbootstrap = 0\n',
    "attack": 'kind = "attack"\ncategories = ["blender"]\nmodels = ["openai:fake"]\nmethods = ["strategies"]\n'
              'defenses = ["sandwich"]\n[params.strategies]\nchildren = 2\n[options]\ncatalog = "cat.jsonl"\n'
              + ATTACK_OPTIONS,
    "defend": 'kind = "defend"\ncategories = ["kettle"]\nmodels = ["openai:fake"]\nmethods = ["single"]\n'
              'defenses = ["sandwich"]\n[options]\ncatalog = "cat.jsonl"\norders = 2\n' + ATTACK_OPTIONS,
    # the opt-in options of each command reach its run (and its configuration) through a sweep too
    "attack+options": 'kind = "attack"\ncategories = ["blender"]\nmodels = ["openai:fake"]\n[options]\n'
                      'catalog = "cat.jsonl"\nverify_stop = 2\nshared_orders = true\nearly_stop = true\n'
                      + ATTACK_OPTIONS,
    "defend+options": 'kind = "defend"\ncategories = ["kettle"]\nmodels = ["openai:fake"]\nmethods = ["single"]\n'
                      'defenses = ["sandwich"]\n[options]\ncatalog = "cat.jsonl"\norders = 2\nconsensus_orders = 2\n'
                      + ATTACK_OPTIONS,
}
OPTION_FLAGS = {"attack+options": ["--verify-stop 2", "--shared-orders", "--early-stop"],
                "defend+options": ["--consensus-orders 2"]}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_job_is_the_run_its_command_makes(folder, capsys, kind):
    """Run a job's own command line (from --dry-run) with `poise`; the sweep then finds the run
    finished and skips it: a job is keyed like any run of its command."""
    path = sweep_file(folder, KINDS[kind])
    store = str(folder / "store")
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "sweep", str(path), "--dry-run", "--json", "--base-url", fake.url)
        assert code == 0, err
        (job,) = json.loads(out)["jobs"]
        assert all(flag in job["command"] for flag in OPTION_FLAGS.get(kind, []))
        code, _, err = poise(capsys, *shlex.split(job["command"])[1:], "--base-url", fake.url, "--store", store,
                             "--json")
        assert code == 0, err
        asked = len(fake.requests)
        code, out, err = poise(capsys, "sweep", str(path), "--json", "--base-url", fake.url, "--store", store)
        assert code == 0, err
        assert len(fake.requests) == asked  # nothing asked again
    (outcome,) = json.loads(out)["jobs"]
    assert outcome["state"] == "skipped" and outcome["run_id"] == runs_in(folder / "store")[0][0]
    assert [r[1:] for r in runs_in(folder / "store")] == [(kind.split("+")[0], "finished")]


# -- 2. the local executor ----------------------------------------------------------------------------------
def test_a_sweep_runs_every_job_once_and_a_rerun_skips_them(folder, capsys):
    path = natural_sweep(folder)
    store = str(folder / "store")
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "sweep", str(path), "--jobs", "2", "--base-url", fake.url, "--store", store,
                               "--json")
        assert code == 0, err
        assert len(fake.requests) == 12
        data = json.loads(out)
        assert data["totals"]["states"] == {"done": 4} and data["totals"]["queries"] == 12
        code, out, err = poise(capsys, "sweep", str(path), "--jobs", "2", "--base-url", fake.url, "--store", store)
        assert code == 0, err
        assert len(fake.requests) == 12
    assert "4 skipped" in out
    assert sorted(r[1:] for r in runs_in(folder / "store")) == [("natural", "finished")] * 4
    code, out, _ = poise(capsys, "runs", "--store", store, "--json")  # ordinary runs for every command
    assert code == 0 and {r["config"]["categories"][0] for r in json.loads(out)} == {"blender", "kettle"}
    assert all((folder / "store" / "runs" / r[0] / "natural.json").is_file() for r in runs_in(folder / "store"))


def test_a_failed_job_is_retried_and_resumes_its_run(folder, capsys):
    path = natural_sweep(folder, seeds="[0]", trials=3)
    store = str(folder / "store")
    # the first two answers are refused (400: not retried by the client): two trials of one job fail
    with WireFake([error(400, "bad request")] * 2, responder=rank_all) as fake:
        code, out, err = poise(capsys, "sweep", str(path), "--retries", "0", "--base-url", fake.url,
                               "--store", store, "--json")
        assert code == 1
        assert "1 of 2 jobs failed" in one_error_line(err)
        failed = [j for j in json.loads(out)["jobs"] if j["state"] == "failed"]
        assert len(failed) == 1 and "trials failed" in failed[0]["error"]
        code, out, err = poise(capsys, "sweep", str(path), "--base-url", fake.url, "--store", store, "--json")
        assert code == 0, err
        assert len(fake.requests) == 6 + 2  # the two failed trials asked again, nothing else
    states = {j["run_id"]: j["state"] for j in json.loads(out)["jobs"]}
    assert sorted(states.values()) == ["done", "skipped"] and failed[0]["run_id"] in states
    assert len(runs_in(folder / "store")) == 2  # the failed run was resumed, not started again


def test_retries_within_one_sweep(folder, capsys):
    path = natural_sweep(folder, seeds="[0]", trials=2)
    with WireFake([error(400, "bad request")], responder=rank_all) as fake:
        code, out, err = poise(capsys, "sweep", str(path), "--retries", "1", "--base-url", fake.url,
                               "--store", str(folder / "store"), "--json")
    assert code == 0, err
    jobs = json.loads(out)["jobs"]
    assert sorted(j["attempts"] for j in jobs) == [1, 2] and {j["state"] for j in jobs} == {"done"}


def _spawn(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "POISE_HOME")}
    return subprocess.Popen([sys.executable, "-m", "poise", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=cwd)


def hangs_from_the_sixth(hung: threading.Event) -> list:
    """Wire-fake replies for a Ctrl-C test: five answers, then none for a minute (``hung`` set)."""
    asked = iter(range(1, 101))

    def answer(body: dict, headers: dict) -> tuple:
        if next(asked) > 5:  # from the sixth request on, nothing answers
            hung.set()
            return (200, completion(rank_all(body)), 60)
        return (200, completion(rank_all(body)), 0)

    return [answer] * 100


def test_ctrl_c_exits_130_with_one_line_and_a_rerun_resumes(folder):
    path = natural_sweep(folder, trials=4)
    store = str(folder / "store")
    hung = threading.Event()
    with WireFake(hangs_from_the_sixth(hung)) as fake:
        proc = _spawn("sweep", str(path), "--jobs", "2", "--base-url", fake.url, "--store", store, cwd=folder)
        assert hung.wait(60)
        deadline = time.monotonic() + 30
        while answered(folder / "store") < 5:  # the five answers written before Ctrl-C
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and out == "", err
    assert one_error_line(err) == "poise: error: interrupted; finished calls are saved in the store"
    before = runs_in(folder / "store")
    assert {status for _, _, status in before} == {"interrupted"} and len(before) == 2
    kept = answered(folder / "store")
    assert kept == 5
    port = int(fake.url.rsplit(":", 1)[1].split("/")[0])  # the same endpoint: it is part of a run's key
    with WireFake([], responder=rank_all, port=port) as fake:
        proc = _spawn("sweep", str(path), "--jobs", "2", "--base-url", fake.url, "--store", store, "--json",
                      cwd=folder)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert len(fake.requests) == 16 - kept  # finished trials are not asked again
    after = runs_in(folder / "store")
    assert {status for _, _, status in after} == {"finished"} and len(after) == 4
    assert {run_id for run_id, _, _ in before} <= {run_id for run_id, _, _ in after}  # resumed, same runs


# -- 3. many endpoints ---------------------------------------------------------------------------------------
class Busy:
    """A reply that takes a moment and records how many requests were in flight at once."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay, self.now, self.most = delay, 0, 0
        self.lock = threading.Lock()

    def __call__(self, body: dict, headers: dict) -> tuple:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(self.delay)
        with self.lock:
            self.now -= 1
        return (200, completion(rank_all(body) or "1. x"), 0)


def _ask(model: PooledModel, n: int, workers: int = 8) -> list[object]:
    requests = [([ChatMessage(role="user", content=f"question {i}")], GenerateConfig(max_tokens=8))
                for i in range(n)]
    return list(model.generate_many(requests, concurrency=workers))


def test_calls_spread_over_endpoints_within_each_limit():
    busy = [Busy(), Busy(), Busy()]
    with WireFake([busy[0]] * 40) as a, WireFake([busy[1]] * 40) as b, WireFake([busy[2]] * 40) as c:
        pool = Endpoints("fake", [a.url, b.url, c.url], limit=2, retry=RetryPolicy(max_attempts=1, timeout_s=5))
        model = PooledModel("openai:fake", pool)
        results = _ask(model, 30)
        assert all(not isinstance(r, BaseException) for r in results), results
        assert all(len(f.requests) >= 5 for f in (a, b, c))
        assert sum(len(f.requests) for f in (a, b, c)) == 30
        assert max(x.most for x in busy) <= 2
        assert model.max_concurrency == 6
        assert sum(s["calls"] for s in pool.stats()) == 30
        pool.close()


def test_a_stopped_endpoint_is_taken_out_and_its_calls_go_elsewhere():
    a = WireFake([Busy(0.01)] * 100)
    with a, WireFake([Busy(0.01)] * 100) as b:
        pool = Endpoints("fake", [a.url, b.url], limit=2, retry=RetryPolicy(max_attempts=3, timeout_s=5))
        model = PooledModel("openai:fake", pool)
        first = _ask(model, 10, workers=4)
        a.__exit__(None, None, None)  # stopped midway: its port now refuses connections
        second = _ask(model, 20, workers=4)
        assert all(not isinstance(r, BaseException) for r in first + second), first + second
        stats = {s["url"]: s for s in pool.stats()}
        dead, alive = stats[a.url], stats[b.url]
        assert not dead["healthy"] and alive["healthy"] and "cannot reach" in dead["last_error"]
        assert alive["calls"] + dead["calls"] == 30 and alive["calls"] >= 20
        pool.close()


def test_when_every_endpoint_is_down_a_call_fails_with_one_line():
    from poise._errors import ModelUnreachableError

    with WireFake([]) as a:
        url = a.url
    pool = Endpoints("fake", [url, url.replace("/v1", "/v2")], retry=RetryPolicy(max_attempts=2, timeout_s=2))
    with pytest.raises(ModelUnreachableError) as info:
        PooledModel("openai:fake", pool).generate([ChatMessage(role="user", content="hi")])
    assert "every endpoint of fake is down" in info.value.one_line()
    pool.close()


def test_a_sweep_over_endpoints_finishes_when_one_is_stopped_midway(folder, capsys):
    path = natural_sweep(folder, trials=4)
    stopped = threading.Event()
    a = WireFake([], responder=rank_all)

    def stop_a_after_some(body: dict, headers: dict) -> tuple:
        if len(b.requests) == 3:
            threading.Thread(target=lambda: (a.__exit__(None, None, None), stopped.set())).start()
        return (200, completion(rank_all(body)), 0.02)

    with a, WireFake([stop_a_after_some] * 100) as b:
        code, out, err = poise(capsys, "sweep", str(path), "--jobs", "2", "--base-url", a.url, "--base-url", b.url,
                               "--endpoint-limit", "1", "--store", str(folder / "store"), "--json")
        assert stopped.is_set()
    assert code == 0, err
    data = json.loads(out)
    assert data["totals"]["states"] == {"done": 4}
    (endpoints,) = data["endpoints"].values()
    assert sum(e["calls"] for e in endpoints) == 16
    health = {e["url"]: e["healthy"] for e in endpoints}
    assert health == {a.url: False, b.url: True}
    assert len(runs_in(folder / "store")) == 4


@pytest.mark.server
def test_a_sweep_on_a_real_llama_server_beside_a_stopped_one(folder, capsys, llama_server):
    """The real OpenAI-compatible server (llama.cpp) and a port where nothing listens: every
    trial is answered by the live one and the dead one is taken out."""
    with WireFake([]) as gone:
        dead = gone.url
    path = sweep_file(folder, 'kind = "natural"\ncategories = ["blender"]\nmodels = ["openai:smollm2"]\n'
                              '[options]\ncatalog = "cat.jsonl"\ntrials = 2\nbootstrap = 0\nmax_tokens = 48\n')
    code, out, err = poise(capsys, "sweep", str(path), "--base-url", dead, "--base-url", llama_server,
                           "--store", str(folder / "store"), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["totals"]["states"] == {"done": 1}
    health = {e["url"]: (e["healthy"], e["calls"]) for e in data["endpoints"]["smollm2"]}
    assert health[dead] == (False, 0) and health[llama_server] == (True, 2)


@pytest.mark.model
def test_an_attack_sweep_on_the_bundled_model_and_its_rerun(folder, capsys):
    path = sweep_file(folder, 'kind = "attack"\ncategories = ["blender"]\nmodels = ["local"]\n'
                              'methods = ["none", "single"]\n[options]\ncatalog = "cat.jsonl"\nmax_tokens = 48\n'
                              + ATTACK_OPTIONS)
    store = str(folder / "store")
    code, out, err = poise(capsys, "sweep", str(path), "--jobs", "2", "--store", store, "--json")
    assert code == 0, err
    jobs = json.loads(out)["jobs"]
    assert [j["state"] for j in jobs] == ["done", "done"]
    # the model was asked (one job may be served from the other's cached baseline), and each job
    # stored its baseline score: None when the 135M model's answer could not be read, which made
    # the stricter form of this check fail in about half of the full-suite runs
    assert sum(j["calls"] for j in jobs) > 0, jobs
    assert all("score_before" in j for j in jobs), jobs
    code, out, err = poise(capsys, "sweep", str(path), "--store", store)
    assert code == 0 and "2 skipped" in out, err
    code, out, err = poise(capsys, "report", jobs[1]["run_id"], "--store", store, "--out", str(folder / "r.md"))
    assert code == 0, err
    assert "single" in (folder / "r.md").read_text()  # an ordinary attack run, reported as one
