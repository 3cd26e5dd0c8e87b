"""A hostile probe of session 29: `poise reread` of a call row whose recorded product list or
context order another tool damaged (an internal error). Each test failed before its fix; the
model is never loaded (wire fakes on loopback)."""

from __future__ import annotations

import gzip
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cliutil import ENV_DROP, blender_folder, error_line, natural_run, poise, rank_all
from .wirefake import WireFake, completion, token_logprobs

Capture = pytest.CaptureFixture[str]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return blender_folder(tmp_path, monkeypatch)


# -- 1. reread of a call whose product list or context order is damaged ---------------------------------------
@pytest.mark.parametrize(("column", "value", "why"), [
    ("meta_json", '{"products": [["Oster"]]}', "product list that cannot be read"),
    ("meta_json", '{"products": "Oster"}', "product list that cannot be read"),
    ("context_order", '[0, "x", 2]', "context_order that cannot be read (not an order of its 3 products)"),
    ("context_order", "[0, 99, 1]", "context_order that cannot be read (not an order of its 3 products)"),
    ("context_order", "[0, 1]", "context_order that cannot be read (not an order of its 3 products)"),
])
def test_a_damaged_product_list_or_context_order_is_one_line_and_leaves_no_reread_run(
        folder: Path, capsys: Capture, column: str, value: str, why: str) -> None:
    """Session 28 made a call row whose JSON columns are not JSON one line, but a product list
    that is JSON and not [brand, model] pairs ended `poise reread` in 'internal error: ValueError:
    not enough values to unpack', and a context order that is a JSON list but not an order of the
    products in 'internal error: TypeError' or 'ValueError: the context order ... is not an order'
    (exit 70)."""
    store = folder / "store"
    source = natural_run(capsys, store)
    with sqlite3.connect(store / "poise.sqlite") as conn:
        last = conn.execute("SELECT MAX(id) FROM calls").fetchone()[0]
        conn.execute(f"UPDATE calls SET {column} = ? WHERE id = ?", (value, last))
    code, out, err = poise(capsys, "reread", source, "--store", str(store))
    line = error_line(err)
    assert code == 1 and out == "", err
    assert f"call {last} of run {source} has a {why}" in line and "restore a copy" in line
    with sqlite3.connect(store / "poise.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


# -- 2. a CSV document_file that is not UTF-8 -------------------------------------------------------------------
def test_a_document_file_that_is_not_utf8_is_named_by_the_catalog_line_and_field(tmp_path: Path) -> None:
    """Every other fault of a CSV row's document_file (missing, a folder, a device, too large) names
    the catalog's file, line and field, as the README promises; one that is not UTF-8 named the
    document file alone ('/.../bin.txt: not UTF-8 text (byte 0)'), not the row that names it."""
    from poise import PoiseError
    from poise.catalog import load_catalog

    (tmp_path / "ok.txt").write_text("The Oster Pro blends.")
    (tmp_path / "latin.txt").write_bytes("Caf\u00e9 blender.".encode("latin-1"))
    path = tmp_path / "cat.csv"
    path.write_text("category,brand,model,document_file\nblender,Oster,Pro,ok.txt\nblender,Ninja,Foodi,latin.txt\n")
    with pytest.raises(PoiseError) as caught:
        load_catalog(path)
    line = caught.value.one_line()
    assert line.startswith(f"{path}:3: field 'document_file': ") and "latin.txt: not UTF-8 text (byte 3)" in line
    assert "save the file as UTF-8" in line


# -- 3. a report over a file of a run's folder ------------------------------------------------------------------
def test_a_report_is_never_written_over_a_file_of_a_runs_folder(folder: Path, capsys: Capture) -> None:
    """`--out STORE/poise.sqlite` was refused ('a file of the results store'), but `--out
    STORE/runs/RUN/natural.json` replaced the run's result with the report's HTML: `poise report`
    of that run then said 'natural.json cannot be read'. A new file beside them is still written."""
    store = folder / "store"
    source = natural_run(capsys, store)
    result = store / "runs" / source / "natural.json"
    before = result.read_bytes()
    code, out, err = poise(capsys, "report", source, "--store", str(store), "--out", str(result))
    assert code == 1 and out == "" and "is a file of the results store" in error_line(err)
    assert result.read_bytes() == before
    beside = store / "runs" / source / "report.md"
    code, out, err = poise(capsys, "report", source, "--store", str(store), "--out", str(beside))
    assert code == 0 and beside.read_text().startswith("# poise report"), err


# -- 4. a key echoed across several log-probability tokens ------------------------------------------------------
KEY = "sk-probe29-0123456789abcdefghij"


def test_a_key_echoed_across_log_probability_tokens_is_stored_nowhere(folder: Path, capsys: Capture,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A key echoed in an answer was redacted from its text, and a token that was the whole key
    was redacted too, but a key the server's tokenizer split ('sk', '-', 'probe', '2', '9' ...) was
    kept piece by piece: the request cache held the answer's tokens, which make up the key."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    def echo_key(body: dict, headers: dict) -> tuple[int, dict, float]:
        text = rank_all(body) + " " + headers.get("authorization", "").removeprefix("Bearer ")
        return 200, completion(text, logprobs=token_logprobs(text)), 0

    with WireFake([echo_key] * 200) as fake:
        code, _, err = poise(capsys, "attack", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake",
                             "--base-url", fake.url, "--method", "logprob", "--budget", "4", "--final-orders", "2",
                             "--store", str(folder / "store"))
        assert fake.headers and fake.headers[0]["authorization"] == f"Bearer {KEY}"  # it was sent
    assert code == 0, err
    assert [p.name for p in folder.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()] == []
    with sqlite3.connect(folder / "store" / "cache.sqlite") as conn:
        answers = [json.loads(r) for (r,) in conn.execute("SELECT response_json FROM responses")]
    spoken = ["".join(t["token"] for t in a["logprobs"]) for a in answers if a.get("logprobs")]
    assert spoken and all(KEY not in s and s.endswith(" [redacted]") for s in spoken)


# -- 5. a private report replaced -------------------------------------------------------------------------------
def test_a_report_written_over_a_private_one_stays_private(folder: Path, capsys: Capture) -> None:
    """A report holds the pages and answers of a run. Written over an existing report that its owner
    had made private (chmod 600), it came back readable by everyone (0644): the file was replaced
    by a new one with the default permissions."""
    store = folder / "store"
    source = natural_run(capsys, store)
    out_file = folder / "private.html"
    out_file.write_text("old")
    out_file.chmod(0o600)
    code, _, err = poise(capsys, "report", source, "--store", str(store), "--out", str(out_file))
    assert code == 0, err
    assert out_file.read_text().startswith("<!doctype html>") and out_file.stat().st_mode & 0o777 == 0o600


# -- 6. a token count past any integer SQLite holds -------------------------------------------------------------
def test_a_token_count_past_sqlites_integers_is_not_an_internal_error(folder: Path, capsys: Capture) -> None:
    """A server reporting usage.prompt_tokens = 10**20 (a broken proxy's figure) ended `poise
    recommend` in 'internal error: OverflowError: Python int too large to convert to SQLite
    INTEGER' (exit 70), its run failed: the count was taken as it came and the store could not
    write it. A count no call could spend is not counted, as a negative one is not."""
    def huge_usage(body: dict, headers: dict) -> tuple[int, dict, float]:
        reply = completion(rank_all(body))
        reply["usage"] = {"prompt_tokens": 10**20, "completion_tokens": 2**63, "total_tokens": 1}
        return 200, reply, 0

    with WireFake([huge_usage]) as fake:
        code, out, err = poise(capsys, "recommend", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake",
                               "--base-url", fake.url, "--json")
    assert code == 0, err
    assert json.loads(out)["parseable"] is True
    with sqlite3.connect(folder / "poise-runs" / "poise.sqlite") as conn:
        assert conn.execute("SELECT prompt_tokens, completion_tokens FROM calls").fetchall() == [(0, 0)]
        assert conn.execute("SELECT status FROM runs").fetchall() == [("finished",)]


# -- 7. a reply body that trickles, or never ends -------------------------------------------------------------
def body_server(send: str, status: bytes) -> Iterator[str]:
    """A loopback server that answers every request with ``status`` and a body that never ends:
    ``trickle`` sends one byte every 0.2 s (each within any read timeout), ``flood`` sends 1 MiB
    chunks as fast as it can. Yields its base URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                if send == "trickle":
                    conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 1000000000\r\n\r\n{")
                    while not stop.wait(0.2):
                        conn.sendall(b" ")
                else:
                    conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n")
                    chunk = b" " * 2**20
                    while not stop.is_set():
                        conn.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except OSError:  # the client gave up
                pass

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        stop.set()
        listener.close()


@pytest.mark.parametrize("status", [b"200 OK", b"500 Internal Server Error"])
@pytest.mark.parametrize(("send", "fragment"), [("trickle", "did not answer within 1 s per attempt"),
                                                ("flood", "sent a reply of more than 64 MiB")])
def test_a_reply_that_trickles_or_never_ends_gives_up(folder: Path, send: str, fragment: str, status: bytes) -> None:
    """`--timeout 1` promises 'a call gives up after 3 x this', but the timeout bounded each read of
    the reply, not the reply: a server that sent one byte of its body every 0.2 s held `poise
    recommend` for ever (the body of 1 GB it announced would have taken 6 years), and one that sent
    without end filled the memory; so did an error reply's body, which the SDK reads itself. Every
    body is now read within the attempt's time and 64 MiB."""
    server = body_server(send, status)
    url = next(server)
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "poise", "recommend", "-c", "blender", "--catalog", "cat.jsonl",
                               "-m", "openai:fake", "--base-url", url, "--timeout", "1", "--max-attempts", "1"],
                              capture_output=True, text=True, cwd=folder, env=env, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("poise recommend hung on a reply that never ends (more than 60 s)")
    finally:
        server.close()
    assert proc.returncode == 1 and fragment in error_line(proc.stderr), proc.stderr
    assert time.monotonic() - started < 30


# -- 8. a blank or hidden-character --query ------------------------------------------------------------------
@pytest.mark.parametrize(("query", "fragment"), [("", "--query is blank"), ("   ", "--query is blank"),
                                                 ("Which\x1b[2J one?", "--query contains an escape character"),
                                                 ("Which\u202e one?", "--query contains a bidi control")])
def test_a_blank_or_hidden_character_query_is_one_line(folder: Path, capsys: Capture, query: str,
                                                       fragment: str) -> None:
    """`--query ""` (an unset shell variable) silently asked the category's own query, and `--query
    "   "` asked the engine a blank question; a query with an escape sequence or a bidi override,
    which a catalog's query field refuses, was sent and stored. Each is one line now, before any
    store exists, as an empty --store, --base-url or --attacker is."""
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "recommend", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake",
                               "--base-url", fake.url, "--query", query)
        assert not fake.requests
    assert code == 1 and out == "" and fragment in error_line(err)
    assert not (folder / "poise-runs").exists()


