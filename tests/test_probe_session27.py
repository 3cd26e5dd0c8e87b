"""A hostile probe of what recent work added to the CLI: ``poise attack --verify-stop N`` (with
each method, with --compete), ``poise defend --consensus-orders M``, their resumes when these
options change, how they show in ``poise report`` and under ``--json``; and of two known
defects: a ``--base-url`` with a query string (misreported as a missing model) and the blank
line ``--json`` put on stderr before an error's one line. Each test failed before its fix; the
model is never loaded (wire fakes on loopback)."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pytest

from .cliutil import blender_folder, error_line, poise, rank_all
from .test_attacks import numbered
from .wirefake import WireFake

Capture = pytest.CaptureFixture[str]
OPENAI = ("--catalog", "cat.jsonl", "-m", "openai:fake", "--max-attempts", "1")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return blender_folder(tmp_path, monkeypatch)


# -- 1. a base URL with a query string ------------------------------------------------------------------
@pytest.mark.parametrize(("query", "source"), [("?api-version=2024-06-01", "flag"), ("?key=sk-probe-3e1f9", "env"),
                                               ("?", "flag")])
def test_a_base_url_with_a_query_string_is_one_line_about_the_url(folder: Path, capsys: Capture,
                                                                  monkeypatch: pytest.MonkeyPatch, query: str,
                                                                  source: str) -> None:
    """The OpenAI client puts its path after the query (/v1/?x=1chat/completions): a real
    server answered 404 and the line blamed the model ("has no model 'fake'"). It is refused
    before any request, without echoing the query (it may hold a key)."""
    with WireFake([], responder=rank_all) as fake:
        if source == "env":
            monkeypatch.setenv("OPENAI_BASE_URL", fake.url + query)
        flag = ("--base-url", fake.url + query) if source == "flag" else ()
        code, out, err = poise(capsys, "recommend", "-c", "blender", *OPENAI, *flag)
    line = error_line(err)
    assert code == 1 and out == "" and not fake.requests
    assert "query string" in line and "--base-url" in line and "OPENAI_BASE_URL" in line and "no model" not in line
    assert "sk-probe" not in line and "api-version" not in line
    assert sorted(p.name for p in folder.iterdir()) == ["cat.jsonl"]


@pytest.mark.parametrize("path", ["/chat/completions", "/chat/completions/", "/completions"])
def test_a_base_url_that_is_the_endpoints_own_url_is_one_line_naming_the_root(folder: Path, capsys: Capture,
                                                                           path: str) -> None:
    """The endpoint's URL copied whole (.../v1/chat/completions): the client added the path again
    and a real server's 404 was blamed on the model. Refused before any request, naming the root."""
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "recommend", "-c", "blender", *OPENAI, "--base-url", fake.url + path)
    line = error_line(err)
    assert code == 1 and out == "" and not fake.requests
    assert f"--base-url (or set OPENAI_BASE_URL): {fake.url}." in line and "no model" not in line
    assert sorted(p.name for p in folder.iterdir()) == ["cat.jsonl"]


def test_a_404_names_the_base_url_beside_the_model(folder: Path, capsys: Capture) -> None:
    """A server without the API under that root (a --base-url without its /v1) answers 404 to
    every path: the line said only that it had no such model and to check the model's name."""
    from .wirefake import raw

    with WireFake([raw(404, '{"detail": "Not Found"}')]) as fake:
        code, out, err = poise(capsys, "recommend", "-c", "blender", *OPENAI, "--base-url", fake.url)
    line = error_line(err)
    assert code == 1 and out == "" and len(fake.requests) == 1
    assert "HTTP 404" in line and "--model" in line and "--base-url" in line and "ends in /v1" in line


# -- 2. --json: an error is exactly one line on stderr ------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ("attack", "-c", "blender", "--budget", "2", "--final-orders", "1", "--verify-stop", "2"),
    ("defend", "-c", "blender", "--defense", "sandwich", "--orders", "2", "--consensus-orders", "2"),
    ("natural", "-c", "blender", "-n", "2", "--bootstrap", "0"),
], ids=["attack", "defend", "natural"])
def test_an_error_under_json_is_one_line_with_no_blank_line_before_it(folder: Path, capsys: Capture,
                                                                      argv: tuple[str, ...]) -> None:
    """rich ends a progress bar on a file or pipe with an empty line, also a transient one that
    showed nothing (--json): stderr held a blank line, then the error."""
    with WireFake([], responder=rank_all) as fake:
        fake.break_after = 1
        code, out, err = poise(capsys, *argv, *OPENAI, "--base-url", fake.url, "--json")
    assert code == 1 and out == ""
    assert err.splitlines() == [error_line(err)], err


