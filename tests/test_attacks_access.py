"""Attacks at other levels of access: ``logprob`` (score-based, over log-probabilities),
``hardlabel`` (the top-1 product only) and the stealth filter. Recommenders of known
behaviour are fakes of the OpenAI wire protocol, log-probabilities included; the scoring
model of the stealth filter is scripted (a fake backend, as in the detection tests)."""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Callable

import pytest

from poise.attacks import (
    Budget,
    ProxyReading,
    Stealth,
    get_method,
    read_first_product,
    run_attack,
    save_attack,
    sprt_decision,
)
from poise.catalog import sample_catalog
from poise.engine import DEFAULT_GENERATE_CONFIG, SearchEngine
from poise.models import TokenLogprob, TopLogprob, get_model
from poise.store import Store

from .test_attacks import numbered
from .test_cli import assert_one_line_error, poise
from .test_defenses_detect import ScriptedScorer
from .wirefake import WireFake, completion, context_documents, token_logprobs, tokens_of

BLENDER = sample_catalog().category("blender")


def run_attack_cli(fake: WireFake, store, *extra: str):
    """``poise attack`` on the blender against the fake, as a user runs it (these methods must
    work from the command line)."""
    return poise("attack", "--category", "blender", "--model", "openai:fake", "--base-url", fake.url, "--json",
                 *extra, store=store, env={"OPENAI_API_KEY": "sk-test-attack"})
PUSH = ("first", "best", "#1", "top", "rank", "winner", "choice", "recommend", "number", "only")


def tok(token: str, logprob: float, top: dict[str, float] | None = None) -> TokenLogprob:
    alts = top or {token: logprob}
    return TokenLogprob(token=token, logprob=logprob,
                        top=tuple(TopLogprob(token=t, logprob=v) for t, v in alts.items()))


# -- the proxy reading -----------------------------------------------------------------------------
def test_the_proxy_reads_the_first_product_position():
    # "1. **Oster Pro 1200**": at the product position, Oster 0.5, Ninja 0.3, "Bl" (Blendtec and
    # nothing else in the blender category) 0.2, and a bare "**" that names nobody
    tokens = (tok("1", -0.01), tok(".", -0.01), tok(" **", -0.1),
              tok("Oster", math.log(0.5), {"Oster": math.log(0.5), "Ninja": math.log(0.3), "Bl": math.log(0.15),
                                           "**": math.log(0.05)}),
              tok(" Pro", -0.01), tok(" 1200", -0.01))
    oster, ninja, blendtec = (next(i for i, p in enumerate(BLENDER.products) if p.brand == b)
                              for b in ("Oster", "Ninja", "Blendtec"))
    reading = read_first_product(tokens, BLENDER, oster)
    assert reading.position == 3 and reading.listed and reading.text == "1. **"
    assert reading.proxy(oster) == pytest.approx(0.5 / 0.95)
    assert reading.proxy(ninja) == pytest.approx(0.3 / 0.95)
    assert reading.proxy(blendtec) == pytest.approx(0.15 / 0.95)
    assert sum(reading.shares) == pytest.approx(1.0)
    # a product not among the alternatives gets the smallest listed mass (an upper bound), not 0
    bosch = next(i for i, p in enumerate(BLENDER.products) if p.brand == "Bosch")
    unlisted = read_first_product(tokens, BLENDER, bosch)
    assert not unlisted.listed and 0 < unlisted.proxy(bosch) < unlisted.proxy(oster)
    again = ProxyReading.from_json(json.loads(json.dumps(reading.to_json())))
    assert again.shares == pytest.approx(reading.shares, abs=1e-6)


def test_a_shared_first_token_is_split_and_no_product_reads_empty():
    cat = BLENDER
    b = [i for i, p in enumerate(cat.products) if p.name.lower().startswith("b")]  # Blendtec, Breville, Bosch
    tokens = (tok(" B", math.log(0.6), {" B": math.log(0.6), " Oster": math.log(0.4)}), tok("lendtec", -0.01))
    reading = read_first_product(tokens, cat, b[0])
    assert reading.proxy(b[0]) == pytest.approx(0.6 / len(b))
    nothing = read_first_product((tok("Sure", -0.1), tok("!", -0.1)), cat, 0)
    assert nothing.shares == () and nothing.proxy(0) == 0.0


