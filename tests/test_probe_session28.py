"""A hostile probe of session 28: `poise reread` resumed against another reader server; a JSONL
catalog whose text holds U+2028 (split into two lines); a key echoed in a reply's finish_reason
(stored); a reply cut off mid-way (called an unreachable server); a folder where a catalog names
a file ('no such file'); `--store ""` (the working folder became the store); `poise transfer` of
a re-read attack or one whose attack.json is gone ('not a finished attack run'); and `poise
reread` of a damaged call row (an internal error). Each test failed before its fix; the model is
never loaded (wire fakes on loopback)."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
from pathlib import Path

import pytest

from .cliutil import blender_folder, error_line, natural_run, poise, rank_all
from .wirefake import WireFake, completion, context_titles

Capture = pytest.CaptureFixture[str]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return blender_folder(tmp_path, monkeypatch)


def reader_reply(ranking: list[int]) -> object:
    return lambda request: json.dumps({"ranking": ranking, "unclear": False})


# -- 1. reread resumed against another reader server ---------------------------------------------------------
def test_a_reread_stopped_at_one_reader_server_is_not_resumed_at_another(folder: Path, capsys: Capture) -> None:
    """The re-reading's configuration named the reader model by its spec alone: a re-reading
    interrupted while `openai:reader` at one server read the answers was resumed with another
    server's readings mixed in (the first server's were kept)."""
    store = folder / "store"
    source = natural_run(capsys, store)
    args = ("reread", source, "--reader", "openai:reader", "--store", str(store), "--json")
    with WireFake([], responder=reader_reply([1, 2, 3])) as first:
        code, out, err = poise(capsys, *args, "--base-url", first.url)
    assert code == 0, err
    stopped = json.loads(out)["run_id"]
    with sqlite3.connect(store / "poise.sqlite") as conn:  # as Ctrl-C leaves it
        conn.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (stopped,))
    with WireFake([], responder=reader_reply([3, 2, 1])) as second:
        code, out, err = poise(capsys, *args, "--base-url", second.url)
    assert code == 0, err
    again = json.loads(out)
    assert again["run_id"] != stopped and again["resumed"] == 0 and "resuming" not in err
    assert len(second.requests) == 3  # every answer read by the second server
    with WireFake([], responder=reader_reply([1, 2, 3]), port=int(first.url.split(":")[2].split("/")[0])) as same:
        code, out, err = poise(capsys, *args, "--base-url", same.url)  # the first server again: resumed
    assert code == 0, err
    assert json.loads(out)["run_id"] == stopped and json.loads(out)["resumed"] == 3 and not same.requests
    code, _, err = poise(capsys, "report", again["run_id"], "--store", str(store), "-o", "r.html")
    assert code == 0, err


# -- 2. a JSONL catalog whose text holds a Unicode line separator -------------------------------------------
@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_a_jsonl_document_with_a_unicode_line_separator_loads_whole(tmp_path: Path, separator: str) -> None:
    """JSON lets U+2028, U+2029 and U+0085 stand unescaped in a string (json.dumps(...,
    ensure_ascii=False) writes them so; web pages hold them), but the loader split lines with
    str.splitlines, which ends a line there too: the catalog was refused ('not valid JSON
    (Unterminated string ...)') and the line numbers of later errors were off."""
    from poise import PoiseError
    from poise.catalog import load_catalog

    rows = [{"category": "blender", "brand": "Oster", "model": "Pro", "document": f"Fast.{separator}Price: $99."},
            {"category": "blender", "brand": "Ninja", "model": "Foodi", "document": "Crushes ice."}]
    path = tmp_path / "cat.jsonl"
    path.write_text("\r\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\r\n", encoding="utf-8")
    products = load_catalog(path).categories["blender"].products
    kept = "" if separator == "\x85" else separator  # a document drops C1 controls, as it always did
    assert [p.document.text for p in products] == [f"Fast.{kept}Price: $99.", "Crushes ice."]
    path.write_text(path.read_text(encoding="utf-8") + '{"category": "blender"}\n', encoding="utf-8")
    with pytest.raises(PoiseError) as caught:
        load_catalog(path)
    assert f"{path}:3: field 'brand'" in caught.value.one_line()


# -- 3. a key echoed in finish_reason ---------------------------------------------------------------------
KEY = "sk-probe28-0123456789abcdefghij"


def echo_key_in_finish_reason(body: dict, headers: dict) -> tuple[int, dict, float]:
    """A readable answer whose finish_reason quotes the request's key, as a proxy might."""
    key = headers.get("authorization", "").removeprefix("Bearer ")
    reply = completion("\n".join(f"{i}. {t}" for i, t in enumerate(context_titles(body), 1)))
    reply["choices"][0]["finish_reason"] = f"stop ({key})"
    return (200, reply, 0)


def test_a_key_echoed_in_the_finish_reason_is_stored_nowhere(folder: Path, capsys: Capture,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer's text and model name were cleared of the key, but its finish_reason was kept as
    the server sent it: the key was written into the store's calls and the request cache."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with WireFake([echo_key_in_finish_reason] * 5) as fake:
        code, out, err = poise(capsys, "recommend", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake",
                               "--base-url", fake.url, "--json")
        assert fake.headers and fake.headers[0]["authorization"] == f"Bearer {KEY}"  # it was sent
    assert code == 0, err
    written = [p for p in folder.rglob("*") if p.is_file()]
    assert [p.name for p in written if KEY.encode() in p.read_bytes()] == []
    with sqlite3.connect(folder / "poise-runs" / "poise.sqlite") as conn:
        assert conn.execute("SELECT finish_reason FROM calls").fetchall() == [("stop ([redacted])",)]
    assert KEY not in out + err


# -- 4. a reply cut off mid-way -----------------------------------------------------------------------------
class CutReplies:
    """A server on loopback that answers every request with the start of a 200 reply (its headers
    announce the whole body) and then closes the connection: a server that crashed mid-reply."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.requests = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        body = json.dumps(completion("1. Oster Pro 1200")).encode()
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, rest = data.partition(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests += 1
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(body), body[:40]))

    def close(self) -> None:
        self.sock.close()


def test_a_reply_cut_off_mid_way_is_not_called_an_unreachable_server(folder: Path, capsys: Capture) -> None:
    """A server that sent the start of a reply and closed the connection was reported as 'cannot
    reach the server ...; check that it is running': it was running, and had answered."""
    server = CutReplies()
    try:
        code, out, err = poise(capsys, "recommend", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake",
                               "--base-url", server.url, "--max-attempts", "2")
    finally:
        server.close()
    line = error_line(err)
    assert code == 1 and out == "" and server.requests == 2
    assert f"the server at {server.url} closed the connection before its reply was complete" in line, line
    assert "cannot reach" not in line and "received 40 bytes" in line


# -- 5. a folder where a catalog names a file -----------------------------------------------------------------
PAGE = ("<html><body><article><h1>Blender {0}</h1><p>The blender {0} has a 1200 watt motor and ten speeds. "
        "It crushes ice quickly and is easy to clean.</p></article></body></html>")


@pytest.mark.parametrize("kind", ["csv document_file", "html folder page"])
def test_a_folder_where_a_catalog_names_a_file_is_called_a_folder(tmp_path: Path, kind: str) -> None:
    """A CSV row whose document_file is a folder, and a folder named like a page in an HTML
    catalog's category folder, were refused as 'no such file': the file was there, as a folder."""
    from poise import PoiseError
    from poise.catalog import load_catalog

    if kind == "csv document_file":
        (tmp_path / "docs").mkdir()
        (tmp_path / "cat.csv").write_text("category,brand,model,document_file\nblender,Oster,Pro,docs\n"
                                          "blender,Ninja,Foodi,docs\n")
        path, hint = tmp_path / "cat.csv", "name a .txt or .html file"
    else:
        (tmp_path / "blender").mkdir()
        for name in ("a", "b"):
            (tmp_path / "blender" / f"{name}.html").write_text(PAGE.format(name))
        (tmp_path / "blender" / "index.csv").write_text("file,brand,model\na.html,Oster,Pro\nb.html,Ninja,Foodi\n")
        load_catalog(tmp_path)  # loads before the folder is there
        (tmp_path / "blender" / "c.html").mkdir()
        path, hint = tmp_path, "rename or move the folder"
    with pytest.raises(PoiseError) as caught:
        load_catalog(path)
    line = caught.value.one_line()
    assert "is a folder, not a file" in line and hint in line and "no such file" not in line, line


# -- 6. an empty --store ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ("runs",),
    ("report",),
    ("recommend", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake", "--base-url", "http://127.0.0.1:9/v1"),
    ("natural", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake", "--base-url", "http://127.0.0.1:9/v1"),
])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_store_folder_is_refused_not_taken_for_here(folder: Path, capsys: Capture, argv: tuple[str, ...],
                                                             value: str) -> None:
    """`--store ""` (an unset shell variable) read as '.': the working folder itself became the
    results store (poise.sqlite and cache.sqlite written beside the catalog, `poise runs` listing
    it), where the empty --catalog and --out are refused."""
    code, out, err = poise(capsys, *argv, "--store", value)
    line = error_line(err)
    assert code == 2 and out == "" and "--store" in line and "empty" in line, line
    assert sorted(p.name for p in folder.iterdir()) == ["cat.jsonl"]


# -- 7. transfer of a finished attack run that holds no attack.json ------------------------------------------
@pytest.mark.parametrize("case", ["reread", "file gone"])
def test_a_finished_attack_run_without_its_result_says_why_it_cannot_be_transferred(folder: Path, capsys: Capture,
                                                                                     case: str) -> None:
    """A re-reading of an attack run (`poise reread` writes a finished run of command attack and no
    attack.json) and a finished attack whose attack.json is gone were both refused as 'not a
    finished attack run; pass the id of a run of `poise attack`', which they are."""
    store = folder / "store"
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "attack", "-c", "blender", "--catalog", "cat.jsonl", "-p", "Ninja Foodi",
                               "-m", "openai:fake", "--base-url", fake.url, "--store", str(store), "--json",
                               "--budget", "2", "--final-orders", "1", "--selection-orders", "1", "--confirm", "0")
        assert code == 0, err
        attack = json.loads(out)["run_id"]
        if case == "reread":
            code, out, err = poise(capsys, "reread", attack, "--store", str(store), "--json")
            assert code == 0, err
            named = json.loads(out)["run_id"]
        else:
            (store / "runs" / attack / "attack.json").unlink()
            named = attack
        asked = len(fake.requests)
        code, out, err = poise(capsys, "transfer", named, "-m", "openai:other", "--base-url", fake.url,
                               "--store", str(store), "--final-orders", "1")
        assert len(fake.requests) == asked
    line = error_line(err)
    assert code == 1 and out == "" and "not a finished attack run" not in line, line
    if case == "reread":
        assert f"is a re-reading of attack run {attack}" in line and f"transfer run {attack} itself" in line
    else:
        assert "is a finished attack, but its attack.json is missing" in line
    with sqlite3.connect(store / "poise.sqlite") as conn:
        assert "transfer" not in {c for (c,) in conn.execute("SELECT command FROM runs")}


# -- 8. reread of a call row another tool damaged ---------------------------------------------------------------
@pytest.mark.parametrize(("column", "value"), [("context_order", "[1, 2"), ("ranking_json", "[0,"),
                                               ("messages_json", "{"), ("config_json", "[]")])
def test_a_damaged_call_row_is_one_line_and_leaves_no_reread_run(folder: Path, capsys: Capture, column: str,
                                                                  value: str) -> None:
    """`poise report` shows such a run, but `poise reread` ended in 'internal error: JSONDecodeError'
    (exit 70), after its new run had opened and copied the calls before the damaged one."""
    store = folder / "store"
    source = natural_run(capsys, store)
    with sqlite3.connect(store / "poise.sqlite") as conn:
        last = conn.execute("SELECT MAX(id) FROM calls").fetchone()[0]
        conn.execute(f"UPDATE calls SET {column} = ? WHERE id = ?", (value, last))
    code, out, err = poise(capsys, "reread", source, "--store", str(store))
    line = error_line(err)
    assert code == 1 and out == "", err
    assert f"call {last} of run {source} has a {column} that cannot be read" in line and "restore a copy" in line
    with sqlite3.connect(store / "poise.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
