"""A hostile probe of the OpenAI-compatible backend on the wire (keys and URLs it cannot send,
redirects, replies nested without end), of sweep files (huge values, jobs that are one run) and
of run bundles that were tampered with. Each test failed before its fix; servers are wire fakes
on loopback, no model is loaded."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from poise import ModelError, ModelSpecError, StoreError
from poise.models import ChatMessage, OpenAIModel, RetryPolicy
from poise.store import RunBundle, Store, StoredNatural

from .cliutil import blender_folder, error_line, poise, rank_all
from .wirefake import WireFake, raw

FAST = RetryPolicy(max_attempts=3, initial_wait_s=0.01, max_wait_s=0.02, timeout_s=5)
HELLO = [ChatMessage(role="user", content="hello")]
SECRET = "sk-poise-wire-3b9d0e7a2c4f6e8a1b3d5f70"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return blender_folder(tmp_path, monkeypatch)


# -- 1. a key or a URL that cannot go on the wire ----------------------------------------------------
@pytest.mark.parametrize("key, what", [
    (SECRET + "\n", "a line break"), (SECRET + "\r", "a line break"), (" " + SECRET, "a space"),
    (SECRET[:10] + "\u201d" + SECRET[10:], "not ASCII"), (SECRET[:10] + "\x1b" + SECRET[10:], "a control character"),
], ids=["newline", "carriage return", "space", "smart quote", "escape"])
@pytest.mark.parametrize("source", ["env", "argument"])
def test_a_key_that_cannot_be_a_header_is_named_before_any_request(monkeypatch, key, what, source):
    """It was 'cannot reach the server' (retried) or a UnicodeEncodeError, never the key's fault."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    if source == "env":
        monkeypatch.setenv("OPENAI_API_KEY", key)
    with WireFake([]) as fake, pytest.raises(ModelSpecError) as info:
        model = OpenAIModel("openai:fake", "fake", base_url=fake.url, retry=FAST,
                            api_key=key if source == "argument" else None)
        model.generate(HELLO)
    line = info.value.one_line()
    assert not fake.requests
    assert "API key" in line and what in line and "\n" not in line and "reach" not in line
    assert SECRET[:10] not in line and SECRET[-10:] not in line
    if source == "env":
        assert "OPENAI_API_KEY" in line


@pytest.mark.parametrize("url", ["http://bob:pw-9c1e5b2d@[::1/v1", "http://bob:pw-9c1e5b2d@127.0.0.1:99999/v1",
                                 "http://bob:pw-9c1e5b2d@127.0.0.1:port/v1"])
def test_a_base_url_that_cannot_be_read_is_one_line_not_an_internal_error(folder, capsys, url):
    code, out, err = poise(capsys, "recommend", "-c", "blender", "--catalog", "cat.jsonl", "--model", "openai:m",
                           "--base-url", url)
    line = error_line(err)
    assert code == 1 and out == "" and "internal error" not in line
    assert "base URL" in line and "--base-url" in line and "pw-9c1e5b2d" not in line
    assert not (folder / "poise-runs").exists()


def test_a_sweep_endpoint_that_cannot_be_read_is_one_line_and_keeps_its_password(folder, capsys):
    (folder / "s.toml").write_text('kind = "natural"\ncategories = ["blender"]\nmodels = ["openai:m"]\n'
                                   '[options]\ncatalog = "cat.jsonl"\n')
    code, out, err = poise(capsys, "sweep", "s.toml", "--dry-run", "--base-url", "http://127.0.0.1:9/v1",
                           "--base-url", "http://bob:pw-9c1e5b2d@[::1/v1")
    line = error_line(err)
    assert code == 1 and out == "" and "internal error" not in line and "base URL" in line
    assert "pw-9c1e5b2d" not in line


# -- 2. redirects ---------------------------------------------------------------------------------------
def redirect(status: int, location: str) -> tuple:
    return (status, "", 0, {"Location": location})


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_named_with_where_it_points_not_followed(status):
    """A 301/302/303 turned the POST into a GET (the server's 404 or 405 then blamed the model
    name, or a 5xx was retried); a 307 to another host sent the prompt there without the key."""
    with WireFake([], responder=lambda body: "followed") as target:
        location = target.url.replace("127.0.0.1", "localhost").replace("http://", "http://eve:pw-77aa55@") \
            + "/chat/completions?api_key=zz-secret-9"
        with WireFake([redirect(status, location)] * 5) as fake, pytest.raises(ModelError) as info:
            OpenAIModel("openai:fake", "fake", base_url=fake.url, retry=FAST, api_key=SECRET).generate(HELLO)
    line = info.value.one_line()
    assert not target.requests and len(fake.requests) == 1  # neither followed nor retried
    assert f"HTTP {status}" in line and "redirects" in line and "--base-url" in line
    assert target.url.replace("127.0.0.1", "localhost") in line  # the address to pass instead
    assert "pw-77aa55" not in line and "zz-secret-9" not in line and SECRET not in line