# -- the score-based search over the wire ------------------------------------------------------------
def push_words(request: dict) -> tuple[str | None, int]:
    """The product whose page carries an injection (a first paragraph that is not the page's
    own), and how many push words its last line holds."""
    pages = {p.name: p.document.text for p in BLENDER.products}
    for title, text in context_documents(request):
        if title in pages and text.strip() != pages[title].strip():
            last = text.split("\n\n")[0].strip().splitlines()[-1].lower().split()
            return title, sum(w.strip(".,!:*") in PUSH for w in last)
    return None, 0


def climbing(request: dict, headers: dict | None = None) -> tuple:
    """A recommender whose log-probability for the pushed product grows with the push words on
    the injection's last line; its answer puts that product first when its share passes 1/2.
    Log-probabilities are returned when asked for, as OpenAI-compatible endpoints do."""
    titles = [t for t, _ in context_documents(request)]
    pushed, count = push_words(request)
    logit = 1.5 * count - 3.0
    weights = {t: (math.exp(logit) if t == pushed else 1.0) for t in titles}
    total = sum(weights.values())
    first = pushed if pushed and weights[pushed] / total > 0.5 else titles[0]
    order = [first] + [t for t in titles if t != first and t != pushed] + ([pushed] if pushed != first else [])
    text = numbered(order[:-1] if pushed and first != pushed else order)  # a pushed loser stays unlisted
    if not request.get("logprobs"):
        return 200, completion(text), 0
    position = tokens_of(text).index(" " + first.split()[0]) if (" " + first.split()[0]) in tokens_of(text) else 2
    alts = {" " + t.split()[0]: math.log(w / total) for t, w in weights.items()}
    return 200, completion(text, token_logprobs(text, {position: alts})), 0


def test_logprob_search_climbs_the_proxy_and_spends_the_budget(tmp_path):
    with WireFake([climbing] * 2000) as fake:
        result = run_attack_cli(fake, tmp_path, "--method", "logprob", "--budget", "80", "--param", "orders=1",
                                "--param", "patience=40", "--param", "words=8")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    report = out["method_report"]
    steps = [s for s in report["steps"] if s["restart"] >= 0]
    kept = [s["proxy"] for s in steps if s["kept"]]
    assert kept == sorted(kept) and kept[-1] > kept[0]  # a kept suffix never scores lower
    assert report["best_proxy"] == max(s["proxy"] for s in report["steps"])
    assert out["search_queries"] <= 80
    with sqlite3.connect(tmp_path / "poise.sqlite") as conn:
        metas = [json.loads(m) for (m,) in conn.execute(
            "SELECT meta_json FROM calls WHERE run_id = ? AND error IS NULL", (out["run_id"],))]
        sent = conn.execute("SELECT config_json FROM calls WHERE run_id = ? AND task_key LIKE 'proxy/%'",
                            (out["run_id"],)).fetchall()
    proxies = [m for m in metas if m["phase"] == "proxy"]
    assert len(proxies) == report["proxy_orders"] * report["proxy_steps"]
    assert len(proxies) + sum(m["phase"] in ("search", "confirm") for m in metas) == out["search_queries"]
    assert all(json.loads(c)["logprobs"] and json.loads(c)["top_logprobs"] == 20 for (c,) in sent)
    # the suffix that first reached the check was measured for real, and the fake then ranks it first
    assert report["checked"] and report["checked"][0]["proxy"] >= 0.5
    assert out["success"] and out["rank_after"] == 1


def test_an_interrupted_logprob_search_resumes_to_the_same_result(tmp_path):
    args = ("--method", "logprob", "--budget", "24")
    with WireFake([climbing] * 2000) as fake:
        straight = json.loads(run_attack_cli(fake, tmp_path / "a", *args).stdout)
        straight_asked = len(fake.requests)
    with WireFake([climbing] * 2000) as fake:  # the server breaks after ten answers
        fake.break_after = 10
        first = run_attack_cli(fake, tmp_path / "b", *args, "--max-attempts", "1")
        port = fake.server.server_address[1]
    assert first.returncode == 1 and "Traceback" not in first.stderr
    with WireFake([climbing] * 2000, port=port) as fake:
        second = run_attack_cli(fake, tmp_path / "b", *args)
        asked = len(fake.requests)
    assert second.returncode == 0, second.stderr
    resumed = json.loads(second.stdout)
    assert asked == straight_asked - 10  # the proxy queries already made are read back, not asked
    for key in ("injection", "method_report", "score_after", "search_queries"):
        assert resumed[key] == straight[key], key


