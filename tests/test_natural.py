"""The natural-setting analysis: rewritten documents, seeded trials, planted effects found,
F-statistics equal to statsmodels' on the run's own records, resumption after failures."""

from __future__ import annotations

import random
import re
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.stats.anova import anova_lm

from poise import PoiseError
from poise.catalog import sample_catalog
from poise.experiments import FACTORS, draw_trial, natural_records, rewrite_document, trial_documents
from poise.ranking._names import matcher_for
from poise.store import Store

from . import inprocess
from .test_cli import poise
from .wirefake import WireFake, completion, context_documents, context_titles, error

CATALOG = sample_catalog()


def numbered(titles: list[str]) -> str:
    return "\n".join(f"{i}. {t} - a good choice." for i, t in enumerate(titles, start=1))


def by_position(seed: int = 0) -> callable:
    """A recommender that looks at the context order only: the first three pages, then one
    page at random."""
    rng = random.Random(seed)

    def answer(request: dict) -> str:
        titles = context_titles(request)
        return numbered([*titles[:3], rng.choice(titles[3:])])
    return answer


def by_name(preferred: list[str], seed: int = 0) -> callable:
    """A recommender that ranks by product name whatever the documents or their order,
    except that it swaps two neighbours now and then."""
    rng = random.Random(seed)

    def answer(request: dict) -> str:
        titles = context_titles(request)
        picks = [t for t in preferred if t in titles][:4]
        i = rng.randrange(4)
        if i < 3:
            picks[i], picks[i + 1] = picks[i + 1], picks[i]
        return numbered(picks)
    return answer


# -- the design ---------------------------------------------------------------------------------
@pytest.mark.parametrize("category", ["blender", "laptop", "electric toothbrush", "cordless drill"])
def test_rewritten_documents_present_the_target_and_never_the_source(category):
    products = CATALOG.category(category).products
    names = tuple((p.brand, p.model) for p in products)
    for s, source in enumerate(products):
        target = products[(s + 3) % len(products)]
        text = rewrite_document(source.document.text, source, target, products)
        found = {m.product for m in matcher_for(names).find(text)}
        assert s not in found, (source.name, text)
        assert (s + 3) % len(products) in found, (target.name, text)


def test_partial_mentions_keep_their_kind():
    blender = CATALOG.category("blender").products
    oster, ninja = blender[4], blender[1]
    text = "The Oster Pro 1200 is sturdy. Oster's warranty is long, and the Pro 1200 jar is glass."
    out = rewrite_document(text, oster, ninja, blender)
    assert out == ("The Ninja Foodi Power Blender & Processor System is sturdy. Ninja's warranty is long, "
                   "and the Foodi Power Blender & Processor System jar is glass.")


def test_trials_are_seeded_permutations():
    blender = CATALOG.category("blender")
    a, b = draw_trial(blender, 3, seed=7), draw_trial(blender, 3, seed=7)
    assert a == b
    assert sorted(a.assignment) == sorted(a.order) == list(range(8))
    draws = {(draw_trial(blender, t).assignment, draw_trial(blender, t).order) for t in range(20)}
    assert len(draws) == 20
    docs = trial_documents(blender, a)
    assert docs[0].text == rewrite_document(blender.products[a.assignment[0]].document.text,
                                            blender.products[a.assignment[0]], blender.products[0],
                                            blender.products)


# -- the whole command against a recommender of known behaviour ---------------------------------
# (the analysis, not the command line, is what these test: the runs start in-process)
def run_natural_here(fake: WireFake, store, trials: int = 16, **options):
    """``poise natural -c blender -c laptop --json`` from Python: the result and the run."""
    return inprocess.natural(store, fake.url, ["blender", "laptop"], model="openai:fake", trials=trials,
                             bootstrap=200, **options)


def test_a_position_biased_recommender_shows_position_not_name(tmp_path):
    with WireFake([], responder=by_position()) as fake:
        out, _ = run_natural_here(fake, tmp_path)
    for name in ("blender", "laptop"):
        cat = out["categories"][name]
        assert cat["trials"] == 16 and cat["unparseable"] == 0
        assert cat["one_way"]["position"]["p"] < 1e-6
        assert cat["f_position"] > 10 * max(cat["f_product"], cat["f_document"])
        curve = [p["mean_score"] for p in cat["position_curve"]]
        # n = 8: the first three pages score 8, 7, 6; one of the other five scores 5
        assert curve[:3] == [8, 7, 6] and all(0 < v < 5 for v in curve[3:])
        low, high = cat["position_curve"][3]["ci95"]
        assert low < curve[3] < high
    pooled = out["pooled"]["joint_anova"]
    assert pooled["position"]["partial_eta_sq"] > 0.6
    assert pooled["position"]["partial_eta_sq"] > 3 * max(pooled["product"]["partial_eta_sq"],
                                                         pooled["document"]["partial_eta_sq"])
    for plot in out["plots"]:
        assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_name_loyal_recommender_shows_product_not_position(tmp_path):
    laptop = [p.name for p in CATALOG.category("laptop").products]
    blender = [p.name for p in CATALOG.category("blender").products]
    preferred = list(reversed(laptop)) + blender[2:] + blender[:2]
    with WireFake([], responder=by_name(preferred)) as fake:
        out, _ = run_natural_here(fake, tmp_path)
    for name in ("blender", "laptop"):
        cat = out["categories"][name]
        assert cat["one_way"]["product"]["p"] < 1e-6
        assert cat["f_product"] > 10 * max(cat["f_position"], cat["f_document"])
        assert cat["joint_anova"]["product"]["partial_eta_sq"] > 0.8


