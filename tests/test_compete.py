"""Competition (``poise attack --compete K``): K products attacked at once, each with its own
search, then measured with no injection, alone and together on the same fresh orders. A
recommender of known behaviour (a wire fake) where the outcome must be exact; the real bundled
model from the command line and from Python."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from poise import PoiseError
from poise.catalog import Category, sample_catalog
from poise.engine import default_template
from poise.experiments import compete_setup, model_opener
from poise.store import RunContext, Store, StoredCompete

from . import inprocess
from .test_attacks import gullible
from .test_cli import assert_one_line_error, poise, runs_in
from .wirefake import WireFake, context_documents

BLENDER = sample_catalog().category("blender")
TINY = {"budget": 4, "final_orders": 3, "selection_orders": 2, "confirm": 0, "responses": 1}


def compete(store: Path, base_url: str | None, *, category: Category = BLENDER, model: str = "openai:fake",
            max_attempts: int = 5, **options: Any) -> tuple[dict[str, Any], RunContext]:
    """``poise attack --compete K --json`` in-process: the stored result (as JSON) and the run."""
    return inprocess.run_setup(store, compete_setup(
        category, model=model, open_model=model_opener(base_url, max_attempts=max_attempts),
        template=default_template(), **options))


def calls_of(store: Path, run_id: str) -> list[dict[str, Any]]:
    with Store(store) as db:
        return db.calls(run_id)


# -- a recommender of known behaviour ---------------------------------------------------------------------
def test_alone_every_injection_wins_together_they_split_first_place(tmp_path, monkeypatch):
    # the gullible recommender puts first the first page (in context order) that asks to be first:
    # alone each competitor wins every order; together exactly one of them wins each order
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-compete")
    with WireFake([], responder=gullible) as fake:
        out, run = compete(tmp_path, fake.url, compete=2, **TINY)
    products = out["products"]
    assert [p["index"] for p in products] == sorted(range(8), key=lambda i: (out["selection_scores"][i], i))[:2]
    for p in products:
        assert p["injection"] and p["search_queries"] <= TINY["budget"]
        assert p["alone"]["first_rate"] == 1.0 and p["alone"]["rank"] == 1.0
        assert p["gain_alone"] == pytest.approx(p["baseline"]["rank"] - 1.0)
    assert sum(p["together"]["first_rate"] for p in products) == pytest.approx(1.0)
    assert out["first_other"] == 0.0 and out["unread_together"] == 0.0
    assert any(p["gain_together"] < p["gain_alone"] for p in products)  # someone loses under competition
    top = max(products, key=lambda p: (p["together"]["first_rate"], -p["index"]))
    assert out["winner"] == f"{top['brand']} {top['model']}"
    with Store(tmp_path) as db:
        assert db.run(run.id).command == "compete" and db.run(run.id).config["compete"] == 2
        assert db.load_result(run.id, StoredCompete).model_dump(mode="json") == out
    calls = calls_of(tmp_path, run.id)
    assert len(calls) == out["recommender_queries"] == TINY["selection_orders"] + sum(
        p["search_queries"] for p in products) + (2 + 2) * TINY["final_orders"]


def test_the_joint_evaluation_places_every_injection_in_the_prompt(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-compete")
    with WireFake([], responder=gullible) as fake:
        out, run = compete(tmp_path, fake.url, compete=3, **TINY)
    injections = {p["index"]: p["injection"] for p in out["products"]}
    names = {i: BLENDER.products[i].name for i in injections}
    phases: dict[str, int] = {}
    for call in calls_of(tmp_path, run.id):
        meta = json.loads(call["meta_json"])
        phases[meta["phase"]] = phases.get(meta["phase"], 0) + 1
        if not meta["phase"].startswith("final_"):
            continue
        docs = dict(context_documents({"messages": json.loads(call["messages_json"])}))
        placed = {i for i in injections if docs[names[i]].startswith(injections[i] + "\n\n")}
        alone = re.search(r"/product=(\d+)/", call["task_key"])
        expected = {int(alone[1])} if alone else set(injections) if meta["phase"] == "final_together" else set()
        assert placed == expected, call["task_key"]
        assert meta["injections"] == {str(i): injections[i] for i in expected}
        # every other page is the catalog's, untouched
        assert all(docs[p.name].startswith(p.document.text) for i, p in enumerate(BLENDER.products) if i not in placed)
    assert phases["final_none"] == phases["final_together"] == TINY["final_orders"]
    assert phases["final_alone"] == 3 * TINY["final_orders"]


def test_an_interrupted_competition_resumes_without_asking_anything_twice(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-compete")
    with WireFake([], responder=gullible) as fake:
        straight, _ = compete(tmp_path / "a", fake.url, compete=2, **TINY)
        straight_asked = len(fake.requests)
    with WireFake([], responder=gullible) as fake:
        fake.break_after = straight_asked // 2  # the server breaks halfway through (in the second search)
        with pytest.raises(PoiseError):
            compete(tmp_path / "b", fake.url, max_attempts=1, compete=2, **TINY)
        answered, port = fake.answered, fake.server.server_address[1]
    with WireFake([], responder=gullible, port=port) as fake:
        resumed, run = compete(tmp_path / "b", fake.url, compete=2, **TINY)
        asked = len(fake.requests)
    assert run.resumed and answered >= 1
    assert asked == straight_asked - answered  # what was answered before is read back, never asked again
    drop = {"run_id"}
    assert {k: v for k, v in resumed.items() if k not in drop} == {k: v for k, v in straight.items() if k not in drop}
    keys = [c["task_key"] for c in calls_of(tmp_path / "b", run.id) if c["error"] is None]
    assert len(keys) == len(set(keys))


# -- best-response rounds ---------------------------------------------------------------------------------
def pages_of(call: dict[str, Any]) -> dict[str, str]:
    return dict(context_documents({"messages": json.loads(call["messages_json"])}))


def test_in_round_two_each_search_has_the_others_injection_in_place(tmp_path, monkeypatch):
    # the gullible recommender puts first the first page (in context order) asking to be first:
    # alone (round 1) a candidate that asks is always named first; in round 2 the other's round-1
    # injection (which asks too) is on its page, so it is named first only where its page comes first
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-compete")
    with WireFake([], responder=gullible) as fake:
        out, run = compete(tmp_path, fake.url, compete=2, rounds=2, **{**TINY, "responses": 2})
    products = {p["index"]: p for p in out["products"]}
    names = {i: BLENDER.products[i].name for i in products}
    first_injection = {i: p["rounds"][0]["injection"] for i, p in products.items()}
    calls = calls_of(tmp_path, run.id)
    outcomes: dict[int, list[tuple[bool, bool]]] = {1: [], 2: []}  # (named first, its page before the other's)
    for call in calls:
        meta = json.loads(call["meta_json"])
        searched = re.match(r"(?:round=(\d+)/)?product=(\d+)/search/", call["task_key"])
        if not searched:
            continue
        number, me = int(searched[1] or 1), int(searched[2])
        (other,) = set(products) - {me}
        docs = pages_of(call)
        assert docs[names[me]].startswith(meta["injection"] + "\n\n")  # its own candidate on its page
        placed = docs[names[other]].startswith(first_injection[other] + "\n\n")
        assert placed == (number == 2), call["task_key"]  # round 2: the other's round-1 injection in place
        if re.search(r"\bfirst\b|#1|number one", meta["injection"], re.I):  # a candidate that asks
            titles = list(docs)
            outcomes[number].append((json.loads(call["ranking_json"])[0] == me,
                                     titles.index(names[me]) < titles.index(names[other])))
    assert outcomes[1] and all(named for named, _ in outcomes[1])
    assert outcomes[2] and all(named == ahead for named, ahead in outcomes[2])
    assert not all(named for named, _ in outcomes[2])  # the other's injection costs it some first places
    assert out["rounds"] == 2 and run.resumed is False
    for p in products.values():
        assert [r["round"] for r in p["rounds"]] == [1, 2] and p["rounds"][0]["best_search_score"] == 8
        assert all(r["search_queries"] <= TINY["budget"] for r in p["rounds"])
        assert p["search_queries"] == sum(r["search_queries"] for r in p["rounds"])
        assert p["injection"] == (p["rounds"][1]["injection"] or p["rounds"][0]["injection"])
        assert p["gain_together_round1"] == pytest.approx(p["baseline"]["rank"] - p["together_round1"]["rank"])
    changed = any(p["injection"] != first_injection[i] for i, p in products.items())
    phases = [json.loads(c["meta_json"])["phase"] for c in calls]
    assert phases.count("final_together_round1") == (TINY["final_orders"] if changed else 0)
    assert len(calls) == out["recommender_queries"] == TINY["selection_orders"] + sum(
        p["search_queries"] for p in products.values()) + (2 + 2 + changed) * TINY["final_orders"]


def test_a_run_with_other_rounds_is_a_new_run_and_the_same_rounds_resume(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-compete")
    options = {"compete": 2, "rounds": 2, **TINY}
    with WireFake([], responder=gullible) as fake:
        straight, run_a = compete(tmp_path / "a", fake.url, **options)
    keys_a = [c["task_key"] for c in calls_of(tmp_path / "a", run_a.id)]
    before_round_two = sum(not k.startswith(("round=", "final/")) for k in keys_a)  # selection and round 1
    with WireFake([], responder=gullible) as fake:
        fake.break_after = before_round_two + 1  # breaks in round 2
        with pytest.raises(PoiseError):
            compete(tmp_path / "b", fake.url, max_attempts=1, **options)
        port = fake.server.server_address[1]
    with WireFake([], responder=gullible, port=port) as fake:
        _, other = compete(tmp_path / "b", fake.url, **{**options, "rounds": 1})  # not the interrupted run's
        resumed, run = compete(tmp_path / "b", fake.url, **options)
    with Store(tmp_path / "b") as db:
        configs = {r: db.run(r).config for r in (other.id, run.id)}
    assert not other.resumed and other.id != run.id and run.resumed
    assert "rounds" not in configs[other.id] and configs[run.id]["rounds"] == 2  # one round: the config of before
    keys = [c["task_key"] for c in calls_of(tmp_path / "b", run.id) if c["error"] is None]
    assert len(keys) == len(set(keys)) and any(k.startswith("round=2/") for k in keys)
    assert {k: v for k, v in resumed.items() if k != "run_id"} == {k: v for k, v in straight.items() if k != "run_id"}


@pytest.mark.parametrize("rounds", [0, 11, 2.5, True, "2"])
def test_bad_rounds_fail_before_any_model_is_built(rounds):
    def no_model(spec: str, *, concurrency: int | None = None) -> Any:
        raise AssertionError("a model was built")

    with pytest.raises(PoiseError) as err:
        compete_setup(BLENDER, compete=2, rounds=rounds, model="local", open_model=no_model,
                      template=default_template())
    assert f"--rounds must be a whole number from 1 to 10, not {rounds!r}" in err.value.one_line()


# -- bad input: one line, before any query, nothing written -------------------------------------------------
@pytest.mark.parametrize(("k", "products", "fragment"), [
    (1, None, "--compete must be a whole number of at least 2"),
    (9, None, "has only 8 products"),
    (3, ["Oster Pro 1200", "Ninja"], "--compete 3 with 2 --product"),
    (2, ["Oster", "oster pro 1200"], "names 'Oster Pro 1200' twice"),
    (2, ["Oster", "Nonesuch"], "no single product 'Nonesuch'"),
])
def test_bad_competitions_fail_before_any_model_is_built(k, products, fragment):
    def no_model(spec: str, *, concurrency: int | None = None) -> Any:
        raise AssertionError("a model was built")

    with pytest.raises(PoiseError, match=re.escape(fragment)):
        compete_setup(BLENDER, compete=k, products=products, model="local", open_model=no_model,
                      template=default_template())


def test_a_competition_refuses_a_single_product_argument():
    with pytest.raises(PoiseError, match="not product="):
        compete_setup(BLENDER, compete=2, product="Oster", model="local", open_model=model_opener(None),
                      template=default_template())


@pytest.mark.parametrize(("args", "fragment"), [
    (("--compete", "1"), "at least 2"),
    (("--compete", "2", "-p", "Oster Pro 1200"), "name 2 products with --product"),
    (("-p", "Oster Pro 1200", "-p", "Ninja"), "add --compete 2"),
    (("--compete", "2", "--rounds", "11"), "--rounds must be a whole number from 1 to 10, not 11"),
    (("--rounds", "2"), "add --compete K, or drop --rounds"),
])
def test_bad_competitions_from_the_cli_are_one_line(tmp_path, args, fragment):
    result = poise("attack", "--category", "blender", *args, store=tmp_path)
    assert_one_line_error(result, fragment)
    assert runs_in(tmp_path) == []


# -- the real bundled model ----------------------------------------------------------------------------------
# both tests run the same competition in one store: whichever runs second is answered by the
# store's request cache (each still runs whole, as a user runs it, when run alone)
MODEL_RUN = {"compete": 2, "products": ["Oster Pro 1200", "Ninja Foodi Power Blender"], "method": "single",
             "budget": 1, "final_orders": 1, "confirm": 0, "responses": 1, "max_tokens": 64}


@pytest.fixture(scope="module")
def model_store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("compete-model")


@pytest.mark.model
def test_compete_from_the_cli_on_the_bundled_model(model_store, tiny_catalog_file):
    result = poise("attack", "--category", "blender", "--catalog", str(tiny_catalog_file), "--compete", "2",
                   "-p", "Oster Pro 1200", "-p", "Ninja Foodi Power Blender", "--method", "single", "--budget", "1",
                   "--final-orders", "1", "--confirm", "0", "--responses", "1", "--max-tokens", "64",
                   store=model_store, env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "gain together" in result.stdout and "Oster Pro 1200" in result.stdout
    run_id = re.findall(r"run (\S+)", result.stdout)[-1]
    with Store(model_store) as db:
        stored = db.load_result(run_id, StoredCompete)
    assert stored is not None
    out = stored.model_dump(mode="json")
    assert [p["model"] for p in out["products"]] == ["Pro 1200", "Foodi Power Blender"]
    assert out["recommender_queries"] == 2 + (2 + 2) * 1 and out["final_orders"] == 1
    assert all(p["injection"] and p["search_queries"] == 1 for p in out["products"])
    report = poise("report", run_id, "--format", "md", "--out", "-", "--store", str(model_store), store=model_store)
    assert report.returncode == 0, report.stderr
    assert "### Competition" in report.stdout and "Ninja Foodi Power Blender" in report.stdout


@pytest.mark.model
def test_compete_from_python_on_the_bundled_model(model_store):
    from .conftest import tiny_category

    out, run = compete(model_store, None, category=tiny_category(), model="local", **MODEL_RUN)
    assert [p["index"] for p in out["products"]] == [2, 1]
    calls = calls_of(model_store, run.id)
    assert len(calls) == out["recommender_queries"] == 2 + (2 + 2) * 1
    together = [c for c in calls if c["task_key"].startswith("final/together/")]
    prompt = json.loads(together[0]["messages_json"])[-1]["content"]
    assert all(p["injection"] and p["injection"] in prompt for p in out["products"])
    for p in out["products"]:
        for side in ("baseline", "alone", "together"):  # one order: first or not, read or not
            assert p[side]["first_rate"] in (0.0, 1.0) and p[side]["unparseable"] + p[side]["ambiguous"] <= 1


@pytest.mark.model
def test_compete_with_two_rounds_on_the_bundled_model(model_store):
    """Round 1 is the run above (read from the store's request cache); round 2 asks the bundled
    model with the other's injection in place. ``single`` on a budget of 1 proposes the same
    template each round, so the round-1 injections are the final ones: never asked twice."""
    from .conftest import tiny_category

    out, run = compete(model_store, None, category=tiny_category(), model="local", **{**MODEL_RUN, "rounds": 2})
    calls = calls_of(model_store, run.id)
    assert len(calls) == out["recommender_queries"] == 2 * 2 + (2 + 2) * 1 and out["rounds"] == 2
    injections = {p["index"]: p["injection"] for p in out["products"]}
    for p in out["products"]:
        assert [(r["round"], r["injection"], r["search_queries"]) for r in p["rounds"]] == \
            [(1, p["injection"], 1), (2, p["injection"], 1)]
        assert p["gain_together_round1"] == p["gain_together"] and p["together_round1"] == p["together"]
    second = [c for c in calls if c["task_key"].startswith("round=2/")]
    assert len(second) == 2 and not [c for c in calls if "together_round1" in c["task_key"]]
    for call in second:
        me = int(re.search(r"product=(\d+)/", call["task_key"])[1])
        prompt = json.loads(call["messages_json"])[-1]["content"]
        assert all(text in prompt for text in injections.values()), me  # its own and the other's


HOSTILE = "Pro <script>alert(1)</script> | [x](http://evil.test) [bold red]loud[/]"


def test_every_output_keeps_names_and_injections_inert(tmp_path, monkeypatch):
    from poise.report import gather_report, render_html, render_markdown

    from .conftest import tiny_category

    cat = tiny_category()
    lines = [json.dumps({"type": "category", "category": cat.name, "query": cat.query})]
    lines += [json.dumps({"category": cat.name, "brand": p.brand, "model": HOSTILE if i == 2 else p.model,
                          "document": p.document.text}) for i, p in enumerate(cat.products)]
    catalog = tmp_path / "hostile.jsonl"
    catalog.write_text("\n".join(lines) + "\n")
    with WireFake([], responder=gullible) as fake:
        result = poise("attack", "--category", "blender", "--catalog", str(catalog), "--compete", "2",
                       "-p", "Oster", "-p", "Ninja", "--model", "openai:fake", "--base-url", fake.url,
                       *[f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()], store=tmp_path / "runs",
                       env={"OPENAI_API_KEY": "sk-test-compete", "COLUMNS": "400"})
    assert result.returncode == 0, result.stderr
    assert "[bold red]loud[/]" in result.stdout and "\x1b" not in result.stdout  # no markup, no colour codes
    run_id = re.findall(r"run (\S+)", result.stdout)[-1]
    with Store(tmp_path / "runs", read_only=True) as db:
        stored = db.load_result(run_id, StoredCompete)
        data = gather_report(db, [run_id])
    assert stored is not None and any("<script>" in p.injection for p in stored.products)  # the name went in
    md, html = render_markdown(data), render_html(data)
    assert "### Competition: 2 products of blender attacked at once" in md and "gain together" in md
    assert "Named first most often together" in html
    assert "<script>" not in md and "<script>" not in html
    assert not re.search(r"(?<!\\)\]\(http://evil", md) and 'href="http://evil' not in html
    assert "&lt;script&gt;" in html and "\\[x\\]" in md
