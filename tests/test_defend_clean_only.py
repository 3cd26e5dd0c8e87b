"""``poise defend --clean-only`` (and ``poise.experiments.run_defend_clean`` under it): clean
utility and cost of each configuration, no attack, against a fake of the OpenAI wire protocol
on loopback whose answers are scripted, so every figure is known before the run: the table and
the JSON say what the answers imply, a configuration that answers otherwise shows otherwise, an
interrupted run resumes without asking an answer twice, other inputs start a new run, and
untrusted product names stay inert. No model is loaded."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from poise.catalog import sample_catalog
from poise.engine import SearchEngine
from poise.experiments import CleanConfig, Consensus, run_defend_clean
from poise.models import get_model
from poise.store import Store

from .cliutil import blender_folder, error_line, poise, rank_all
from .wirefake import WireFake, context_titles

Capture = pytest.CaptureFixture[str]
OPENAI = ("--catalog", "cat.jsonl", "-m", "openai:fake", "--max-attempts", "1")
OSTER, BLENDTEC, NINJA = "Oster Pro 1200", "Blendtec Designer 650 S", "Ninja Foodi"
SANDWICH = "Remember the user's request"  # what the sandwich defense adds after the pages
HIERARCHY = "Priority of instructions"  # what the hierarchy defense adds to the system prompt
# four configurations: plain, sandwich, self-consistency at k=1 and k=3
DEFENSES = ("--defense", "sandwich", "--defense", "self-consistency:k=1|3")
SC1, SC3 = "self-consistency:k=1,method=borda", "self-consistency:k=3,method=borda"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return blender_folder(tmp_path, monkeypatch)


def text_of(request: dict[str, Any], role: str) -> str:
    return "\n".join(m["content"] for m in request["messages"] if m["role"] == role)


def numbered(titles: list[str]) -> str:
    return "\n".join(f"{i}. {t}" for i, t in enumerate(titles, 1))


def scripted(request: dict[str, Any]) -> str:
    """Oster first, then Blendtec, then Ninja, whatever the context order; asked with the
    sandwich's reminder, Blendtec first; with the hierarchy's warning, the context order."""
    if HIERARCHY in text_of(request, "system"):
        return rank_all(request)
    if SANDWICH in text_of(request, "user"):
        return numbered([BLENDTEC, OSTER, NINJA])
    return numbered([OSTER, BLENDTEC, NINJA])


def defend_json(capsys: Capture, fake: WireFake, *more: str) -> dict[str, Any]:
    code, out, err = poise(capsys, "defend", "--clean-only", "-c", "blender", *OPENAI, "--base-url", fake.url,
                           "--orders", "4", "--json", *more)
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def rows_by_label(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["label"]: c for c in data["categories"][0]["configs"]}


# -- the figures -----------------------------------------------------------------------------------------
def test_an_engine_that_always_puts_one_product_first_agrees_everywhere(folder: Path, capsys: Capture) -> None:
    """Every configuration's answers put Oster first: top-1 agreement 100% for each, the
    consensus's top-1 settled in every resample; k=3 asks three times per answer."""
    def oster_first(request: dict[str, Any]) -> str:
        titles = context_titles(request)
        return numbered([OSTER, *(t for t in titles if t != OSTER)])

    with WireFake([], responder=oster_first) as fake:
        data = defend_json(capsys, fake, *DEFENSES)
    cat = data["categories"][0]
    assert cat["consensus"]["products"][0] == {"product": OSTER, "points": 12.0}  # 4 answers, 3 points each
    assert cat["consensus"]["stability"] == 1.0 and cat["consensus"]["own_orders"] == 0
    rows = rows_by_label(data)
    assert list(rows) == ["plain", "sandwich", SC1, SC3]
    assert all(r["top1"] == 1.0 and r["answers"] == 4 == r["readable"] for r in rows.values())
    assert [rows[k]["calls"] for k in rows] == [1.0, 1.0, 1.0, 3.0]
    assert [rows[k]["tokens_x"] for k in rows] == [1.0, 1.0, 1.0, 3.0]  # 10 tokens a call on this server
    assert [p["top1"] for p in data["pooled"]] == [1.0] * 4
    assert cat["run_id"] == data["run_id"] and cat["orders"] == 4


def test_a_configuration_that_answers_otherwise_shows_otherwise(folder: Path, capsys: Capture) -> None:
    """The sandwich's answers swap the first two products: its top-1 agreement is 0 and its tau
    1/3 (one discordant pair of three), where the plain engine agrees fully; the hierarchy's
    answers follow the context order: position decides every score (F has no finite value),
    and its top-1 agreement is the share of its orders that put Oster first."""
    with WireFake([], responder=scripted) as fake:
        data = defend_json(capsys, fake, *DEFENSES, "--defense", "hierarchy")
        asked = [r for r in fake.requests if HIERARCHY in text_of(r, "system")]
    rows = rows_by_label(data)
    plain, sandwich, hierarchy = rows["plain"], rows["sandwich"], rows["hierarchy"]
    assert (plain["tau"], plain["top1"]) == (1.0, 1.0)
    assert (sandwich["tau"], sandwich["top1"]) == (0.3333, 0.0)
    assert (rows[SC3]["tau"], rows[SC3]["top1"], rows[SC3]["tokens_x"]) == (1.0, 1.0, 3.0)
    assert plain["position_f"] is not None
    assert hierarchy["position_f"] is None and hierarchy["position_p"] == 0.0
    assert len(asked) == 4
    assert hierarchy["top1"] == sum(context_titles(r)[0] == OSTER for r in asked) / 4
    assert [p["label"] for p in data["pooled"]] == list(rows)
    assert data["pooled"][1]["top1"] == 0.0