def test_f_statistics_equal_statsmodels_on_the_runs_own_records(tmp_path):
    rng = random.Random(0)

    def noisy(request: dict) -> str:  # a recommender with some of everything
        titles = context_titles(request)
        weights = {t: rng.random() + (1.5 if i < 2 else 0) + (1.0 if "Oster" in t or "Dell" in t else 0)
                   for i, t in enumerate(titles)}
        return numbered(sorted(titles, key=weights.get, reverse=True)[: rng.randint(2, 6)])

    with WireFake([], responder=noisy) as fake:
        out, _ = run_natural_here(fake, tmp_path, concurrency=1, trials=20)
    with Store(tmp_path) as store:
        records = natural_records(store, out["run_id"])
    df = pd.DataFrame({k: getattr(records, k) for k in ("category", "product", "document", "position", "score")})
    for name in ("blender", "laptop"):
        sub = df[df.category == name]
        for factor in FACTORS:
            table = anova_lm(smf.ols(f"score ~ C({factor})", data=sub).fit())
            assert out["categories"][name][f"f_{factor}"] == pytest.approx(table.loc[f"C({factor})", "F"], abs=1e-6)
        joint = anova_lm(smf.ols("score ~ C(product) + C(document) + C(position)", data=sub).fit(), typ=2)
        for factor in FACTORS:
            assert out["categories"][name]["joint_anova"][factor]["f"] == pytest.approx(
                joint.loc[f"C({factor})", "F"], abs=1e-6)
    # the design is balanced the way the paper's is: each trial gives each product one
    # document and one position
    per_trial = df.groupby(np.repeat(np.arange(len(df) // 8), 8))
    assert all(sorted(g["position"]) == list(range(1, 9)) for _, g in per_trial)


def test_an_interrupted_run_resumes_without_repeating_trials(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-natural")
    # the server dies after five answers: the run stops with failed trials stored
    script = [(200, completion(numbered(["Oster Pro 1200", "Bosch VitaBoost 1600 W"])), 0)] * 5
    script += [error(500, "server down")] * 40
    with WireFake(script) as fake:
        with pytest.raises(PoiseError) as first:
            run_natural_here(fake, tmp_path, concurrency=1, max_attempts=1, trials=6)
        port = fake.server.server_address[1]
    assert "trials failed" in first.value.one_line() and "run the same command again" in first.value.one_line()
    with sqlite3.connect(tmp_path / "poise.sqlite") as conn:
        ok = conn.execute("SELECT COUNT(*) FROM calls WHERE error IS NULL").fetchone()[0]
        failed = conn.execute("SELECT COUNT(*) FROM calls WHERE error IS NOT NULL").fetchone()[0]
        status = conn.execute("SELECT status FROM runs").fetchone()[0]
    assert (ok, failed, status) == (5, 7, "failed")
    # the same command again (same endpoint): only the seven missing trials are asked, into the same run
    with WireFake([], responder=by_position(), port=port) as fake:
        out, second = run_natural_here(fake, tmp_path, concurrency=1, trials=6)
        asked = len(fake.requests)
    assert second.resumed
    assert asked == 7
    assert out["categories"]["blender"]["trials"] + out["categories"]["laptop"]["trials"] == 12
    with sqlite3.connect(tmp_path / "poise.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*), MIN(status) FROM runs").fetchone() == (1, "finished")
    # no key at rest, in the database, its WAL or any other file
    assert [f.name for f in tmp_path.rglob("*") if f.is_file() and b"sk-test-natural" in f.read_bytes()] == []


def test_bad_input_is_one_line(tmp_path):
    from .test_cli import assert_one_line_error

    assert_one_line_error(poise("natural", store=tmp_path), "--category", "--all")
    assert_one_line_error(poise("natural", "--category", "blendr", store=tmp_path), "blendr")


def test_documents_can_be_rewritten_by_a_model(tmp_path):
    """--rewrite-model: a model writes document j about product i; a rewrite that still
    names the source (or never the target) is replaced by the substitution and counted."""
    blender = CATALOG.category("blender").products

    def answer(request: dict) -> str:
        prompt = request["messages"][-1]["content"]
        if not prompt.startswith("Rewrite the product page"):
            return by_position()(request)
        target = re.search(r"presents the (.+?) \(brand: (.+?); model: (.+?)\) instead of the (.+?)\. ", prompt)
        source = next(p for p in blender if p.name == target.group(4))
        page = prompt.split("\n\n", 1)[1]
        if "Oster" in target.group(1):
            return "Sorry, I cannot help with that."  # no target named: replaced
        return page.replace(source.brand, target.group(2)).replace(source.model, target.group(3)) + " [rw]"

    with WireFake([], responder=answer) as fake:
        out, _ = inprocess.natural(tmp_path, fake.url, ["blender"], model="openai:fake", trials=3,
                                   rewrite_model="openai:rewriter", bootstrap=0)
        rewrites = [r for r in fake.requests if r["model"] == "openai:rewriter" or r["model"] == "rewriter"]
        asks = [r for r in fake.requests if r["model"] == "fake"]
    assert out["rewrite"] == "llm:openai:rewriter"
    assert out["llm_rewrites_kept"] > 0 and out["llm_rewrites_replaced"] > 0
    assert len(rewrites) == out["llm_rewrites_kept"] + out["llm_rewrites_replaced"]
    assert len(asks) == 3
    assert any("[rw]" in text for r in asks for _, text in context_documents(r))
