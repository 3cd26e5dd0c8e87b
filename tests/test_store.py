"""The SQLite results store: runs, calls with their scores, resumability, where it lives."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import poise
from poise import StoreError
from poise.store import (
    DB_NAME,
    DEFAULT_STORE_DIR,
    STORE_ENV,
    CallRecord,
    Store,
    config_hash,
    store_dir,
)

PRODUCTS = (("Blendtec", "Designer 650 S"), ("Ninja", "Foodi"), ("Oster", "Pro 1200"), ("Vitamix", "A3500"))


def call(task_key: str = "blender/seed=0", **changes) -> CallRecord:
    base = CallRecord(
        task_key=task_key,
        category="blender",
        query="Which blender?",
        model_spec="fake:scripted",
        context_order=[2, 0, 3, 1],
        messages=[{"role": "user", "content": "Which blender?"}],
        config={"temperature": 0.0, "seed": 0},
        model_name="scripted",
        template="default",
        seed=0,
        response_text="1. Oster Pro 1200\n2. Blendtec Designer 650 S",
        finish_reason="stop",
        prompt_tokens=100,
        completion_tokens=20,
        latency_s=1.5,
        parseable=True,
        ranking=[2, 0],
        products=PRODUCTS,
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "runs") as s:
        yield s


def scores(store: Store, call_id: int) -> list[tuple]:
    with sqlite3.connect(store.db_path) as conn:
        return conn.execute(
            "SELECT product_index, brand, model, position, rank, score FROM scores"
            " WHERE call_id = ? ORDER BY product_index", (call_id,)).fetchall()


def set_run_columns(store: Store, run_id: str, **values) -> None:
    sets = ", ".join(f"{k} = ?" for k in values)
    with sqlite3.connect(store.db_path) as conn:
        conn.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*values.values(), run_id))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- runs ------------------------------------------------------------------------------------------
def test_start_and_finish_run(store):
    config = {"category": "blender", "seeds": [0, 1], "model": "fake"}
    run_id = store.start_run("recommend", config)
    (record,) = store.runs()
    assert record.id == run_id
    assert (record.command, record.status, record.config) == ("recommend", "running", config)
    assert record.finished_at is None and record.error is None
    assert record.calls == 0 and record.failed_calls == 0 and record.prompt_tokens == 0

    store.finish_run(run_id, "failed", error="model went away")
    record = store.run(run_id)
    assert record.status == "failed" and record.error == "model went away"
    assert record.finished_at is not None and record.finished_at >= record.created_at

    with sqlite3.connect(store.db_path) as conn:
        row = conn.execute("SELECT config_hash, poise_version, host, pid FROM runs").fetchone()
    assert row == (config_hash(config), poise.__version__, socket.gethostname(), os.getpid())


def test_explicit_run_id_and_newest_first(store):
    a = store.start_run("recommend", {"n": 1}, run_id="run-a")
    b = store.start_run("demo", {"n": 2}, run_id="run-b")
    set_run_columns(store, a, created_at=1000.0)
    set_run_columns(store, b, created_at=2000.0)
    assert [r.id for r in store.runs()] == ["run-b", "run-a"]
    assert [r.id for r in store.runs(limit=1)] == ["run-b"]


def test_generated_run_ids_are_unique(store):
    ids = {store.start_run("recommend", {}) for _ in range(20)}
    assert len(ids) == 20


def test_finish_run_rejects_unknown_status(store):
    run_id = store.start_run("recommend", {})
    with pytest.raises(ValueError, match="unknown run status 'done'"):
        store.finish_run(run_id, "done")
    assert store.run(run_id).status == "running"


def test_unknown_run_is_a_store_error(store):
    with pytest.raises(StoreError) as info:
        store.run("no-such-run")
    assert "no run 'no-such-run'" in info.value.one_line()


def test_run_totals_count_failures_cache_hits_and_unparseable(store):
    run_id = store.start_run("recommend", {})
    store.record_call(run_id, call("t1"))
    store.record_call(run_id, call("t2", cached=True, prompt_tokens=999, completion_tokens=999, latency_s=99.0))
    store.record_call(run_id, call("t3", parseable=False, ranking=None, unparseable_reason="off-topic",
                                   prompt_tokens=10, completion_tokens=2, latency_s=0.5))
    store.record_call(run_id, call("t4", error="timed out", response_text=None, parseable=None, ranking=None,
                                   prompt_tokens=0, completion_tokens=0, latency_s=0.0))
    r = store.run(run_id)
    assert (r.calls, r.failed_calls, r.cached_calls, r.unparseable_calls) == (4, 1, 1, 1)
    # cached calls cost nothing
    assert (r.prompt_tokens, r.completion_tokens) == (110, 22)
    assert r.latency_s == pytest.approx(2.0)


# -- a run whose process died ------------------------------------------------------------------------
def test_running_run_of_a_dead_process_shows_as_interrupted(store):
    live = store.start_run("recommend", {"n": 1})
    dead = store.start_run("recommend", {"n": 2})
    set_run_columns(store, dead, pid=dead_pid())
    statuses = {r.id: r.status for r in store.runs()}
    assert statuses == {live: "running", dead: "interrupted"}


def test_dead_pid_on_another_host_is_trusted(store):
    run_id = store.start_run("recommend", {})
    set_run_columns(store, run_id, pid=dead_pid(), host=socket.gethostname() + "-elsewhere")
    assert store.run(run_id).status == "running"


def test_finished_run_of_a_dead_process_stays_finished(store):
    run_id = store.start_run("recommend", {})
    store.finish_run(run_id)
    set_run_columns(store, run_id, pid=dead_pid())
    assert store.run(run_id).status == "finished"


# -- calls and scores ----------------------------------------------------------------------------------
def test_record_call_scores_listed_products_n_minus_rank_plus_one(store):
    run_id = store.start_run("recommend", {})
    call_id = store.record_call(run_id, call(context_order=[2, 0, 3, 1], ranking=[2, 3, 0]))
    # n = 4: ranked 1st scores 4, 2nd scores 3, 3rd scores 2; unlisted products score 0, no rank;
    # position is where the product's document stood in the context (1-based)
    assert scores(store, call_id) == [
        (0, "Blendtec", "Designer 650 S", 2, 3, 2),
        (1, "Ninja", "Foodi", 4, None, 0),
        (2, "Oster", "Pro 1200", 1, 1, 4),
        (3, "Vitamix", "A3500", 3, 2, 3),
    ]


def test_record_call_stores_the_call(store):
    run_id = store.start_run("recommend", {})
    record = call()
    call_id = store.record_call(run_id, record)
    (row,) = store.calls(run_id)
    assert row["id"] == call_id and row["run_id"] == run_id
    assert row["task_key"] == record.task_key and row["response_text"] == record.response_text
    assert json.loads(row["context_order"]) == list(record.context_order)
    assert json.loads(row["messages_json"]) == list(record.messages)
    assert json.loads(row["config_json"]) == record.config
    assert json.loads(row["ranking_json"]) == list(record.ranking)
    assert (row["parseable"], row["cached"], row["error"]) == (1, 0, None)
    assert row["meta_json"] is None


def test_meta_is_stored_as_json_and_returned_by_calls(store):
    run_id = store.start_run("natural", {})
    meta = {"assignment": [3, 1, 0, 2], "injection": {"target": 2, "text": "Best \u2605 blender"}}
    store.record_call(run_id, call(meta=meta))
    (row,) = store.calls(run_id)
    assert json.loads(row["meta_json"]) == meta


def test_unparseable_and_failed_calls_have_no_scores(store):
    run_id = store.start_run("recommend", {})
    unparsed = store.record_call(run_id, call("t1", parseable=False, ranking=None, unparseable_reason="empty"))
    failed = store.record_call(run_id, call("t2", error="HTTP 500", parseable=None, ranking=None))
    assert scores(store, unparsed) == [] and scores(store, failed) == []
    rows = store.calls(run_id)
    assert [(r["parseable"], r["unparseable_reason"], r["error"]) for r in rows] == [
        (0, "empty", None), (None, None, "HTTP 500")]


def test_record_call_is_atomic(store):
    """A call whose scores cannot be written leaves no call row behind."""
    run_id = store.start_run("recommend", {})
    bad = call("t1", products=(("Blendtec", "Designer 650 S"), (None, "Foodi"), ("Oster", "Pro 1200"),
                               ("Vitamix", "A3500")))  # a NULL brand violates scores.brand NOT NULL
    with pytest.raises(StoreError) as info:
        store.record_call(run_id, bad)
    assert "cannot write to the results store" in info.value.one_line()
    assert store.calls(run_id) == []
    with sqlite3.connect(store.db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM scores").fetchone() == (0,)
    assert "t1" not in store.done_tasks(run_id)
    # the store is still usable afterwards
    store.record_call(run_id, call("t1"))
    assert store.done_tasks(run_id) == {"t1"}


def test_calls_are_per_run(store):
    a = store.start_run("recommend", {"n": 1})
    b = store.start_run("recommend", {"n": 2})
    store.record_call(a, call("t1"))
    store.record_call(b, call("t1"))  # the same task key in another run is fine
    store.record_call(b, call("t2"))
    assert [r["task_key"] for r in store.calls(a)] == ["t1"]
    assert [r["task_key"] for r in store.calls(b)] == ["t1", "t2"]


# -- resumability ------------------------------------------------------------------------------------------
def test_done_tasks_counts_only_successful_calls(store):
    run_id = store.start_run("recommend", {})
    store.record_call(run_id, call("ok"))
    store.record_call(run_id, call("unparsed", parseable=False, ranking=None))
    store.record_call(run_id, call("failed", error="timed out", parseable=None, ranking=None))
    assert store.done_tasks(run_id) == {"ok", "unparsed"}
    assert store.done_tasks("other-run") == set()


def test_failed_call_can_be_retried_in_the_same_run(store):
    run_id = store.start_run("recommend", {})
    store.record_call(run_id, call("t1", error="HTTP 503", parseable=None, ranking=None))
    store.record_call(run_id, call("t1", error="HTTP 503 again", parseable=None, ranking=None))
    assert store.done_tasks(run_id) == set()
    retry_id = store.record_call(run_id, call("t1"))
    rows = store.calls(run_id)
    assert [(r["task_key"], r["error"]) for r in rows] == [("t1", "HTTP 503"), ("t1", "HTTP 503 again"), ("t1", None)]
    assert store.done_tasks(run_id) == {"t1"}
    assert len(scores(store, retry_id)) == len(PRODUCTS)
    assert store.run(run_id).failed_calls == 2


def test_second_successful_call_for_a_task_is_refused(store):
    run_id = store.start_run("recommend", {})
    first = store.record_call(run_id, call("t1"))
    with pytest.raises(StoreError) as info:
        store.record_call(run_id, call("t1", response_text="a different answer"))
    line = info.value.one_line()
    assert "\n" not in line
    assert "cannot write to the results store" in line and str(store.db_path) in line
    assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
    rows = store.calls(run_id)
    assert [r["id"] for r in rows] == [first]
    assert rows[0]["response_text"] == call().response_text
    # the refused call wrote no scores either
    with sqlite3.connect(store.db_path) as conn:
        assert conn.execute("SELECT COUNT(DISTINCT call_id) FROM scores").fetchone() == (1,)
    # a failure after the success is still recorded beside it
    store.record_call(run_id, call("t1", error="late failure", parseable=None, ranking=None))
    assert len(store.calls(run_id)) == 2 and store.done_tasks(run_id) == {"t1"}


def test_find_unfinished_matches_command_and_config(store):
    config = {"category": "blender", "seeds": [0, 1, 2], "model": "local"}
    assert store.find_unfinished("recommend", config) is None
    run_id = store.start_run("recommend", config)
    # key order does not matter; the configuration's content does
    assert store.find_unfinished("recommend", dict(reversed(list(config.items())))) == run_id
    assert store.find_unfinished("recommend", {**config, "seeds": [0, 1]}) is None
    assert store.find_unfinished("demo", config) is None

    store.finish_run(run_id, "interrupted")
    assert store.find_unfinished("recommend", config) == run_id
    store.finish_run(run_id, "failed", error="boom")
    assert store.find_unfinished("recommend", config) == run_id
    store.finish_run(run_id, "finished")
    assert store.find_unfinished("recommend", config) is None


def test_find_unfinished_returns_the_latest(store):
    config = {"category": "blender"}
    older = store.start_run("recommend", config)
    newer = store.start_run("recommend", config)
    set_run_columns(store, older, created_at=1000.0)
    set_run_columns(store, newer, created_at=2000.0)
    assert store.find_unfinished("recommend", config) == newer
    store.finish_run(newer)
    assert store.find_unfinished("recommend", config) == older


def test_resume_run_marks_it_running_in_this_process(store):
    run_id = store.start_run("recommend", {})
    store.finish_run(run_id, "interrupted", error="Ctrl-C")
    set_run_columns(store, run_id, pid=dead_pid())
    store.resume_run(run_id)
    record = store.run(run_id)
    assert (record.status, record.error, record.finished_at) == ("running", None, None)


def test_store_persists_across_instances(tmp_path):
    with Store(tmp_path) as s:
        run_id = s.start_run("recommend", {"a": 1})
        s.record_call(run_id, call("t1"))
        s.finish_run(run_id)
    with Store(tmp_path) as s:
        assert s.run(run_id).status == "finished"
        assert s.done_tasks(run_id) == {"t1"}


# -- where the store lives ------------------------------------------------------------------------------
def test_store_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(STORE_ENV, raising=False)
    assert store_dir() == Path(DEFAULT_STORE_DIR) == Path("poise-runs")
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "from-env"))
    assert store_dir() == tmp_path / "from-env"
    assert store_dir(tmp_path / "from-arg") == tmp_path / "from-arg"
    assert store_dir(str(tmp_path / "as-text")) == tmp_path / "as-text"


def test_store_dir_expands_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(STORE_ENV, raising=False)
    assert store_dir("~/results") == tmp_path / "results"
    monkeypatch.setenv(STORE_ENV, "~/env-results")
    assert store_dir() == tmp_path / "env-results"


def test_store_opens_where_store_dir_says(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(STORE_ENV, raising=False)
    with Store() as s:
        assert s.db_path.resolve() == (tmp_path / DEFAULT_STORE_DIR / DB_NAME).resolve()
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "env"))
    with Store() as s:
        assert s.db_path == tmp_path / "env" / DB_NAME
        assert s.cache_path == tmp_path / "env" / "cache.sqlite"
    with Store(tmp_path / "arg") as s:
        assert s.db_path == tmp_path / "arg" / DB_NAME
    assert (tmp_path / DEFAULT_STORE_DIR / DB_NAME).is_file()
    assert (tmp_path / "env" / DB_NAME).is_file()
    assert (tmp_path / "arg" / DB_NAME).is_file()


def test_reading_a_missing_store_creates_nothing(tmp_path):
    target = tmp_path / "results"
    assert not Store.exists(target)
    with pytest.raises(StoreError) as info:
        Store(target, create=False)
    assert f"no results store at {target}" in info.value.one_line() and "--store" in info.value.one_line()
    assert not target.exists()
    with Store(target):
        pass
    assert Store.exists(target)
    with Store(target, create=False) as s:
        assert s.runs(5) == []


def test_unwritable_store_path_is_a_one_line_store_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    target = blocker / "runs"
    with pytest.raises(StoreError) as info:
        Store(target)
    line = info.value.one_line()
    assert "\n" not in line
    assert f"cannot open the results store at {target / DB_NAME}" in line
    assert "--store" in line and STORE_ENV in line


def test_store_path_that_is_not_a_database_is_a_store_error(tmp_path):
    (tmp_path / DB_NAME).write_bytes(b"this is not an SQLite database, just some bytes" * 10)
    with pytest.raises(StoreError) as info:
        Store(tmp_path)
    line = info.value.one_line()
    assert "\n" not in line and "cannot open the results store" in line


# -- a store written before the current schema ------------------------------------------------------------
_OLD_CALLS = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY, command TEXT NOT NULL, status TEXT NOT NULL, config_json TEXT NOT NULL,
    config_hash TEXT NOT NULL, created_at REAL NOT NULL, finished_at REAL, error TEXT,
    poise_version TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL
);
CREATE TABLE calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id),
    task_key TEXT NOT NULL, category TEXT NOT NULL, query TEXT NOT NULL, model_spec TEXT NOT NULL,
    model_name TEXT, template TEXT, seed INTEGER, context_order TEXT NOT NULL,
    messages_json TEXT NOT NULL, config_json TEXT NOT NULL, response_text TEXT, finish_reason TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0,
    latency_s REAL NOT NULL DEFAULT 0, cached INTEGER NOT NULL DEFAULT 0, cache_key TEXT,
    parseable INTEGER, unparseable_reason TEXT, ranking_json TEXT, error TEXT,
    created_at REAL NOT NULL, UNIQUE (run_id, task_key)
);
CREATE TABLE scores (
    call_id INTEGER NOT NULL REFERENCES calls(id), product_index INTEGER NOT NULL, brand TEXT NOT NULL,
    model TEXT NOT NULL, position INTEGER NOT NULL, rank INTEGER, score INTEGER NOT NULL,
    PRIMARY KEY (call_id, product_index)
);
"""


def test_store_from_the_previous_schema_still_records_calls(tmp_path):
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.executescript(_OLD_CALLS)
    with Store(tmp_path) as s:
        run_id = s.start_run("recommend", {})
        s.record_call(run_id, call("t1", error="HTTP 503", parseable=None, ranking=None))
        s.record_call(run_id, call("t1", meta={"k": 1}))
        assert s.done_tasks(run_id) == {"t1"}
        assert json.loads(s.calls(run_id)[-1]["meta_json"]) == {"k": 1}
        assert s.scores(run_id)  # scores still reference the calls table
    # opening it again changes nothing and loses nothing
    with Store(tmp_path) as s:
        assert s.done_tasks(run_id) == {"t1"} and len(s.calls(run_id)) == 2
        with sqlite3.connect(tmp_path / DB_NAME) as conn:
            tables = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
        assert "calls_old" not in tables and "calls_new" not in tables
        assert "REFERENCES calls(id)" in tables["scores"].replace('"', "")
