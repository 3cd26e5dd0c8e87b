"""The model layer: cache keys, retries and error classification, secrets.

Faults (429, 5xx, 4xx, timeouts, a dead port) come from a fake of the OpenAI *wire
protocol*: a real HTTP server on loopback that answers scripted status codes and bodies,
so the real ``openai`` SDK and our backend run unchanged.
"""

from __future__ import annotations

import time

import pytest

from poise import ModelError, ModelSpecError, ModelUnreachableError
from poise.models import (
    ChatMessage,
    GenerateConfig,
    OpenAIModel,
    RequestCache,
    RetryPolicy,
    cache_key,
    get_model,
    redact_url,
)

from .wirefake import WireFake, completion, error

FAST = RetryPolicy(max_attempts=3, initial_wait_s=0.01, max_wait_s=0.02)
HELLO = [ChatMessage(role="user", content="hello")]


def test_retries_429_and_5xx_then_succeeds():
    with WireFake([error(429, "slow down"), error(503, "busy"), (200, completion("ok answer"), 0)]) as fake:
        model = OpenAIModel("openai:fake", "fake", base_url=fake.url, retry=FAST)
        response = model.generate(HELLO)
    assert response.text == "ok answer"
    assert len(fake.requests) == 3
    assert model.usage.retries == 2
    assert model.usage.prompt_tokens == 7 and model.usage.completion_tokens == 3


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_are_not_retried(status):
    with WireFake([error(status, "bad request body")]) as fake:
        model = OpenAIModel("openai:fake", "fake", base_url=fake.url, retry=FAST)
        with pytest.raises(ModelError) as info:
            model.generate(HELLO)
    assert len(fake.requests) == 1
    assert str(status) in info.value.one_line()


def test_persistent_5xx_gives_up_after_max_attempts():
    with WireFake([error(500, "boom")] * 5) as fake:
        model = OpenAIModel("openai:fake", "fake", base_url=fake.url, retry=FAST)
        with pytest.raises(ModelError, match="HTTP 500: boom"):
            model.generate(HELLO)
    assert len(fake.requests) == FAST.max_attempts


def test_timeout_is_retried_then_reported():
    with WireFake([(200, completion(), 1.0)] * 3) as fake:
        model = OpenAIModel("openai:fake", "fake", base_url=fake.url, retry=FAST, timeout_s=0.2)
        with pytest.raises(ModelUnreachableError, match=r"did not answer within 0\.2 s"):
            model.generate(HELLO)
    assert len(fake.requests) == FAST.max_attempts


def test_unreachable_server_says_so():
    from tests.conftest import free_port

    model = OpenAIModel("openai:fake", "fake", base_url=f"http://127.0.0.1:{free_port()}/v1", retry=FAST)
    with pytest.raises(ModelUnreachableError, match="cannot reach the server"):
        model.generate(HELLO)


def test_request_carries_seed_sampling_and_logprobs():
    with WireFake([]) as fake:
        model = OpenAIModel("openai:fake", "fake", base_url=fake.url, retry=FAST)
        config = GenerateConfig(seed=42, temperature=0.3, max_tokens=50, logprobs=True, top_logprobs=2)
        response = model.generate(HELLO, config)
    sent = fake.requests[0]
    assert sent["seed"] == 42 and sent["temperature"] == 0.3 and sent["max_tokens"] == 50
    assert sent["logprobs"] is True and sent["top_logprobs"] == 2
    assert response.logprobs and response.logprobs[0].token == "1"
    assert response.logprobs[0].top[0].logprob == pytest.approx(-0.1)


def test_empty_response_is_an_error():
    with WireFake([(200, completion(""), 0)]) as fake:
        model = OpenAIModel("openai:fake", "fake", base_url=fake.url, retry=FAST)
        with pytest.raises(ModelError, match="empty response"):
            model.generate(HELLO)


def test_cache_serves_reruns_and_stores_no_secret(tmp_path, monkeypatch):
    secret = "sk-test-SECRET-value-123"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    cache = RequestCache(tmp_path / "cache.sqlite")
    with WireFake([]) as fake:
        model = OpenAIModel("openai:fake", "fake", base_url=fake.url, retry=FAST, cache=cache)
        first = model.generate(HELLO, GenerateConfig(seed=1))
        second = model.generate(HELLO, GenerateConfig(seed=1))
        third = model.generate(HELLO, GenerateConfig(seed=2))
    assert fake.headers[0]["authorization"] == f"Bearer {secret}"  # the key is used ...
    assert len(fake.requests) == 2  # ... the rerun cost nothing, a new seed is a new request
    assert not first.cached and second.cached and not third.cached
    assert second.text == first.text
    cache.close()
    for path in tmp_path.iterdir():  # ... and never written down
        assert secret.encode() not in path.read_bytes()


def test_cache_key_changes_only_with_what_changes_the_output():
    ident = {"backend": "openai", "model": "m"}
    base = cache_key(ident, HELLO, GenerateConfig())
    assert base == cache_key(dict(ident), list(HELLO), GenerateConfig())
    assert base != cache_key(ident, HELLO, GenerateConfig(seed=1))
    assert base != cache_key(ident, HELLO, GenerateConfig(temperature=0.5))
    assert base != cache_key({"backend": "openai", "model": "n"}, HELLO, GenerateConfig())
    assert base != cache_key(ident, [ChatMessage(role="user", content="hello!")], GenerateConfig())


def test_identity_and_urls_hold_no_credentials():
    model = OpenAIModel("openai:m", "m", base_url="https://user:pw@example.test/v1/#api-key=abc", api_key="k")
    assert model.identity() == {"backend": "openai", "base_url": "https://example.test/v1", "model": "m"}
    assert redact_url("http://a:b@h:8080/v1?key=1#x") == "http://h:8080/v1"


def test_concurrency_is_bounded():
    with WireFake([(200, completion(), 0.2)] * 6) as fake:
        model = OpenAIModel("openai:fake", "fake", base_url=fake.url, retry=FAST, max_concurrency=2)
        start = time.perf_counter()
        results = list(model.generate_many(
            [([ChatMessage(role="user", content=f"q{i}")], None) for i in range(6)], concurrency=6))
        elapsed = time.perf_counter() - start
    assert all(not isinstance(r, Exception) for r in results)
    assert len(fake.requests) == 6
    assert elapsed >= 0.55  # 6 calls of 0.2 s, 2 at a time: at least 3 rounds


@pytest.mark.parametrize("spec, message", [
    ("foo", "unknown model spec"),
    ("local:extra", "unknown model spec"),
    ("llamacpp:", "names no file"),
    ("llamacpp:/no/such/model.gguf", "model file not found"),
    ("openai:", "names no model"),
])
def test_bad_specs(spec, message):
    with pytest.raises(ModelSpecError, match=message):
        get_model(spec, base_url="http://127.0.0.1:9/v1")


def test_openai_without_key_or_base_url_is_refused(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ModelSpecError, match="no API key"):
        get_model("openai:gpt-4o-mini")