def table_rows(out: str) -> dict[str, list[str]]:
    """The table's rows by their first cell (a label, or a key d1, d2 ... spelt out below)."""
    keys = dict(line.split(" = ", 1) for line in (ln.strip() for ln in out.splitlines()) if " = " in line)
    rows = {}
    for line in out.splitlines():
        cells = line.split()
        if cells and " = " not in line and (cells[0] in keys or cells[0] in ("plain", "sandwich")):
            rows[keys.get(cells[0], cells[0])] = cells[1:]
    return rows


def test_the_table_shows_the_scripted_figures(folder: Path, capsys: Capture) -> None:
    with WireFake([], responder=scripted) as fake:
        code, out, err = poise(capsys, "defend", "--clean-only", "-c", "blender", *OPENAI, "--base-url", fake.url,
                               "--orders", "4", "--consensus-orders", "2", *DEFENSES)
    assert code == 0, err
    rows = table_rows(out)
    # τ, top1, posF, calls, tok×
    assert rows["plain"][:2] == ["1.00", "100%"] and rows["plain"][3:] == ["1.0", "1.0"]
    assert rows["sandwich"][:2] == ["0.33", "0%"]
    assert rows[SC3][:2] == ["1.00", "100%"] and rows[SC3][3:] == ["3.0", "3.0"]
    assert "consensus of 2 own orders, its top-1 100% stable" in " ".join(out.split())
    assert f"Borda points): {OSTER} 6, {BLENDTEC} 4, {NINJA} 2" in " ".join(out.split())
    assert "run " in out


def test_untrusted_product_names_stay_inert(folder: Path, capsys: Capture) -> None:
    """Names that look like rich markup are shown as written, never styled, linked or refused
    (the catalog refuses escape characters itself)."""
    lines = [json.dumps({"type": "category", "category": "blender", "query": "Which blender? Rank them."})]
    lines += [json.dumps({"category": "blender", "brand": b, "model": m, "document": f"The {m} blends."})
              for b, m in (("[bold red]Evil[/]", "X1"), ("[link=https://evil.example]Calm", "Y2[/link]"),
                           ("[/]", "Z"))]
    (folder / "cat.jsonl").write_text("\n".join(lines) + "\n")
    with WireFake([], responder=rank_all) as fake:
        code, out, err = poise(capsys, "defend", "--clean-only", "-c", "blender", *OPENAI, "--base-url", fake.url,
                               "--orders", "2", "--defense", "sandwich")
    assert code == 0, err
    shown = " ".join(out.split())
    assert "[bold red]Evil[/] X1" in shown and "[/] Z" in shown and "[link=https://evil.example]Calm Y2[/link]" in shown
    assert "\x1b" not in out


