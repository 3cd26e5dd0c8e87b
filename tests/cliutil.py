"""The CLI run in this process, as the CLI tests use it: ``poise(capsys, *argv)``, the one
error line a failure must print, wire-fake answers that rank every product, a working folder
with a catalog of three blenders, and the count of answered calls read from a results store
(from outside, while a run may still be writing it)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from poise.cli import main

from .wirefake import WireFake, context_titles

#: settings a test's own environment could leak into a run
ENV_DROP = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "POISE_HOME", "POISE_DEBUG", "RAY_ADDRESS")
BLENDERS = [("Oster", "Pro 1200", "The Oster Pro 1200 has 7 speeds. Price: $99."),
            ("Blendtec", "Designer 650 S", "The Blendtec Designer 650 S has a motor."),
            ("Ninja", "Foodi", "The Ninja Foodi crushes ice. Price: $179.")]


def poise(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``poise ARGV`` in this process: (exit code, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(err: str) -> str:
    """The one ``poise: error:`` line of a failure (and no traceback)."""
    lines = [line for line in err.splitlines() if line.startswith("poise: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def rank_all(request: dict) -> str:
    """An answer that ranks the request's products in context order (always readable)."""
    return "\n".join(f"{i}. {title}" for i, title in enumerate(context_titles(request), 1))


def blender_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as the working folder, with a catalog of three blenders (cat.jsonl) and no
    poise settings in the environment."""
    for key in ENV_DROP:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    lines = [json.dumps({"type": "category", "category": "blender", "query": "Which blender? Rank them."})]
    lines += [json.dumps({"category": "blender", "brand": b, "model": m, "document": d}) for b, m, d in BLENDERS]
    (tmp_path / "cat.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


def natural_run(capsys: pytest.CaptureFixture[str], store: Path, trials: int = 3) -> str:
    """A finished natural run of ``trials`` trials of the blender folder's catalog in ``store``, asked of a
    wire fake that ranks every product: its id."""
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "natural", "-c", "blender", "--catalog", "cat.jsonl", "-n", str(trials),
                               "--bootstrap", "0", "-m", "openai:fake", "--base-url", fake.url,
                               "--store", str(store), "--json")
    assert code == 0, err
    return str(json.loads(out)["run_id"])


def answered(store: Path) -> int:
    """Calls answered so far in a results store (0 before its tables exist)."""
    if not (store / "poise.sqlite").exists():
        return 0
    with sqlite3.connect(store / "poise.sqlite", timeout=30) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM calls WHERE error IS NULL").fetchone()[0])
        except sqlite3.OperationalError:  # the tables are not created yet
            return 0
