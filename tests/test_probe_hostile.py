"""Hostile probing of the CLI, the defects it found: empty model specs that fell back to a
default, numbers in non-ASCII digits, a store row nested past the recursion limit, invisible
Unicode tag characters shown raw on a terminal, and a pipe closed early. Each test failed
before its fix; no model is loaded (wire fakes on loopback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .cliutil import blender_folder, error_line, poise, rank_all
from .wirefake import WireFake

Capture = pytest.CaptureFixture[str]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    blender_folder(tmp_path, monkeypatch)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-probe-hostile-0123456789")
    return tmp_path


# -- 1. an empty model spec is refused, never a default ----------------------------------------------
@pytest.mark.parametrize(("argv", "fragment"), [
    (["defend", "--attack", "tap", "--attacker", ""], "--attacker is empty"),
    (["defend", "--attack", "tap", "--attacker", "  "], "--attacker is empty"),
    (["defend", "--reader", ""], "--reader is empty"),
    (["attack", "--reader", " "], "--reader is empty"),
    (["recommend", "--reader", ""], "--reader is empty"),
    (["recommend", "--defense", "detector:model="], "defense 'detector': model= is empty"),
    (["defend", "--defense", "known-answer:model= "], "defense 'known-answer': model= is empty"),
])
def test_an_empty_model_spec_is_one_line_not_a_default(folder: Path, capsys: Capture, argv: list[str],
                                                       fragment: str) -> None:
    """``--attacker ''`` in defend ran the attack with the --model, ``--reader ''`` read with the
    heuristic and ``detector:model=`` asked the engine's own model, all silently."""
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, *argv, "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake",
                               "--base-url", fake.url, "--store", str(folder / "store"))
        assert fake.requests == []
    assert code == 1 and out == ""
    assert fragment in error_line(err)
    assert not (folder / "store").exists()


def test_an_attacker_for_a_method_that_asks_none_is_refused_in_defend_too(folder: Path, capsys: Capture) -> None:
    """``poise defend --attacker X`` with the default attack (strategies, which asks no attacker)
    ignored X; ``poise attack`` refused it. The hint names no option of one command only."""
    code, out, err = poise(capsys, "defend", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:fake",
                           "--base-url", "http://127.0.0.1:9", "--attacker", "openai:other",
                           "--store", str(folder / "store"))
    assert code == 1 and out == ""
    line = error_line(err)
    assert "--attacker is used only by methods that ask an attacker model" in line
    assert "--method" not in line and "tap" in line
