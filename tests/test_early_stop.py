"""Early stop (poise.ranking.answer_loops): where it fires on a labelled answer, what the reader
reads from the prefix is what it reads from the whole answer; an answer stopped early is never
served from the cache for a full one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from poise.catalog import sample_catalog
from poise.models import ChatMessage, GenerateConfig, RequestCache, StopRule, get_model
from poise.ranking import HEURISTIC, LOOP_STOP, answer_loops

from .wirefake import WireFake

DATA = Path(__file__).parent / "data" / "reader"
CATALOG = sample_catalog()


def _cases() -> list[dict]:
    cases = []
    for path in sorted(DATA.glob("*.jsonl")):
        cases += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return cases


def _products(case: dict) -> list[tuple[str, str]]:
    if case.get("products"):
        return [(str(b), str(m)) for b, m in case["products"]]
    return [(p.brand, p.model) for p in CATALOG.category(case["category"]).products]


def _scores(text: str, products: list[tuple[str, str]]) -> tuple[int, ...] | None:
    ranking = HEURISTIC.read(text, products)
    return ranking.scores if ranking.parseable else None


def _first_stop(text: str) -> str | None:
    """The prefix the backend would stop at: the first line end where the rule is decided."""
    end = text.find("\n")
    while end != -1 and end + 1 < len(text):
        if LOOP_STOP.decided(text[: end + 1]):
            return text[: end + 1]
        end = text.find("\n", end + 1)
    return None


def test_every_labelled_answer_reads_the_same_where_the_rule_stops():
    cases = _cases()
    assert len(cases) > 900  # every set, web engines and the bundled model alike
    fired, changed = 0, []
    for case in cases:
        prefix = _first_stop(case["response"])
        if prefix is None:
            continue
        fired += 1
        products = _products(case)
        # every product's score, so every target's objective and every top-1 check
        if _scores(prefix, products) != _scores(case["response"], products):
            changed.append(case["id"])
    assert fired >= 5, "the rule should fire on the looping answers of the sets"
    assert changed == []


def test_two_repeated_lines_are_not_a_loop():
    json_like = '[\n {"rank": 1, "name": "A"},\n {"rank": 2, "name": "B"}\n]\n}\n]\n'
    assert not answer_loops(json_like)
    looping = "1. A - good.\n2. B - fine.\n3. C - ok.\n1. A - good.\n2. B - fine.\n3. C - ok.\n"
    assert answer_loops(looping)
    assert not answer_loops(looping[:-1])  # the last line is not complete yet
    assert not answer_loops("A\nA\nA\n")  # nothing before the repeats but the line itself


def test_an_early_stopped_answer_is_cached_apart(tmp_path):
    ask = [ChatMessage(role="user", content="Rank them.")]
    with WireFake([], responder=lambda request: "1. A\n2. B\n") as fake:
        model = get_model("openai:fake", base_url=fake.url, api_key="sk-test",
                          cache=RequestCache(tmp_path / "c.sqlite"))
        config = GenerateConfig(max_tokens=16)
        full = model.generate(ask, config)
        with model.stopping_early(StopRule("two-lines", lambda text: text.count("\n") >= 2)):
            early = model.generate(ask, config)
            again = model.generate(ask, config)
        model.close()
    assert not full.cached and not early.cached and again.cached
    assert full.cache_key != early.cache_key
    assert len(fake.requests) == 2


@pytest.mark.parametrize("text", ["", "no newline", "1. A\n"])
def test_short_answers_never_loop(text):
    assert not answer_loops(text)
