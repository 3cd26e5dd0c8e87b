"""A second hostile probe of session 27's work: ``poise defend --consensus-orders`` at 1 (a
consensus of one answer, "100% stable") and how it is worded; ``--orders`` past the orders a
small category has (the table, JSON and report said 10 clean orders where 6 were asked);
``poise transfer`` after the attack's pages were edited (measured on the new text); integer
options written with an underscore (``--budget 1_0`` read as 10); and ``--verify-stop``
missing from ``poise attack --json``. Each test failed before its fix; the model is never
loaded (wire fakes on loopback)."""

from __future__ import annotations

import json
import re
import sqlite3
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from .cliutil import blender_folder, error_line, poise, rank_all
from .wirefake import WireFake

Capture = pytest.CaptureFixture[str]
OPENAI = ("--catalog", "cat.jsonl", "-m", "openai:fake", "--max-attempts", "1")
SMALL = ("--budget", "2", "--final-orders", "1", "--selection-orders", "1", "--confirm", "0")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return blender_folder(tmp_path, monkeypatch)


def load_bench_defend() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_defend", Path(__file__).parents[1] / "benchmarks" /
                                                  "bench_defend.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


# -- 1. --consensus-orders 1 ------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["cli", "sweep", "bench"])
def test_a_consensus_of_one_order_is_refused_before_any_call(folder: Path, capsys: Capture, where: str) -> None:
    """--orders needs 2, but --consensus-orders 1 ran: the consensus rested on one answer and
    always showed as '100% stable' (its bootstrap resamples one answer)."""
    from poise import PoiseError

    with WireFake([], responder=rank_all) as fake:
        if where == "cli":
            code, out, err = poise(capsys, "defend", "-c", "blender", *OPENAI, "--base-url", fake.url, *SMALL,
                                   "--defense", "sandwich", "--orders", "2", "--consensus-orders", "1")
            line = error_line(err)
            assert code == 1 and out == "" and "--consensus-orders" in line
        elif where == "sweep":
            (folder / "s.toml").write_text('kind = "defend"\ncategories = ["blender"]\nmodels = ["openai:fake"]\n'
                                           'defenses = ["sandwich"]\n[options]\ncatalog = "cat.jsonl"\n'
                                           'orders = 2\nconsensus_orders = 1\n')
            code, out, err = poise(capsys, "sweep", "s.toml", "--base-url", fake.url, "--store", "store")
            line = error_line(err)
            assert code == 1 and out == "" and "consensus_orders" in line
        else:
            with pytest.raises(PoiseError) as caught:
                load_bench_defend().main(["--clean-only", "--model", "openai:fake", "--base-url", fake.url,
                                          "--categories", "blender", "--defenses", "sandwich", "--orders", "2",
                                          "--consensus-orders", "1", "--store", str(folder / "store")])
            line = caught.value.one_line()
    assert "at least 2" in line and "0" in line, line
    assert not fake.requests
    if where != "bench":
        assert sorted(p.name for p in folder.iterdir()) in (["cat.jsonl"], ["cat.jsonl", "s.toml"])


# -- 2. "consensus of 1 own orders" ---------------------------------------------------------------------------
def html_text(path: Path) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", path.read_text())).split())


def test_a_stored_consensus_of_one_order_reads_in_the_singular(folder: Path, capsys: Capture) -> None:
    """A run stored before --consensus-orders 1 was refused shows it in every view: the table's
    title, the Markdown and the HTML report all said '1 ... orders'."""
    from rich.console import Console

    from poise.cli._defend import defend_table

    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "defend", "-c", "blender", *OPENAI, "--base-url", fake.url, "--json", *SMALL,
                               "--defense", "sandwich", "--orders", "2", "--consensus-orders", "2")
    assert code == 0, err
    data = json.loads(out)
    stored = folder / "poise-runs" / "runs" / data["run_id"] / "defend.json"
    data["categories"][0]["consensus_orders"] = 1  # as a run stored before the refusal holds it
    stored.write_text(json.dumps(data))
    console = Console(width=200, record=True)
    console.print(defend_table(data["categories"][0]))
    assert "consensus of 1 own order," in console.export_text()
    for name in ("r.md", "r.html"):
        code, _, err = poise(capsys, "report", data["run_id"], "--out", name)
        assert code == 0, err
    assert "Consensus: 1 order of its own." in (folder / "r.md").read_text()
    assert "Borda count over 1 order of its own." in html_text(folder / "r.html")


# -- 3. --orders past the category's orders --------------------------------------------------------------------
def test_defend_reports_the_clean_orders_it_asked(folder: Path, capsys: Capture) -> None:
    """Three products have 6 context orders: --orders 10 (and --final-orders 10) asked 6, but the
    table, the JSON and the report said 10."""
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "defend", "-c", "blender", *OPENAI, "--base-url", fake.url, "--json",
                               "--defense", "sandwich", "--orders", "10", "--budget", "2", "--final-orders", "10",
                               "--selection-orders", "1", "--confirm", "0")
    assert code == 0, err
    cat = json.loads(out)["categories"][0]
    assert cat["configs"][0]["clean"]["answers"] == 6
    assert (cat["orders"], cat["final_orders"]) == (6, 6)
    code, _, err = poise(capsys, "report", cat["run_id"], "--out", "r.html")
    assert code == 0, err
    assert "6 clean orders, 6 final orders" in html_text(folder / "r.html")


