"""A reader model that cannot be reached fails the re-reading (one line, resumable), instead of
finishing a run whose every answer says 'ambiguous (the reader model failed ...)'. Wire fakes on
loopback; the bundled model is never loaded."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from .cliutil import blender_folder, natural_run, poise
from .test_probe_session28 import reader_reply
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


def test_a_model_readers_server_is_one_of_a_runs_inputs(folder: Path) -> None:
    """natural, attack, defend, defend-clean, recommend and transfer recorded their reader by its spec alone:
    a run resumed with `--reader openai:x` at another reader server would have mixed two servers' readings.
    The reader models' identities are inputs now (checked here for recommend, attack, natural and defend); the
    heuristic reader adds none, so stored runs still resume."""
    from poise.catalog import load_catalog
    from poise.engine import default_template
    from poise.experiments import attack_setup, defend_setup, natural_setup, recommend_setup
    from poise.models import get_model

    cat = load_catalog("cat.jsonl").category("blender")

    def opener(reader_url: str):  # the engine at one server, an openai: reader at another
        def open_model(spec: str, *, concurrency: int | None = None):
            url = reader_url if spec == "openai:reader" else "http://127.0.0.1:9/v1"
            return get_model(spec, base_url=url, api_key="k")
        return open_model

    builds = (lambda **kw: recommend_setup(cat, **kw), lambda **kw: attack_setup(cat, **kw),
              lambda **kw: natural_setup([cat], **kw), lambda **kw: defend_setup([cat], defenses=["sandwich"], **kw))
    def inputs(build, reader: str, url: str) -> str:
        setup = build(model="openai:fake", open_model=opener(url), template=default_template(), reader=reader)
        return str(setup.config["inputs"])

    for build in builds:
        a = inputs(build, "openai:reader", "http://127.0.0.1:7/v1")
        assert a != inputs(build, "openai:reader", "http://127.0.0.1:8/v1")
        assert a == inputs(build, "openai:reader", "http://127.0.0.1:7/v1")
        assert inputs(build, "heuristic", "http://127.0.0.1:7/v1") == inputs(build, "heuristic", "http://127.0.0.1:8/v1")
