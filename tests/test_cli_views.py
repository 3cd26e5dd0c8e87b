"""What the CLI shows of untrusted text: markup inert in spinners and progress bars, JSON
and reports with nothing raw, `poise transfer` finding an attack's catalog from any folder,
and every table readable at 80 columns."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from .test_cli import poise
from .test_cli_reliability import ANSWER, BLENDERS, env_without_secrets, one_error_line, write_catalog
from .wirefake import WireFake

# -- 4. markup is inert in every terminal view -------------------------------------------------------
HOSTILE_NAMES = ["[/]", "[link=https://example.invalid/]x[/link]"]


def _hostile_catalog(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "hostile.jsonl", {name: BLENDERS for name in HOSTILE_NAMES})


@pytest.mark.parametrize("category", HOSTILE_NAMES)
def test_category_names_are_inert_in_spinners_and_progress_bars(tmp_path, category):
    catalog = _hostile_catalog(tmp_path)
    tty = env_without_secrets(FORCE_COLOR="1", COLUMNS="200", TERM="xterm-256color")
    with WireFake([], responder=lambda _: ANSWER) as fake:
        model = ("-m", "openai:fake", "--base-url", fake.url, "--catalog", str(catalog), "--store", str(tmp_path))
        runs = [
            subprocess.run([sys.executable, "-m", "poise", "recommend", "-c", category, *model],
                           capture_output=True, text=True, timeout=120, env=tty),
            subprocess.run([sys.executable, "-m", "poise", "attack", "-c", category, "--method", "none",
                            "--budget", "1", "--selection-orders", "1", "--final-orders", "1", *model],
                           capture_output=True, text=True, timeout=120, env=tty),
            subprocess.run([sys.executable, "-m", "poise", "natural", "-c", category, "-n", "2", "--bootstrap",
                            "10", *model], capture_output=True, text=True, timeout=120, env=tty),
        ]
    for result in runs:
        assert result.returncode == 0, result.stderr
        both = result.stdout + result.stderr
        assert "\x1b]8;" not in both  # no hyperlink
        assert "Traceback" not in both
    assert category in runs[1].stderr  # the progress bar shows the name literally


def test_render_helpers_never_read_markup():
    from rich.console import Console

    from poise.cli._render import progress_bar, safe

    for name in [*HOSTILE_NAMES, "[bold red]x[/]", "\x1b]8;;https://e.invalid/\x1b\\x\x1b]8;;\x1b\\"]:
        console = Console(record=True, force_terminal=True, width=200, file=io.StringIO())
        with progress_bar(console) as progress:
            task = progress.add_task(f"attack on {name}", total=2)
            progress.advance(task)
        with console.status(safe(f"asking about {name}")):
            pass
        console.print(safe(name))
        raw = console.file.getvalue()
        assert "\x1b]8;" not in raw
        text = console.export_text()
        assert (name if "\x1b" not in name else "x") in text


# -- 14. JSON, HTML, transfer, 80 columns ----------------------------------------------------------------
UNSAFE = "\u202e\u2066\u200b\ufeff\x85\x9b"


def test_json_output_escapes_bidi_and_control_characters(tmp_path):
    answer = f"1. Oster Pro 1200 {UNSAFE}gnp.exe\n2. Ninja Foodi Power Blender"
    with WireFake([], responder=lambda _: answer) as fake:
        result = poise("recommend", "-c", "blender", "-m", "openai:fake", "--base-url", fake.url, "--json",
                       store=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not any(ch in result.stdout for ch in UNSAFE)
    assert "\\u202e" in result.stdout
    assert json.loads(result.stdout)["response"] == answer  # the same data, escaped


def test_html_report_drops_control_bidi_and_zero_width_characters(tmp_path):
    from poise.report import gather_report, render_html, render_markdown
    from poise.store import CallRecord, Store

    evil = f"Oster{UNSAFE}\x00\x07 Pro"
    with Store(tmp_path) as db:
        run_id = db.start_run("recommend", {"category": f"blender{UNSAFE}", "note": evil})
        db.record_call(run_id, CallRecord(
            task_key="t", category=f"blender{UNSAFE}", query=f"which?{UNSAFE}", model_spec="openai:fake",
            context_order=[0, 1], messages=[], config={}, response_text=f"1. {evil}\n2. B b", parseable=True,
            ranking=[0, 1], products=[(evil, f"model{UNSAFE}"), ("B", "b")]))
        db.finish_run(run_id)
        data = gather_report(db, [run_id])
        html, md = render_html(data), render_markdown(data)
    for text in (html, md):
        assert not any(ch in text for ch in UNSAFE + "\x00\x07"), repr([c for c in UNSAFE if c in text])
        assert "OsterPro" in text.replace(" ", "") or "Oster Pro" in text


def _attack_run(tmp_path: Path, fake: WireFake, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "poise", "attack", "-c", "blender", "--method", "none", "--budget", "1",
         "--selection-orders", "1", "--final-orders", "1", "--catalog", "cat.jsonl", "-m", "openai:fake",
         "--base-url", fake.url, "--json"],
        capture_output=True, text=True, timeout=120, env=env_without_secrets(), cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["run_id"]


def test_transfer_finds_the_attack_catalog_from_any_folder(tmp_path):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir(), elsewhere.mkdir()
    write_catalog(work / "cat.jsonl", {"blender": BLENDERS})
    store = work / "poise-runs"
    with WireFake([], responder=lambda _: ANSWER) as fake:
        run_id = _attack_run(tmp_path, fake, work)
        with sqlite3.connect(store / "poise.sqlite") as conn:
            config = json.loads(conn.execute("SELECT config_json FROM runs").fetchone()[0])
        assert config["catalog"] == str((work / "cat.jsonl").resolve())  # recorded absolute
        transfer = ("transfer", run_id, "-m", "openai:fake", "--base-url", fake.url, "--final-orders", "1",
                    "--store", str(store), "--json")
        moved = subprocess.run([sys.executable, "-m", "poise", *transfer], capture_output=True, text=True,
                               timeout=120, env=env_without_secrets(), cwd=elsewhere)
        assert moved.returncode == 0, moved.stderr
        # an attack from before this version recorded the path as typed: found beside the store
        with sqlite3.connect(store / "poise.sqlite") as conn:
            conn.execute("UPDATE runs SET config_json = ? WHERE id = ?",
                         (json.dumps({**config, "catalog": "cat.jsonl"}), run_id))
        old = subprocess.run([sys.executable, "-m", "poise", *transfer], capture_output=True, text=True,
                             timeout=120, env=env_without_secrets(), cwd=elsewhere)
        assert old.returncode == 0, old.stderr
        (work / "cat.jsonl").rename(tmp_path / "gone.jsonl")
        lost = subprocess.run([sys.executable, "-m", "poise", *transfer], capture_output=True, text=True,
                              timeout=120, env=env_without_secrets(), cwd=elsewhere)
    line = one_error_line(lost.stderr)
    assert lost.returncode == 1 and "not found" in line and "cat.jsonl" in line
    assert "--catalog" not in line  # transfer has no such option


def _all_within(text: str, width: int = 80) -> None:
    for line in text.splitlines():
        assert len(line) <= width, line


def test_runs_table_reads_well_at_80_columns(tmp_path):
    with WireFake([(500, {"error": {"message": "boom"}}, 0)], responder=lambda _: ANSWER) as fake:
        args = ("recommend", "-c", "blender", "-m", "openai:fake", "--base-url", fake.url, "--max-attempts", "1")
        poise(*args, store=tmp_path)  # a failed call
        poise(*args, store=tmp_path)
        poise(*args, store=tmp_path)  # a cached one
    listing = poise("runs", store=tmp_path, env={"COLUMNS": "80"})
    assert listing.returncode == 0, listing.stderr
    _all_within(listing.stdout)
    body = listing.stdout
    for word in ("run", "command", "status", "started", "calls", "recommend", "finished", "failed", "cached"):
        assert re.search(rf"\b{word}\b", body), (word, body)
    rows = [line for line in body.splitlines() if line.startswith("2")]
    assert len(rows) == 3  # one line per run: nothing wrapped a character at a time
    wide = poise("runs", store=tmp_path, env={"COLUMNS": "140"})
    assert "tokens" in wide.stdout and "time" in wide.stdout


def test_every_table_reads_well_at_80_columns(tmp_path):
    catalog = write_catalog(tmp_path / "cat.jsonl", {"blender": BLENDERS})
    narrow = {"COLUMNS": "80"}
    with WireFake([], responder=lambda _: ANSWER) as fake:
        model = ("-m", "openai:fake", "--base-url", fake.url, "--catalog", str(catalog))
        outputs = {
            "list": poise("catalog", "list", store=tmp_path, env=narrow),
            "recommend": poise("recommend", "-c", "blender", *model, store=tmp_path, env=narrow),
            "natural": poise("natural", "-c", "blender", "-n", "3", "--bootstrap", "10", *model, store=tmp_path,
                             env=narrow),
            "attack": poise("attack", "-c", "blender", "--method", "none", "--budget", "1", "--selection-orders",
                            "1", "--final-orders", "1", *model, store=tmp_path, env=narrow),
        }
        attack_id = re.search(r"run (\S+)\s*$", outputs["attack"].stdout).group(1)
        outputs["transfer"] = poise("transfer", attack_id, "-m", "openai:fake", "--base-url", fake.url,
                                    "--final-orders", "1", store=tmp_path, env=narrow)
    headers = {"list": ["category", "products", "default query"], "recommend": ["rank", "product", "score"],
               "natural": ["category", "trials", "F prod", "F doc", "F pos"],
               "attack": ["mean score", "mean rank", "ranked first", "unparsed"],
               "transfer": ["category", "product", "source", "target"]}
    for name, result in outputs.items():
        assert result.returncode == 0, (name, result.stderr)
        _all_within(result.stdout)
        for header in headers[name]:
            assert header in result.stdout, (name, header, result.stdout)
