"""The command line as a user meets it: one line per error, no traceback, escaped output,
a store left consistent by failures and by kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from .conftest import free_port
from .wirefake import WireFake, completion

ENV_DROP = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "POISE_HOME", "POISE_DEBUG")


def poise(*args: str, store: Path, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "poise", *args, "--store", str(store)]
        if args and args[0] in ("recommend", "runs", "demo", "natural", "attack", "transfer")
        else [sys.executable, "-m", "poise", *args],
        capture_output=True, text=True, timeout=timeout, env=full_env,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("poise: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def runs_in(store: Path) -> list[tuple]:
    db = store / "poise.sqlite"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, status, error FROM runs").fetchall()


def test_unknown_category(tmp_path):
    result = poise("recommend", "--category", "blendr", store=tmp_path)
    assert_one_line_error(result, "unknown category 'blendr'", "did you mean 'blender'")
    assert runs_in(tmp_path) == []


def test_unknown_model_spec(tmp_path):
    result = poise("recommend", "--category", "blender", "--model", "gpt9", store=tmp_path)
    assert_one_line_error(result, "unknown model spec 'gpt9'", "llamacpp:PATH")
    assert runs_in(tmp_path) == []


def test_missing_model_file(tmp_path):
    result = poise("recommend", "-c", "blender", "-m", f"llamacpp:{tmp_path}/none.gguf", store=tmp_path)
    assert_one_line_error(result, "model file not found", "none.gguf")


def test_malformed_jsonl(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"category": "x", "brand": "A", "model": "B", "document": "d"}\n{"category": \n')
    result = poise("recommend", "-c", "x", "--catalog", str(bad), store=tmp_path)
    assert_one_line_error(result, f"{bad}:2", "not valid JSON")
    result = poise("catalog", "validate", str(bad), store=tmp_path)
    assert_one_line_error(result, f"{bad}:2")


def test_malformed_csv(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("category,brand,model,document\nx,A,B,doc\nx,,C,doc\n")
    result = poise("catalog", "validate", str(bad), store=tmp_path)
    assert_one_line_error(result, f"{bad}:3", "'brand'")


def test_bad_template(tmp_path):
    tmpl = tmp_path / "t.toml"
    tmpl.write_text('system = "hi {nope}"\nuser = "{documents}"\n')
    result = poise("recommend", "-c", "blender", "--template", str(tmpl), store=tmp_path)
    assert_one_line_error(result, "t.toml", "{nope}")


def test_unknown_option_and_missing_option(tmp_path):
    assert_one_line_error(poise("recommend", "--bogus", store=tmp_path), "No such option: --bogus", "--help")
    assert_one_line_error(poise("recommend", store=tmp_path), "Missing option", "--category")


def test_unreachable_server_fails_cleanly_and_records_the_failure(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = poise("recommend", "-c", "blender", "-m", "openai:x", "--base-url", url, "--max-attempts", "2",
                   store=tmp_path)
    assert_one_line_error(result, "cannot reach the server at", url)
    (_run_id, status, error), = runs_in(tmp_path)
    assert status == "failed" and "cannot reach" in error
    with sqlite3.connect(tmp_path / "poise.sqlite") as conn:
        (call_error, response), = conn.execute("SELECT error, response_text FROM calls").fetchall()
    assert "cannot reach" in call_error and response is None


def test_empty_response_from_the_model(tmp_path):
    with WireFake([(200, completion(""), 0)]) as fake:
        result = poise("recommend", "-c", "blender", "-m", "openai:fake", "--base-url", fake.url, store=tmp_path)
    assert_one_line_error(result, "returned an empty response")


def test_untrusted_text_is_inert_in_the_terminal(tmp_path):
    hostile = ("1. [bold red]Oster Pro 1200[/bold red] \x1b[2J\x1b]0;pwned\x07 is best\n"
               "2. Blendtec Designer 650 S [link=http://evil.test]click[/link]")
    with WireFake([(200, completion(hostile), 0)]) as fake:
        result = poise("recommend", "-c", "blender", "-m", "openai:fake", "--base-url", fake.url, store=tmp_path,
                       env={"COLUMNS": "200", "FORCE_COLOR": "1"})
    assert result.returncode == 0, result.stderr
    assert "[bold red]Oster Pro 1200[/bold red]" in result.stdout  # markup shown, not applied
    assert "[link=http://evil.test]" in result.stdout
    assert "\x1b[2J" not in result.stdout and "\x1b]0;" not in result.stdout and "\x07" not in result.stdout


def test_json_output_and_cache_and_no_secret_at_rest(tmp_path):
    secret = "sk-SECRET-must-not-be-stored"
    answer = "1. **Oster Pro 1200** - best value\n2. **Ninja Foodi Power Blender & Processor System** - versatile"
    with WireFake([(200, completion(answer), 0)]) as fake:
        args = ("recommend", "-c", "blender", "-m", "openai:fake", "--base-url", fake.url, "--json", "--seed", "3")
        first = poise(*args, store=tmp_path, env={"OPENAI_API_KEY": secret})
        second = poise(*args, store=tmp_path, env={"OPENAI_API_KEY": secret})
        assert len(fake.requests) == 1  # the rerun was served from the cache
    assert first.returncode == 0, first.stderr
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a["response"] == answer and b["usage"]["cached"] is True and a["usage"]["cached"] is False
    assert [r["brand"] for r in a["ranking"]][:2] == ["Oster", "Ninja"]
    assert [r["score"] for r in a["ranking"]] == [8, 7, 0, 0, 0, 0, 0, 0]
    assert len(a["ranking"]) == 8 and a["ranking"] == b["ranking"]
    assert (sorted((c["brand"], c["model"]) for c in a["context_order"])
            == sorted((r["brand"], r["model"]) for r in a["ranking"]))
    assert len(a["context_order"]) == 8
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    listing = json.loads(poise("runs", "--json", store=tmp_path).stdout)
    assert [r["status"] for r in listing] == ["finished", "finished"]
    assert listing[0]["cached_calls"] == 1 and listing[0]["prompt_tokens"] == 0


def test_kill_9_mid_call_leaves_the_store_consistent(tmp_path):
    with WireFake([(200, completion("1. Oster Pro 1200"), 30)]) as fake:
        proc = subprocess.Popen(
            [sys.executable, "-m", "poise", "recommend", "-c", "blender", "-m", "openai:fake",
             "--base-url", fake.url, "--store", str(tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if k not in ENV_DROP},
        )
        deadline = time.monotonic() + 60
        while not fake.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake.requests, "the CLI never called the server"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    listing = json.loads(poise("runs", "--json", store=tmp_path).stdout)
    assert [r["status"] for r in listing] == ["interrupted"]
    assert listing[0]["calls"] == 0  # nothing half-written
    with sqlite3.connect(tmp_path / "poise.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_listing_runs_where_there_is_no_store_creates_none(tmp_path):
    missing = tmp_path / "nothing-here"
    listed = poise("runs", "--json", store=missing)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    shown = poise("runs", store=missing)
    assert shown.returncode == 0 and "No results store" in shown.stdout
    assert not missing.exists()


def test_catalog_commands(tmp_path):
    listed = poise("catalog", "list", "--json", store=tmp_path)
    assert listed.returncode == 0
    data = json.loads(listed.stdout)
    assert len(data) >= 10 and data["blender"]["products"] == 8
    shown = json.loads(poise("catalog", "show", "blender", "--json", store=tmp_path).stdout)
    assert len(shown["products"]) == 8
    ok = poise("catalog", "validate", "sample", store=tmp_path)
    assert ok.returncode == 0 and "10 categories, 80 products" in ok.stdout