# -- 4. transfer after the pages were edited --------------------------------------------------------------------
@pytest.mark.parametrize("edit", ["other page", "promoted page"])
def test_transfer_refuses_an_attack_whose_pages_were_edited(folder: Path, capsys: Capture, edit: str) -> None:
    """transfer checked only the promoted product's name: after a page's text was edited, the
    attack's injection was measured on the new pages, and the run said nothing."""
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "attack", "-c", "blender", *OPENAI, "--base-url", fake.url, "--json",
                               "-p", "Ninja Foodi", *SMALL)
        assert code == 0, err
        run = json.loads(out)["run_id"]
        text = (folder / "cat.jsonl").read_text()
        old = "has a motor." if edit == "other page" else "crushes ice."
        (folder / "cat.jsonl").write_text(text.replace(old, old[:-1] + " and a lid."))
        asked = len(fake.requests)
        code, out, err = poise(capsys, "transfer", run, "-m", "openai:fake", "--base-url", fake.url,
                               "--max-attempts", "1", "--final-orders", "1")
    line = error_line(err)
    assert code == 1 and out == "" and len(fake.requests) == asked
    assert f"the catalog of run {run} has changed" in line and "blender" in line and "put back" in line
    with sqlite3.connect(folder / "poise-runs" / "poise.sqlite") as conn:
        assert [c for (c,) in conn.execute("SELECT command FROM runs")] == ["attack"]


# -- 5. integers written with an underscore -----------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ("attack", "-c", "blender", "--budget", "1_0"),
    ("defend", "-c", "blender", "--defense", "sandwich", "--orders=1_0"),
    ("natural", "-c", "blender", "-n", "2_0"),
    ("recommend", "-c", "blender", "--timeout", "6_0"),
    ("recommend", "-c", "blender", "--seed", "+1_0"),
], ids=["budget", "orders=", "-n", "timeout", "seed"])
def test_a_number_with_an_underscore_is_refused(folder: Path, capsys: Capture, argv: tuple[str, ...]) -> None:
    """Python's int and float read '1_0' as 10: `--budget 1_0` spent 10 queries (a typo of 10
    or of 1? the run's configuration said 10)."""
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, *argv, *OPENAI, "--base-url", fake.url)
    line = error_line(err)
    assert code == 2 and out == "" and not fake.requests
    assert "_" in line and "not a number" in line and "ASCII digits" in line, line
    assert sorted(p.name for p in folder.iterdir()) == ["cat.jsonl"]


# -- 6. --verify-stop under --json ---------------------------------------------------------------------------
def test_attack_json_names_the_verify_stop_it_used(folder: Path, capsys: Capture) -> None:
    """--verify-stop was only in the run's configuration and the report's settings table: the
    JSON result of `poise attack --json` did not say the stop had been verified."""
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "attack", "-c", "blender", *OPENAI, "--base-url", fake.url, "--json",
                               *SMALL, "--verify-stop", "2")
        assert code == 0, err
        assert json.loads(out)["verify_stop"] == 2
        code, out, err = poise(capsys, "attack", "-c", "blender", *OPENAI, "--base-url", fake.url, "--json",
                               *SMALL)
    assert code == 0, err
    assert "verify_stop" not in json.loads(out)


def test_attack_json_names_the_other_opt_in_settings_it_used(folder: Path, capsys: Capture) -> None:
    """Found beside it: --shared-orders and --early-stop (what was asked, how answers were cut)
    were not in the JSON result either."""
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "attack", "-c", "blender", *OPENAI, "--base-url", fake.url, "--json",
                               *SMALL, "--shared-orders", "--early-stop")
    assert code == 0, err
    data = json.loads(out)
    assert (data["shared_orders"], data["early_stop"]) == (True, True) and "verify_stop" not in data


# -- found beside them ------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["cli", "sweep"])
def test_a_bootstrap_of_one_resample_is_refused(folder: Path, capsys: Capture, where: str) -> None:
    """Found beside --consensus-orders 1: `natural --bootstrap 1` wrote every '95%' interval with
    no width ([0.5625, 0.5625]), from one resample."""
    with WireFake([], responder=rank_all) as fake:
        if where == "cli":
            code, out, err = poise(capsys, "natural", "-c", "blender", *OPENAI, "--base-url", fake.url, "-n", "2",
                                   "--bootstrap", "1")
        else:
            (folder / "s.toml").write_text('kind = "natural"\ncategories = ["blender"]\nmodels = ["openai:fake"]\n'
                                           '[options]\ncatalog = "cat.jsonl"\ntrials = 2\nbootstrap = 1\n')
            code, out, err = poise(capsys, "sweep", "s.toml", "--base-url", fake.url, "--store", "store")
    line = error_line(err)
    assert code == 1 and out == "" and not fake.requests
    assert "bootstrap" in line and "at least 2" in line, line
    assert sorted(p.name for p in folder.iterdir()) in (["cat.jsonl"], ["cat.jsonl", "s.toml"])