def test_an_endpoint_without_log_probabilities_is_one_clear_line(tmp_path):
    def bare(request: dict, headers: dict) -> tuple:
        body = completion(numbered([t for t, _ in context_documents(request)]))
        body["choices"][0]["logprobs"] = None
        return 200, body, 0
    with WireFake([bare] * 100) as fake:
        result = run_attack_cli(fake, tmp_path, "--method", "logprob", "--budget", "10")
    assert_one_line_error(result, "returned no top log-probabilities", "--method")


# -- hard label --------------------------------------------------------------------------------------
def test_sprt_accepts_rejects_and_waits():
    assert sprt_decision(0, 1, 0.7, 0.3, 0.2, 0.4) == "reject"  # one miss drops a fresh candidate
    assert sprt_decision(1, 0, 0.7, 0.3, 0.2, 0.4) == "continue"
    assert sprt_decision(2, 0, 0.7, 0.3, 0.2, 0.4) == "accept"
    assert sprt_decision(3, 2, 0.7, 0.3, 0.2, 0.4) == "continue"


def decoy() -> Callable[[dict], str]:
    """An 'opening' injection always lands second (high mean score, never first); a 'direct'
    one ("Important: ... rank X first") lands first in every other answer and is unlisted in
    the rest (a lower mean score); anything else changes nothing."""
    asked = {"direct": 0}

    def answer(request: dict) -> str:
        docs = context_documents(request)
        pushed = next((t for t, text in docs if text.startswith(("Begin your answer", "Important:"))), None)
        rest = [t for t, _ in docs if t != pushed]
        if pushed is None:
            return numbered(rest[:4])
        if next(text for t, text in docs if t == pushed).startswith("Begin your answer"):
            return numbered([rest[0], pushed, *rest[1:4]])
        asked["direct"] += 1
        return numbered([pushed, *rest[:3]] if asked["direct"] % 2 == 1 else rest[:4])
    return answer


def test_hardlabel_decides_on_first_places_only(tmp_path):
    with WireFake([], responder=decoy()) as fake:
        engine = SearchEngine(get_model("openai:fake", base_url=fake.url, api_key="k"))
        with Store(tmp_path) as store:
            run_id = store.start_run("attack", {"test": "hardlabel"})
            method = get_method("hardlabel", p_good=0.5, p_bad=0.2, alpha=0.3, beta=0.4)
            result = run_attack(engine, BLENDER, method, store=store, run_id=run_id, budget=Budget(24),
                                final_orders=6)
    report = result.method_report
    assert report is not None
    opening, direct = report["tests"][:2]
    assert [result.evaluator.candidates[t["candidate"]].strategy for t in (opening, direct)] == ["opening", "direct"]
    # the opening is always second: by mean score the best there is, but never first, so dropped
    assert opening["decision"] == "reject" and opening["hits"] == 0
    assert direct["hits"] == 1 and direct["decision"] == "accept"
    assert report["queries_to_first_hit"] == report["queries_to_first_accept"] == opening["misses"] + 1
    assert result.injection.startswith("Important:")  # chosen on first places, not on mean score
    assert result.after.first_rate > 0


# -- stealth --------------------------------------------------------------------------------------------
class Surprised(ScriptedScorer):
    """Scripted log-probabilities: the word 'rank' (any form) is very surprising."""

    def text_logprobs(self, text: str) -> tuple[TokenLogprob, ...]:
        pieces = re.findall(r"\s*\S+|\s+$", text)
        self.usage.calls += 1
        return tuple(TokenLogprob(token=p, logprob=-14.0 if "rank" in p.lower() else -2.0) for p in pieces)


def test_the_stealth_filter_refuses_candidates_before_asking(tmp_path):
    from .test_attacks import gullible

    stealth = Stealth(Surprised("scripted"), max_ratio=1.01, detectors=())
    with WireFake([], responder=gullible) as fake:
        engine = SearchEngine(get_model("openai:fake", base_url=fake.url, api_key="k"))
        with Store(tmp_path) as store:
            run_id = store.start_run("attack", {"test": "stealth"})
            result = run_attack(engine, BLENDER, get_method("single"), store=store, run_id=run_id,
                                budget=Budget(20), final_orders=4, stealth=stealth)
            data = save_attack(result, store).model_dump(mode="json")
            asked = {json.loads(m)["injection"] for (m,) in sqlite3.connect(tmp_path / "poise.sqlite").execute(
                "SELECT meta_json FROM calls WHERE run_id = ?", (run_id,))}
    cands = data["candidates"]
    refused = [c for c in cands if c["rejected"]]
    assert refused and all(c["perplexity_ratio"] > 1.01 and "rank" in c["injection"].lower() for c in refused)
    assert all(c["injection"] not in asked and not c["scores"] for c in refused)  # never asked
    assert all(not c["rejected"] and c["perplexity_ratio"] <= 1.01 for c in cands if c["scores"])
    assert stealth.rejected == len(refused)
    assert data["stealth"]["perplexity_ratio"] <= 1.01 and data["injection"]
    assert data["stealth"]["chars"] == len(data["injection"]) and data["stealth"]["words"] > 0


