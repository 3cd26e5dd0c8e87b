"""A run carried between stores (``Store.export_run`` / ``Store.import_run``): what a sweep's
Ray workers get from the driver and send back to it."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from poise import StoreError
from poise.store import CallRecord, RunBundle, Store, StoredAttack, StoredNatural

PRODUCTS = (("Blendtec", "Designer 650 S"), ("Ninja", "Foodi"), ("Oster", "Pro 1200"))


def call(task_key: str, **changes: object) -> CallRecord:
    base = CallRecord(task_key=task_key, category="blender", query="Which blender?", model_spec="fake:scripted",
                      context_order=[2, 0, 1], messages=[{"role": "user", "content": "Which <b>blender</b>?"}],
                      config={"temperature": 0.0}, model_name="scripted", seed=0, response_text="1. Ninja Foodi",
                      prompt_tokens=11, completion_tokens=4, latency_s=0.25, cache_key="k", parseable=True,
                      ranking=[1, 2], products=PRODUCTS, meta={"trial": 1})
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def content(store: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[tuple[object, ...]]]:
    """A store's rows without what differs between two writes of the same thing (ids, times, owner)."""
    with sqlite3.connect(store / "poise.sqlite") as conn:
        runs = conn.execute("SELECT id, command, status, config_hash, error FROM runs ORDER BY id").fetchall()
        calls = conn.execute(
            "SELECT run_id, task_key, category, query, model_spec, model_name, template, seed, context_order,"
            " messages_json, config_json, response_text, finish_reason, prompt_tokens, completion_tokens,"
            " latency_s, cached, cache_key, parseable, unparseable_reason, ranking_json, error, meta_json"
            " FROM calls ORDER BY id").fetchall()
        scores = conn.execute("SELECT c.task_key, s.product_index, s.brand, s.model, s.position, s.rank, s.score"
                              " FROM scores s JOIN calls c ON c.id = s.call_id ORDER BY s.call_id, s.product_index"
                              ).fetchall()
    return runs, calls, scores


@pytest.fixture
def source(tmp_path: Path) -> tuple[Store, str]:
    db = Store(tmp_path / "a")
    run_id = db.start_run("attack", {"category": "blender", "budget": 2})
    db.record_call(run_id, call("q1"))
    db.record_call(run_id, call("q2", error="cannot reach the model", response_text=None, parseable=None,
                                ranking=None))
    db.record_call(run_id, call("q2"))
    db.record_call(run_id, call("q3", parseable=False, unparseable_reason="no ranking", ranking=None,
                                response_text="I like them all", meta=None))
    db.save_result(run_id, StoredAttack(run_id=run_id, category="blender", score_before=1.0, score_after=2.5))
    (db.run_dir(run_id) / "plot.png").write_bytes(b"\x89PNG not really")
    db.finish_run(run_id, "interrupted", "KeyboardInterrupt")
    other = db.start_run("natural", {"category": "kettle"})  # another run: never exported with this one
    db.record_call(other, call("k1", category="kettle"))
    return db, run_id


def test_a_run_exported_and_imported_into_an_empty_store_is_the_same_run(tmp_path, source):
    db, run_id = source
    bundle = db.export_run(run_id)
    assert isinstance(bundle, RunBundle) and bundle.status == "interrupted" and len(bundle.calls) == 4
    assert set(bundle.files) == {"attack.json", "plot.png"}
    with Store(tmp_path / "b") as other:
        other.import_run(bundle)
        assert other.done_tasks(run_id) == {"q1", "q2", "q3"}
        assert other.load_result(run_id, StoredAttack).score_after == 2.5  # type: ignore[union-attr]
        record = other.run(run_id)
        assert (record.status, record.error, record.calls, record.failed_calls) == (
            "interrupted", "KeyboardInterrupt", 4, 1)
    assert (tmp_path / "b" / "runs" / run_id / "plot.png").read_bytes() == b"\x89PNG not really"
    runs, calls, scores = content(tmp_path / "a")
    assert content(tmp_path / "b") == ([r for r in runs if r[0] == run_id], calls[:4], scores[:-3])
    db.close()


def test_importing_into_the_store_that_holds_the_run_adds_calls_and_updates_its_status(tmp_path, source):
    """What the driver does with a worker's run: the seeded rows are not added twice, the new
    calls are, and the run takes the worker's status and files."""
    db, run_id = source
    with Store(tmp_path / "worker") as worker:
        worker.import_run(db.export_run(run_id))
        worker.resume_run(run_id)
        worker.record_call(run_id, call("q4"))
        worker.save_result(run_id, StoredAttack(run_id=run_id, category="blender", score_before=1.0, score_after=3))
        worker.finish_run(run_id)
        back = worker.export_run(run_id, calls=False)
        new = [c for c in worker.export_run(run_id).calls if c.task_key == "q4"]
    db.import_run(dataclasses.replace(back, calls=tuple(new)))
    assert db.run(run_id).status == "finished" and db.run(run_id).calls == 5
    assert db.done_tasks(run_id) == {"q1", "q2", "q3", "q4"}
    assert db.load_result(run_id, StoredAttack).score_after == 3.0  # type: ignore[union-attr]
    db.close()


def test_natural_json_names_its_plots_in_the_new_folder(tmp_path):
    with Store(tmp_path / "a") as a, Store(tmp_path / "b") as b:
        run_id = a.start_run("natural", {"trials": 2})
        plot = a.run_dir(run_id) / "pooled.png"
        plot.write_bytes(b"png")
        a.save_result(run_id, StoredNatural(run_id=run_id, plots=[str(plot)]))
        b.import_run(a.export_run(run_id))
        stored = b.load_result(run_id, StoredNatural)
        assert stored is not None and stored.plots == [str(b.run_dir(run_id) / "pooled.png")]


def test_a_bundle_for_another_run_of_the_same_id_is_refused_whole(tmp_path, source):
    db, run_id = source
    before = content(tmp_path / "a")
    foreign = dataclasses.replace(db.export_run(run_id), command="natural", calls=(call("x"),))
    with pytest.raises(StoreError, match="another run than the bundle's"):
        db.import_run(foreign)
    escaping = dataclasses.replace(db.export_run(run_id, calls=False), files={"../evil.json": b"{}"})
    with pytest.raises(StoreError, match="outside its run's folder"):
        db.import_run(escaping)
    assert content(tmp_path / "a") == before and not (tmp_path / "a" / "runs" / "evil.json").exists()
    with pytest.raises(StoreError, match="no run 'nope'"):
        db.export_run("nope")
    db.close()