def test_a_relative_redirect_is_shown_whole_and_a_hostile_location_stays_inert():
    with WireFake([redirect(308, "/v2/chat/completions")]) as fake, pytest.raises(ModelError) as info:
        OpenAIModel("openai:fake", "fake", base_url=fake.url, retry=FAST).generate(HELLO)
    assert f"to {fake.url.removesuffix('/v1')}/v2 " in info.value.one_line()
    for hostile in ("http://[::1/\x9b31m\xad" + "x" * 500, "/v1/\x9b31m\xad" + "x" * 500):  # C1 CSI, soft hyphen
        with WireFake([redirect(302, hostile)]) as fake, pytest.raises(ModelError) as info:
            OpenAIModel("openai:fake", "fake", base_url=fake.url, retry=FAST).generate(HELLO)
        line = info.value.one_line()
        assert "HTTP 302" in line and "\x9b" not in line and "\xad" not in line and len(line) < 600


# -- 3. a reply nested without end ------------------------------------------------------------------------
def test_a_reply_nested_too_deeply_says_so():
    with WireFake([raw(200, "[" * 100_000 + "]" * 100_000)]) as fake, pytest.raises(ModelError) as info:
        OpenAIModel("openai:fake", "fake", base_url=fake.url, retry=FAST).generate(HELLO)
    line = info.value.one_line()
    assert "nested too deeply" in line and "RecursionError" not in line and "--base-url" in line


# -- 4. sweep files ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    'kind = "{big}"\ncategories = ["blender"]\n',
    'kind = "natural"\ncategories = ["blender"]\n[options]\ntrials = "{big}"\n',
    'kind = "natural"\ncategories = ["blender"]\n"{big}" = 1\n',
    'kind = "natural"\ncategories = "{big}"\n',
], ids=["kind", "option", "key", "axis"])
def test_a_huge_value_in_a_sweep_file_is_not_echoed_whole(folder, capsys, body):
    (folder / "s.toml").write_text(body.replace("{big}", "x" * 200_000))
    code, out, err = poise(capsys, "sweep", "s.toml", "--dry-run")
    line = error_line(err)
    assert code == 1 and out == "" and "s.toml" in line and "xxxx" in line and len(line) < 600, len(line)


def test_jobs_that_are_the_same_run_are_one_job(folder, capsys):
    """'blender' and 'BLENDER' name one category: two jobs made the same run twice."""
    (folder / "s.toml").write_text('kind = "natural"\ncategories = ["blender", "BLENDER", "Blender"]\n'
                                   'models = ["openai:m"]\n[options]\ncatalog = "cat.jsonl"\ntrials = 2\n'
                                   'bootstrap = 0\n')
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "sweep", "s.toml", "--dry-run", "--json", "--base-url", fake.url)
        assert code == 0, err
        assert [j["job"] for j in json.loads(out)["jobs"]] == ["natural / blender / openai:m / none / seed 0"]
        code, out, err = poise(capsys, "sweep", "s.toml", "--json", "-j", "3", "--base-url", fake.url)
    assert code == 0, err
    assert len(json.loads(out)["jobs"]) == 1
    with sqlite3.connect(folder / "poise-runs" / "poise.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    assert len(fake.requests) == 2


# -- 5. run bundles that were tampered with ---------------------------------------------------------------
def store_state(store: Path) -> tuple[list[tuple[object, ...]], int, list[str]]:
    with sqlite3.connect(store / "poise.sqlite") as conn:
        runs = conn.execute("SELECT id, status FROM runs ORDER BY id").fetchall()
        calls = conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    return runs, calls, sorted(str(p.relative_to(store)) for p in store.rglob("*") if "-" not in p.suffix)


@pytest.fixture
def bundle(tmp_path: Path) -> RunBundle:
    with Store(tmp_path / "source") as db:
        run_id = db.start_run("natural", {"trials": 2})
        db.save_result(run_id, StoredNatural(run_id=run_id))
        db.finish_run(run_id)
        return db.export_run(run_id)


@pytest.mark.parametrize("run_id", ["..", "."])
def test_a_bundle_whose_run_id_leaves_the_runs_folder_is_refused_whole(tmp_path, bundle, run_id):
    """A bundle for run '..' wrote its files into the store's own folder (over poise.sqlite)."""
    with Store(tmp_path / "dest") as db:
        db.start_run("recommend", {})
        before = store_state(tmp_path / "dest")
        tampered = dataclasses.replace(bundle, id=run_id, files={"poise.sqlite": b"not a database"})
        with pytest.raises(StoreError, match="not a run id"):
            db.import_run(tampered)
        assert store_state(tmp_path / "dest") == before
        assert len(db.runs()) == 1


@pytest.mark.parametrize("content", [b"{not json", b'{"plots": 5}', b"[]"])
def test_a_bundle_with_a_damaged_result_file_is_refused_whole(tmp_path, bundle, content):
    """natural.json was read after the run's rows were committed: a damaged one left them (and
    any file before it) behind, and raised pydantic's error, not the store's."""
    with Store(tmp_path / "dest") as db:
        before = store_state(tmp_path / "dest")
        tampered = dataclasses.replace(bundle, files={"a.png": b"png", StoredNatural.FILE: content})
        with pytest.raises(StoreError, match=f"{StoredNatural.FILE}"):
            db.import_run(tampered)
        assert store_state(tmp_path / "dest") == before
        db.import_run(bundle)  # the untampered bundle still goes in
        assert db.run(bundle.id).status == "finished"


# -- 6. a request cache another tool or another poise wrote ---------------------------------------------------
def recommend(capsys: pytest.CaptureFixture[str], url: str) -> tuple[int, str, str]:
    return poise(capsys, "recommend", "-c", "blender", "--catalog", "cat.jsonl", "--model", "openai:m",
                 "--base-url", url, "--json")


@pytest.mark.parametrize("row", ['{"text": 5}', "[[[[", '{"text": "1. Ninja Foodi", "model": "m", "usage": "x"}'])
def test_a_cache_entry_that_cannot_be_read_is_asked_again_and_replaced(folder, capsys, row):
    """It was an internal error (pydantic's ValidationError) on every rerun of the request."""
    with WireFake([], responder=rank_all) as fake:
        assert recommend(capsys, fake.url)[0] == 0
        with sqlite3.connect(folder / "poise-runs" / "cache.sqlite") as conn:
            conn.execute("UPDATE responses SET response_json = ?", (row,))
        code, out, err = recommend(capsys, fake.url)
        assert code == 0 and "error" not in err, err
        assert json.loads(out)["response"].startswith("1. ") and len(fake.requests) == 2
        assert recommend(capsys, fake.url)[0] == 0 and len(fake.requests) == 2  # the new answer was cached


def test_a_cache_table_of_another_shape_is_one_line(folder, capsys):
    (folder / "poise-runs").mkdir()
    with sqlite3.connect(folder / "poise-runs" / "cache.sqlite") as conn:
        conn.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, payload BLOB)")
    with WireFake([], responder=rank_all) as fake:
        code, out, err = recommend(capsys, fake.url)
    line = error_line(err)
    assert code == 1 and out == "" and "internal error" not in line
    assert "request cache" in line and "cache.sqlite" in line and "move it away" in line