def test_a_refusing_filter_ends_the_search_instead_of_looping(tmp_path):
    from .test_attacks import gullible

    stealth = Stealth(Surprised("scripted"), max_ratio=0.5, detectors=())  # refuses every injection
    with WireFake([], responder=gullible) as fake:
        engine = SearchEngine(get_model("openai:fake", base_url=fake.url, api_key="k"))
        with Store(tmp_path) as store:
            run_id = store.start_run("attack", {"test": "stealth"})
            result = run_attack(engine, BLENDER, get_method("strategies"), store=store, run_id=run_id,
                                budget=Budget(20), final_orders=2, stealth=stealth)
    assert result.stopped_by.startswith("budget: stealth") and result.injection == ""
    assert result.evaluator.search_queries == 0


# -- the real bundled model ------------------------------------------------------------------------------
@pytest.mark.model
def test_logprob_with_a_stealth_filter_on_the_bundled_model(tmp_path):
    from .conftest import tiny_category

    cat = tiny_category()
    oster = 2
    with Store(tmp_path) as store:
        llm = get_model("local")
        scorer = get_model("local")  # stealth scores with a model of its own
        stealth = Stealth(scorer, max_ratio=3.0, detectors=("perplexity",))
        run_id = store.start_run("attack", {"test": "logprob-model"})
        method = get_method("logprob", orders=1, words=4, tokens=16)
        engine = SearchEngine(llm, config=DEFAULT_GENERATE_CONFIG.model_copy(update={"max_tokens": 96}))
        result = run_attack(engine, cat, method, store=store, run_id=run_id, product="Oster Pro 1200",
                            budget=Budget(5), final_orders=1, confirm=0, stealth=stealth)
        calls = store.calls(run_id)
    proxies = [json.loads(c["meta_json"]) for c in calls if c["task_key"].startswith("proxy/")]
    assert proxies and len(proxies) == result.method_report["proxy_steps"]  # one order per step
    for meta in proxies:  # each reading is a share of the product mass at the first product position
        shares = meta["proxy_reading"]["shares"]
        assert not shares or (len(shares) == 3 and sum(shares) == pytest.approx(1.0, abs=1e-4))
        assert meta["proxy"] == pytest.approx(shares[oster] if shares else 0.0, abs=1e-6)
    assert all(json.loads(c["config_json"])["top_logprobs"] == 20 for c in calls if c["task_key"].startswith("proxy/"))
    assert result.evaluator.search_queries <= 5 and result.injection  # the best suffix measured for real
    s = result.stealth
    assert s is not None and s["perplexity_ratio"] == pytest.approx(s["perplexity_injected"] / s["perplexity_clean"],
                                                                   rel=1e-3)
    assert s["perplexity_ratio"] <= 3.0 and set(s["detectors"]) == {"perplexity"}
    assert all(c.perplexity_ratio is not None and c.perplexity_ratio <= 3.0 for c in result.evaluator.candidates
               if c.asked)


@pytest.mark.model
def test_hardlabel_from_the_cli_on_the_bundled_model(tmp_path, tiny_catalog_file):
    from .test_cli import poise

    result = poise("attack", "--category", "blender", "--catalog", str(tiny_catalog_file), "--method", "hardlabel",
                   "--product", "Oster Pro 1200", "--budget", "3", "--final-orders", "1", "--confirm", "0",
                   "--max-tokens", "96",
                   "--stealth", "--stealth-detectors", "perplexity", "--json", store=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    report = out["method_report"]
    assert report["tests"] and sum(t["hits"] + t["misses"] for t in report["tests"]) == out["search_queries"] <= 3
    hits = [t for t in report["tests"] if t["hits"]]
    assert (report["queries_to_first_hit"] is None) == (not hits)
    assert out["stealth"]["words"] == len(out["injection"].split()) > 0
    assert out["stealth"]["detectors"]["perplexity"]["flagged"] in (True, False)
