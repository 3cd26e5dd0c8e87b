"""A reader model that cannot be reached fails the re-reading (one line, resumable), instead of
finishing a run whose every answer says 'ambiguous (the reader model failed ...)'. Wire fakes on
loopback; the bundled model is never loaded."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from .cliutil import blender_folder, poise
from .test_probe_session28 import natural_run, reader_reply
from .wirefake import WireFake

Capture = pytest.CaptureFixture[str]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return blender_folder(tmp_path, monkeypatch)


def test_a_reread_whose_reader_server_is_down_fails_in_one_line_and_resumes(folder: Path, capsys: Capture) -> None:
    store = folder / "store"
    source = natural_run(capsys, store)
    args = ("reread", source, "--reader", "openai:reader", "--store", str(store), "--timeout", "1")
    code, out, err = poise(capsys, *args, "--base-url", "http://127.0.0.1:1/v1", "--json")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    with sqlite3.connect(store / "poise.sqlite") as conn:
        status = dict(conn.execute("SELECT id, status FROM runs WHERE command = 'natural' AND id != ?", (source,)))
    assert list(status.values()) == ["failed"]  # not a finished run of unread answers
    with WireFake([], responder=reader_reply([1, 2, 3])) as live:
        code, out, err = poise(capsys, *args, "--base-url", live.url, "--json")
    assert code == 0, err
    assert len(live.requests) == 3 and json.loads(out)["run_id"]