# -- 7. a store a newer poise wrote ---------------------------------------------------------------------------
def test_a_store_from_a_newer_poise_is_not_written_or_migrated_but_still_listed(folder, capsys):
    """An older poise wrote into (and migrated) a newer poise's store without a word."""
    from poise.store import STORE_SCHEMA_VERSION

    with Store(folder / "poise-runs") as db:
        db.finish_run(db.start_run("recommend", {"category": "blender"}))
    db_path = folder / "poise-runs" / "poise.sqlite"
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == STORE_SCHEMA_VERSION
        conn.execute(f"PRAGMA user_version = {STORE_SCHEMA_VERSION + 1}")
        conn.execute("CREATE TABLE calls_old (x)")  # what this poise's migration would drop
    before = db_path.read_bytes()
    with WireFake([], responder=rank_all) as fake:
        code, out, err = recommend(capsys, fake.url)
    line = error_line(err)
    assert code == 1 and out == "" and not fake.requests
    assert "newer poise" in line and f"schema {STORE_SCHEMA_VERSION + 1}" in line and "--store" in line
    assert db_path.read_bytes() == before
    code, out, err = poise(capsys, "runs")
    assert code == 0 and "recommend" in out, err


# -- 8. a timeout too long for the clock ----------------------------------------------------------------------
@pytest.mark.parametrize("value", ["1e308", "inf", "1e12"])
def test_a_timeout_past_any_clock_is_one_line_naming_the_flag(folder, capsys, value):
    """1e308 failed every call with 'OverflowError: timestamp out of range'; inf was an internal error."""
    code, out, err = poise(capsys, "recommend", "-c", "blender", "--catalog", "cat.jsonl", "--model", "openai:m",
                           "--base-url", "http://127.0.0.1:9/v1", "--timeout", value)
    line = error_line(err)
    assert code in (1, 2) and out == "" and "--timeout" in line and "internal error" not in line
    assert "OverflowError" not in line and not (folder / "poise-runs").exists()


def test_a_sweep_timeout_past_any_clock_is_one_line_in_the_files_terms(folder, capsys):
    (folder / "s.toml").write_text('kind = "natural"\ncategories = ["blender"]\nmodels = ["openai:m"]\n'
                                   '[options]\ncatalog = "cat.jsonl"\ntimeout = 1e308\n')
    code, out, err = poise(capsys, "sweep", "s.toml", "--dry-run", "--base-url", "http://127.0.0.1:9/v1")
    line = error_line(err)
    assert code == 1 and out == "" and "options.timeout" in line


@pytest.mark.parametrize("field", ["timeout_s", "deadline_s"])
def test_retry_policy_refuses_a_wait_past_any_clock(field):
    from poise.models import MAX_TIMEOUT_S

    RetryPolicy(**{field: MAX_TIMEOUT_S})
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**{field: MAX_TIMEOUT_S * 2})