# -- 9. an empty --template ------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [("recommend",), ("natural", "-n", "2"), ("attack",), ("defend",),
                                     ("transfer", "RUN")])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_template_path_is_called_empty(folder: Path, capsys: Capture, command: tuple[str, ...],
                                                value: str) -> None:
    """`--template ""` (an unset shell variable) was read as the working folder: '.: is a folder,
    not a template file', which sends the user looking at a folder they never named; an empty
    --catalog and --store are called empty."""
    argv = [*command, "--template", value, "--store", "store"]
    if command[0] != "transfer":
        argv += ["-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake", "--base-url", "http://127.0.0.1:9/v1"]
    code, out, err = poise(capsys, *argv)
    line = error_line(err)
    assert code == 2 and out == "" and "'--template': is empty" in line and "is a folder" not in line
    assert not (folder / "store").exists()


# -- 10. empty paths in a sweep --------------------------------------------------------------------------------
def test_empty_paths_of_a_sweep_are_called_empty(folder: Path, capsys: Capture) -> None:
    """`poise sweep ""` was 'sweep file . is a folder', `--report ""` 'cannot write the report to .:
    it is a folder', and `templates = [""]` in the file '/the/sweep/folder: is a folder, not a
    template file': an empty value read as a folder nobody named (an unset shell variable, a
    template left blank)."""
    head = 'kind = "natural"\ncategories = ["blender"]\nmodels = ["openai:fake"]\n'
    options = '[options]\ncatalog = "cat.jsonl"\ntrials = 2\nbootstrap = 0\n'
    sweep = folder / "sweep.toml"
    sweep.write_text(head + options)
    for argv, fragment in ((("sweep", ""), "Invalid value for 'file': is empty"),
                           (("sweep", " "), "Invalid value for 'file': is empty"),
                           (("sweep", str(sweep), "--dry-run", "--report", ""), "'--report': is empty")):
        code, out, err = poise(capsys, *argv)
        assert code == 2 and out == "" and fragment in error_line(err) and "folder" not in error_line(err)
    for blank in ("", "  "):
        sweep.write_text(head + f'templates = ["default", "{blank}"]\n' + options)
        code, out, err = poise(capsys, "sweep", str(sweep), "--dry-run")
        line = error_line(err)
        assert code == 1 and out == "" and "templates: an empty value" in line and "folder" not in line
    assert not (folder / "poise-runs").exists()