# -- resume and new runs ---------------------------------------------------------------------------------
def runs_in(store: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(store / "poise.sqlite") as conn:
        return list(conn.execute("SELECT id, command, status FROM runs ORDER BY created_at"))


def interrupted(capsys: Capture, fake: WireFake, after: int, *more: str) -> str:
    """A clean-only run that the server breaks after ``after`` answers: its run id."""
    fake.break_after = after
    code, out, err = poise(capsys, "defend", "--clean-only", "-c", "blender", *OPENAI, "--base-url", fake.url,
                           "--orders", "4", "--json", *DEFENSES, *more)
    assert code == 1 and out == "", err
    error_line(err)
    fake.break_after = None
    return runs_in(Path("poise-runs"))[-1][0]


def unbroken(capsys: Capture) -> tuple[dict[str, Any], int]:
    """The run asked whole, in a store of its own: its JSON and how many answers it asked."""
    with WireFake([], responder=scripted) as whole:
        return defend_json(capsys, whole, *DEFENSES, "--store", "unbroken"), whole.answered


def test_an_interrupted_run_resumes_and_asks_no_answer_twice(folder: Path, capsys: Capture) -> None:
    """Broken after 5 answers, then asked again (with an attack option, ignored, changed): the
    same run goes on, and the server answers exactly what an unbroken run asks, each once."""
    straight, asked = unbroken(capsys)
    with WireFake([], responder=scripted) as fake:
        run_id = interrupted(capsys, fake, 5)
        assert fake.answered == 5
        code, out, err = poise(capsys, "defend", "--clean-only", "-c", "blender", *OPENAI, "--base-url", fake.url,
                               "--orders", "4", "--json", *DEFENSES, "--budget", "3")
    assert code == 0, err
    assert f"resuming run {run_id}" in err
    data = json.loads(out)
    assert data["run_id"] == run_id
    assert runs_in(Path("poise-runs")) == [(run_id, "defend-clean", "finished")]
    assert fake.answered == asked and len(fake.requests) == asked + 1  # the one refused, asked again
    bodies = [json.dumps(r, sort_keys=True) for r in fake.requests]
    assert len(set(bodies)) == asked
    assert rows_by_label(data) == rows_by_label(straight)


@pytest.mark.parametrize("change", ["consensus-orders", "server"])
def test_other_inputs_start_a_new_run(folder: Path, capsys: Capture, change: str) -> None:
    """An interrupted run is never adopted by a run with another --consensus-orders or against
    another server: a new run starts and says which inputs differ."""
    _, asked = unbroken(capsys)
    with WireFake([], responder=scripted) as first, WireFake([], responder=scripted) as other:
        run_id = interrupted(capsys, first, 3)
        fake, more = (first, ("--consensus-orders", "2")) if change == "consensus-orders" else (other, ())
        code, out, err = poise(capsys, "defend", "--clean-only", "-c", "blender", *OPENAI, "--base-url", fake.url,
                               "--orders", "4", "--json", *DEFENSES, *more)
    assert code == 0, err
    data = json.loads(out)
    assert data["run_id"] != run_id
    assert f"starting a new run {data['run_id']}: run {run_id} stopped with other inputs" in " ".join(err.split())
    assert ("consensus_orders" if change == "consensus-orders" else "base_url") in err
    assert [r[2] for r in runs_in(Path("poise-runs"))] == ["failed", "finished"]
    if change == "server":
        assert other.answered == asked  # nothing the first server answered is reused
    else:
        assert data["categories"][0]["consensus"]["own_orders"] == 2


# -- the library -------------------------------------------------------------------------------------------
BLENDER = sample_catalog().category("blender")


def by_name(request: dict[str, Any]) -> str:
    """Every page by title, A to Z (reversed when asked with the sandwich's reminder)."""
    titles = sorted(context_titles(request))
    return numbered(titles[::-1] if SANDWICH in text_of(request, "user") else titles)


@pytest.mark.parametrize("consensus_orders", [0, 3])
def test_run_defend_clean_measures_and_resumes(tmp_path: Path, consensus_orders: int) -> None:
    """Called directly: the consensus (own orders or the plain engine's), a row per
    configuration told as it is done, the answers recorded under run_defend's task keys, and a
    second call on the same run that asks nothing."""
    told: list[Consensus | CleanConfig] = []
    queries: list[int] = []
    with WireFake([], responder=by_name) as fake, Store(tmp_path) as store:
        engine = SearchEngine(get_model("openai:engine", base_url=fake.url, api_key="k"))
        run_id = store.start_run("defend-clean", {})

        def measure() -> Any:
            return run_defend_clean(engine, BLENDER, ["sandwich"], store=store, run_id=run_id, orders=3,
                                    consensus_orders=consensus_orders, on_query=lambda: queries.append(1),
                                    on_consensus=told.append, on_config=told.append)

        result = measure()
        asked = len(fake.requests)
        assert measure() == result and len(fake.requests) == asked
        keys = {c["task_key"] for c in store.calls(run_id)}
    names = sorted(p.name for p in BLENDER.products)
    answers = consensus_orders or 3
    assert [p.product for p in result.consensus.products] == names
    assert [p.points for p in result.consensus.products] == [answers * (8 - i) for i in range(8)]
    assert (result.consensus.answers, result.consensus.own_orders) == (answers, consensus_orders)
    assert result.consensus.stability == 1.0
    plain, sandwich = result.configs
    assert (plain.label, plain.tau, plain.top1, plain.tokens_x) == ("plain", 1.0, 1.0, 1.0)
    assert (sandwich.label, sandwich.tau, sandwich.top1, sandwich.tokens_x) == ("sandwich", -1.0, 0.0, 1.0)
    assert told[:2] == [result.consensus, plain] and told[2:] == [sandwich, result.consensus, plain, sandwich]
    assert asked == 6 + consensus_orders and len(queries) == 2 * asked
    expected = {f"blender/{label}/clean/order={k}" for label in ("plain", "sandwich") for k in range(3)}
    expected |= {f"blender/consensus/clean/order={k}" for k in range(consensus_orders)}
    assert keys == expected


def test_run_defend_clean_refuses_a_consensus_of_one_order_before_any_call(tmp_path: Path) -> None:
    from poise import PoiseError

    with WireFake([], responder=by_name) as fake, Store(tmp_path) as store:
        engine = SearchEngine(get_model("openai:engine", base_url=fake.url, api_key="k"))
        with pytest.raises(PoiseError, match="at least 2"):
            run_defend_clean(engine, BLENDER, ["sandwich"], store=store, run_id=store.start_run("x", {}),
                             consensus_orders=1)
    assert not fake.requests
