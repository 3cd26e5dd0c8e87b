"""A report says how far the heuristic reader can be trusted when the answers came from an
engine other than the bundled model, and stays quiet when they did not or a model reader
took part."""

from __future__ import annotations

from pathlib import Path

import pytest

from poise.report import gather_report, render_html, render_markdown
from poise.store import Store


def _report_notes(tmp_path: Path, config: dict[str, object]) -> list[str]:
    with Store(tmp_path / "store") as store:
        run_id = store.start_run("recommend", config)
        store.finish_run(run_id)
        report = gather_report(store)
        return report.runs[0].notes


def test_an_endpoint_read_by_the_heuristic_reader_alone_is_flagged(tmp_path: Path) -> None:
    notes = _report_notes(tmp_path, {"category": "blender", "model": "openai:gpt-4o-mini", "reader": "heuristic"})
    assert len(notes) == 1
    assert "heuristic reader alone" in notes[0] and "three in four" in notes[0]
    assert "--reader heuristic+openai:MODEL" in notes[0]


@pytest.mark.parametrize("config", [
    {"category": "blender", "model": "local", "reader": "heuristic"},
    {"category": "blender", "model": "llamacpp:/models/x.gguf", "reader": "heuristic"},
    {"category": "blender", "model": "openai:gpt-4o-mini", "reader": "heuristic+openai:gpt-4o"},
    {"category": "blender", "model": "openai:gpt-4o-mini", "reader": "openai:gpt-4o"},
])
def test_no_caveat_for_the_bundled_model_or_a_model_reader(tmp_path: Path, config: dict[str, object]) -> None:
    assert _report_notes(tmp_path, config) == []


def test_the_caveat_reaches_both_report_formats(tmp_path: Path) -> None:
    with Store(tmp_path / "store") as store:
        run_id = store.start_run("recommend", {"category": "blender", "model": "openai:m", "reader": "heuristic"})
        store.finish_run(run_id)
        report = gather_report(store)
    assert "heuristic reader alone" in render_markdown(report)
    assert "heuristic reader alone" in render_html(report)
    assert f"poise reread {run_id}" in render_markdown(report)