# -- 3. --consensus-orders in the HTML report ------------------------------------------------------------
def test_the_consensus_sentences_of_a_defend_report_are_apart(folder: Path, capsys: Capture) -> None:
    """The HTML template's two sentences on the consensus (its own orders, its top-1's stability)
    were joined by the template's trimmed line break: 'orders of its own.Its top-1 ...'."""
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "defend", "-c", "blender", *OPENAI, "--base-url", fake.url, "--json",
                               "--defense", "sandwich", "--orders", "2", "--consensus-orders", "2", "--budget", "2",
                               "--final-orders", "1", "--selection-orders", "1", "--confirm", "0")
    assert code == 0, err
    run = json.loads(out)["categories"][0]["run_id"]
    code, _, err = poise(capsys, "report", run, "--out", "r.html")
    assert code == 0, err
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", (folder / "r.html").read_text())).split())
    assert "Borda count over 2 orders of its own. Its top-1 is the same in" in text


# -- 4. --method hardlabel under --verify-stop -----------------------------------------------------------------
def twice_first(request: dict) -> str:
    """The Oster page first in the first two answers that carry a given injection, last after;
    without an injection, last."""
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    found = re.search(r"^\[\d\] Oster Pro 1200\n(.*?)The Oster Pro 1200 has", user, re.S | re.M)
    injection = found.group(1).strip() if found else ""
    asked = SEEN[injection] = SEEN.get(injection, 0) + 1
    rest = ["Blendtec Designer 650 S", "Ninja Foodi"]
    return numbered(["Oster Pro 1200", *rest] if injection and asked <= 2 else [*rest, "Oster Pro 1200"])


SEEN: dict[str, int] = {}


def test_hardlabel_counts_every_answer_verify_stop_asks(folder: Path, capsys: Capture) -> None:
    """A candidate at the stop score is re-asked by the evaluator (--verify-stop); hardlabel's
    sequential test counted those answers as one, labelled by the last: two first places and a
    miss were fed to the test as one hit and one miss, and it decided on them."""
    SEEN.clear()
    with WireFake([], responder=twice_first) as fake:
        code, out, err = poise(capsys, "attack", "-c", "blender", *OPENAI, "--base-url", fake.url, "--json",
                               "--method", "hardlabel", "-p", "Oster Pro 1200", "--verify-stop", "3",
                               "--budget", "12", "--final-orders", "1", "--confirm", "0")
    assert code == 0, err
    data = json.loads(out)
    candidates = {c["id"]: c for c in data["candidates"]}
    tests = data["method_report"]["tests"]
    assert tests and any(len(candidates[t["candidate"]]["scores"]) > 2 for t in tests)  # verification asked
    for t in tests:
        c = candidates[t["candidate"]]
        assert t["hits"] == sum(s == 3 for s in c["scores"]), (t, c["scores"])
        assert t["hits"] + t["misses"] == len(c["scores"]) + c["unparseable"], (t, c["scores"])
    assert data["method_report"]["queries_to_first_hit"] == 1


# -- 5. bench_defend.py --clean-only resumed against another server ---------------------------------------------
def test_bench_defend_never_resumes_a_run_made_against_another_server(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """bench_defend.py keyed its runs without the server (nor the pages): a clean-only run that
    failed against one --base-url was adopted by the same command against another, and the two
    servers' answers were mixed in one run."""
    import importlib.util
    import sqlite3

    from poise._errors import ModelError

    from .wirefake import error

    spec = importlib.util.spec_from_file_location("bench_defend", Path(__file__).parents[1] / "benchmarks" /
                                                  "bench_defend.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    argv = ["--clean-only", "--model", "openai:fake", "--categories", "blender", "--defenses", "sandwich",
            "--orders", "2", "--store", str(tmp_path / "store")]
    with WireFake([error(401, "no")]) as refusing, pytest.raises(ModelError):
        bench.main([*argv, "--base-url", refusing.url])
    with WireFake([], responder=rank_all) as other:
        assert bench.main([*argv, "--base-url", other.url]) == 0
        assert len(other.requests) == 4  # the plain engine and sandwich, two orders each: all asked here
    with sqlite3.connect(tmp_path / "store" / "poise.sqlite") as conn:
        statuses = [s for (s,) in conn.execute("SELECT status FROM runs ORDER BY created_at")]
    assert statuses == ["failed", "finished"]
