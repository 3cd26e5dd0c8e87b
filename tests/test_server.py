"""The OpenAI-compatible backend against a real llama.cpp server on loopback, serving the
bundled model: the same SDK path a user's vLLM, Ollama or OpenAI endpoint takes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from poise.engine import SearchEngine
from poise.models import ChatMessage, GenerateConfig, RequestCache, get_model

from .conftest import tiny_category

pytestmark = pytest.mark.server


def test_generate_with_seed_usage_and_logprobs(llama_server):
    model = get_model("openai:smollm2", base_url=llama_server)
    ask = [ChatMessage(role="user", content="Name one fruit.")]
    config = GenerateConfig(max_tokens=12, seed=3, temperature=0.7, logprobs=True, top_logprobs=2)
    first = model.generate(ask, config)
    second = model.generate(ask, config)
    assert first.text.strip() and first.text == second.text  # seeded sampling repeats
    assert first.usage.prompt_tokens > 0 and first.usage.completion_tokens > 0
    assert first.logprobs and first.logprobs[0].logprob <= 0 and len(first.logprobs[0].top) == 2
    model.close()


def test_engine_and_cache_through_the_server(llama_server, tmp_path):
    model = get_model("openai:smollm2", base_url=llama_server, cache=RequestCache(tmp_path / "c.sqlite"))
    engine = SearchEngine(model, config=GenerateConfig(max_tokens=80, presence_penalty=0.6))
    first = engine.recommend(tiny_category(), seed=5)
    again = engine.recommend(tiny_category(), seed=5)
    assert first.response.text.strip() and not first.response.cached
    assert again.response.cached and again.response.text == first.response.text
    assert model.usage.calls == 1
    model.close()


def test_cli_recommend_json_against_the_server(llama_server, tiny_catalog_file, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "POISE_HOME")}
    result = subprocess.run(
        [sys.executable, "-m", "poise", "recommend", "--category", "blender", "--catalog", str(tiny_catalog_file),
         "--model", "openai:smollm2", "--base-url", llama_server, "--max-tokens", "80", "--json",
         "--store", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["response"].strip()
    assert len(data["ranking"]) == 3 and len(data["context_order"]) == 3
    scores = sorted(r["score"] for r in data["ranking"])
    assert all(s in (0, 1, 2, 3) for s in scores)
    assert data["parseable"] in (True, False)