# -- 11. a compressed reply that inflates past the bound ----------------------------------------------------------
BOMB = gzip.compress(b'{"x": "' + b" " * (80 * 2**20) + b'"}', compresslevel=9)  # 80 MiB in about 80 KB


@pytest.mark.parametrize("status", [200, 500])
def test_a_compressed_reply_is_read_within_the_bound_inflated(folder: Path, capsys: Capture, status: int) -> None:
    """The 64 MiB bound counted the bytes on the wire: a gzip body of 80 KB that inflates to 80 MiB
    (or one of 64 MiB that inflates to 64 GiB) was inflated whole by the client, a 200's and an
    error's alike. A gzip reply of ordinary size is still read, its error message too."""
    gzipped = {"Content-Encoding": "gzip", "Content-Type": "application/json"}

    def good(body: dict, headers: dict) -> tuple[int, bytes, float, dict]:
        return 200, gzip.compress(json.dumps(completion(rank_all(body))).encode()), 0, gzipped

    def bad(body: dict, headers: dict) -> tuple[int, bytes, float, dict]:
        return 400, gzip.compress(json.dumps({"error": {"message": "no such model fake"}}).encode()), 0, gzipped

    with WireFake([good, bad, (status, BOMB, 0, gzipped)]) as fake:
        argv = ("recommend", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake", "--base-url", fake.url,
                "--max-attempts", "1", "--json")
        code, out, err = poise(capsys, *argv)
        assert code == 0 and json.loads(out)["parseable"] is True, err
        code, out, err = poise(capsys, *argv, "--seed", "1")
        assert code == 1 and "no such model fake" in error_line(err)
        code, out, err = poise(capsys, *argv, "--seed", "2")
    assert code == 1 and out == "" and "sent a reply of more than 64 MiB" in error_line(err)


@pytest.mark.parametrize("wbits", [15, -15])
def test_a_deflate_reply_with_or_without_its_zlib_header_is_read(folder: Path, capsys: Capture, wbits: int) -> None:
    """Inflated by poise now (above), a deflate body is read as the HTTP client read it: with its
    zlib header, or raw, as some servers send it."""
    def deflated(body: dict, headers: dict) -> tuple[int, bytes, float, dict]:
        packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
        data = json.dumps(completion(rank_all(body))).encode()
        return 200, packer.compress(data) + packer.flush(), 0, {"Content-Encoding": "deflate"}

    with WireFake([deflated]) as fake:
        code, out, err = poise(capsys, "recommend", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake",
                               "--base-url", fake.url, "--json")
    assert code == 0 and json.loads(out)["parseable"] is True, err
