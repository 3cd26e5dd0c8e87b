"""Server faults against the wire-protocol fake: Retry-After, a hung server, an echoed
secret, replies that are not JSON or not of the right shape.

Waits are measured with a monotonic clock; Retry-After values are small (1-2 s) so the
file runs in seconds.
"""

from __future__ import annotations

import time
import traceback
from email.utils import formatdate

import pytest

from poise import ModelError, ModelUnreachableError
from poise.models import ChatMessage, OpenAIModel, RetryPolicy, parse_retry_after, redact_secrets

from .wirefake import WireFake, completion, echo_secrets, error, hang, raw, retry_after

FAST = RetryPolicy(max_attempts=3, initial_wait_s=0.01, max_wait_s=0.02)
HELLO = [ChatMessage(role="user", content="hello")]
SECRET = "sk-poise-test-7f3a9c1e5b2d4f60a8c7e9b1"


def model_for(fake: WireFake, policy: RetryPolicy = FAST, **kwargs) -> OpenAIModel:
    return OpenAIModel("openai:fake", "fake", base_url=fake.url, retry=policy, **kwargs)


def gap(fake: WireFake, i: int = 0) -> float:
    """Seconds between the arrival of request i and request i + 1."""
    return fake.times[i + 1] - fake.times[i]


# -- Retry-After ---------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_is_honoured(status):
    with WireFake([retry_after(status, "1"), (200, completion("ok"), 0)]) as fake:
        response = model_for(fake).generate(HELLO)
    assert response.text == "ok"
    assert gap(fake) >= 0.9  # the backoff alone would wait 0.01-0.02 s


def test_retry_after_http_date_is_honoured():
    when = formatdate(time.time() + 2, usegmt=True)  # whole seconds: waits between 1 and 2 s
    with WireFake([retry_after(429, when), (200, completion("ok"), 0)]) as fake:
        model_for(fake).generate(HELLO)
    assert 0.9 <= gap(fake) < 4


def test_retry_after_ms_is_honoured():
    reply = (429, error(429, "slow")[1], 0, {"retry-after-ms": "1000"})
    with WireFake([reply, (200, completion("ok"), 0)]) as fake:
        model_for(fake).generate(HELLO)
    assert gap(fake) >= 0.9


def test_retry_after_is_capped():
    policy = RetryPolicy(max_attempts=3, initial_wait_s=0.01, max_wait_s=0.02, max_retry_after_s=0.3)
    with WireFake([retry_after(429, "3600"), (200, completion("ok"), 0)]) as fake:
        model_for(fake, policy).generate(HELLO)
    assert 0.25 <= gap(fake) < 2


def test_retry_after_past_the_deadline_gives_up_at_once_and_says_why():
    policy = RetryPolicy(max_attempts=5, initial_wait_s=0.01, timeout_s=1, deadline_s=2)
    start = time.monotonic()
    with WireFake([retry_after(429, "30")] * 5) as fake, pytest.raises(ModelError) as info:
        model_for(fake, policy).generate(HELLO)
    assert time.monotonic() - start < 1.5
    assert len(fake.requests) == 1
    line = info.value.one_line()
    assert "HTTP 429" in line and "waiting 30 s as the server asked" in line and "deadline of 2 s" in line
    assert "\n" not in line


def test_a_bad_retry_after_falls_back_to_backoff():
    with WireFake([retry_after(503, "soon"), (200, completion("ok"), 0)]) as fake:
        model_for(fake).generate(HELLO)
    assert gap(fake) < 0.5


@pytest.mark.parametrize("value, expected", [
    ("0", 0.0), ("2", 2.0), ("1.5", 1.5), ("-3", 0.0), ("banana", None), ("", None), (None, None),
    ("inf", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
])
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date_in_the_future():
    assert parse_retry_after(formatdate(1_000_010, usegmt=True), now=1_000_000) == pytest.approx(10)


# -- a hung server -----------------------------------------------------------------------------------
def test_a_hung_server_fails_within_the_deadline():
    policy = RetryPolicy(max_attempts=5, initial_wait_s=0.01, max_wait_s=0.02, timeout_s=0.3)  # deadline 0.9 s
    start = time.monotonic()
    with WireFake([hang(30)] * 5) as fake, pytest.raises(ModelUnreachableError) as info:
        model_for(fake, policy).generate(HELLO)
    elapsed = time.monotonic() - start
    assert elapsed < 0.9 + 0.6, elapsed  # never 5 x 0.3 s, let alone 5 x 120 s
    assert len(fake.requests) <= 3
    line = info.value.one_line()
    assert "did not answer within 0.3 s" in line and "--timeout" in line and "\n" not in line


def test_timeout_given_to_the_backend_sets_the_attempts_and_the_deadline():
    start = time.monotonic()
    with WireFake([hang(30)] * 5) as fake:
        model = model_for(fake, RetryPolicy(max_attempts=5, initial_wait_s=0.01), timeout_s=0.2)
        with pytest.raises(ModelUnreachableError, match=r"deadline 0\.6 s"):
            model.generate(HELLO)
    assert time.monotonic() - start < 1.3


def test_an_explicit_deadline_cuts_the_last_attempt_short():
    policy = RetryPolicy(max_attempts=5, initial_wait_s=0.01, timeout_s=0.5, deadline_s=0.7)
    start = time.monotonic()
    with WireFake([hang(30)] * 5) as fake, pytest.raises(ModelUnreachableError, match="deadline"):
        model_for(fake, policy).generate(HELLO)
    assert time.monotonic() - start < 1.3
    assert len(fake.requests) == 2


def test_a_slow_answer_within_the_timeout_is_kept():
    with WireFake([(200, completion("late but fine"), 0.3)]) as fake:
        response = model_for(fake, RetryPolicy(timeout_s=2)).generate(HELLO)
    assert response.text == "late but fine"


@pytest.mark.parametrize("bad", [
    dict(timeout_s=0), dict(timeout_s=-1), dict(timeout_s=float("nan")), dict(deadline_s=0),
    dict(max_attempts=0), dict(max_attempts=True), dict(max_retry_after_s=-1), dict(timeout_s="5"),
])
def test_retry_policy_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        RetryPolicy(**bad)


# -- an echoed secret --------------------------------------------------------------------------------
def test_an_echoed_key_never_appears_in_the_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with WireFake([echo_secrets(500)] * 3) as fake:
        model = model_for(fake, api_key=SECRET)
        with pytest.raises(ModelError) as info:
            model.generate(HELLO)
    assert fake.headers[0]["authorization"] == f"Bearer {SECRET}"  # the server did see the key
    err = info.value
    shown = " ".join([str(err), err.one_line(), repr(err), err.hint or "",
                      "".join(traceback.format_exception(err))])
    assert "HTTP 500" in shown and "[redacted]" in shown
    assert SECRET not in shown and SECRET[-12:] not in shown


def test_an_echoed_key_from_the_environment_is_redacted(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET + "-env")
    with WireFake([echo_secrets(400)]) as fake, pytest.raises(ModelError) as info:
        model_for(fake).generate(HELLO)
    assert SECRET not in info.value.one_line()


def test_an_echoed_key_in_a_reply_that_is_not_json_is_redacted():
    body = f"<html>Authorization: Bearer {SECRET} was refused</html>"
    with WireFake([raw(200, body, "text/html")]) as fake, pytest.raises(ModelError) as info:
        model_for(fake, api_key=SECRET).generate(HELLO)
    assert "not JSON" in info.value.one_line()
    assert SECRET not in info.value.one_line()


UNKNOWN = "Zq81poiseNeverRegistered"  # caught by the patterns alone, never by value


@pytest.mark.parametrize("text", [
    f"Authorization: Bearer {UNKNOWN}",
    f"{{'authorization': 'Bearer {UNKNOWN}'}}",
    f'"Authorization":"Basic {UNKNOWN}"',
    f"token rejected: Bearer {UNKNOWN}.",
    f"GET https://api.example/v1?api_key={UNKNOWN}&x=1",
    f"GET https://api.example/v1?key={UNKNOWN}",
    f"api-key: {UNKNOWN}",
    f'{{"api_key": "{UNKNOWN}"}}',
    f"proxy https://alice:{UNKNOWN}@proxy.example:8080/v1 refused",
    f"the key sk-{UNKNOWN}xyz is not valid",
])
def test_redact_secrets_catches_every_form(text):
    out = redact_secrets(text)
    assert UNKNOWN not in out and "[redacted]" in out


def test_redact_secrets_takes_extra_secrets_and_leaves_plain_text_alone():
    assert redact_secrets("my pass is hunter22!", "hunter22!") == "my pass is [redacted]"
    plain = "the server at http://127.0.0.1:8080/v1 answered HTTP 500: boom"
    assert redact_secrets(plain) == plain


# -- replies that are not what they should be -----------------------------------------------------
@pytest.mark.parametrize("body, content_type", [
    ("<!DOCTYPE html><html><body>Gateway says hi</body></html>", "text/html"),
    ("<!DOCTYPE html><html><body>Gateway says hi</body></html>", "application/json"),
    ("Expecting value", "text/plain"),
])
def test_a_200_reply_that_is_not_json_says_so(body, content_type):
    with WireFake([raw(200, body, content_type)] * 3) as fake, pytest.raises(ModelError) as info:
        model_for(fake).generate(HELLO)
    line = info.value.one_line()
    assert f"the server at {fake.url} replied with something that is not JSON" in line
    assert body[:20] in line and "JSONDecodeError" not in line
    assert len(fake.requests) == 1  # not retried: it would say the same again


def test_a_not_json_reply_is_shown_inert_and_short():
    body = "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07 \u202eevil\u200b" + "x" * 500
    with WireFake([raw(200, body, "text/html")]) as fake, pytest.raises(ModelError) as info:
        model_for(fake).generate(HELLO)
    line = info.value.one_line()
    assert "\x1b" not in line and "\u202e" not in line and "\u200b" not in line
    assert "\\u202e" in line and len(line) < 400


def test_an_empty_200_body_says_so():
    with WireFake([raw(200, "")]) as fake, pytest.raises(ModelError, match=r"not JSON \(an empty body"):
        model_for(fake).generate(HELLO)


@pytest.mark.parametrize("payload, missing", [
    ({}, "no choices"),
    ({"choices": []}, "no choices[0]"),
    ({"choices": "nope"}, "no choices"),
    ({"choices": [{"index": 0}]}, "no choices[0].message"),
    ({"choices": [{"message": {"role": "assistant"}}]}, "no choices[0].message.content"),
    ({"choices": [{"message": {"role": "assistant", "content": None}}]}, "no choices[0].message.content"),
    ({"choices": [{"message": {"content": 42}}]}, "no choices[0].message.content"),
    ([1, 2], "JSON that is not an object"),
])
def test_a_reply_of_the_wrong_shape_says_what_is_missing(payload, missing):
    with WireFake([(200, payload, 0)]) as fake, pytest.raises(ModelError) as info:
        model_for(fake).generate(HELLO)
    line = info.value.one_line()
    assert missing in line and "max_tokens" not in line


def test_an_error_object_in_a_200_reply_is_named():
    with (
        WireFake([(200, {"error": {"message": "model overloaded"}}, 0)]) as fake,
        pytest.raises(ModelError, match='replied with an error: "model overloaded"'),
    ):
        model_for(fake).generate(HELLO)


def test_a_refusal_is_named():
    payload = {"choices": [{"message": {"role": "assistant", "content": None, "refusal": "I can't help"}}]}
    with (
        WireFake([(200, payload, 0)]) as fake,
        pytest.raises(ModelError, match="refused to answer: \"I can't help\""),
    ):
        model_for(fake).generate(HELLO)


def test_an_empty_answer_cut_by_max_tokens_says_raise_max_tokens():
    reply = completion("")
    reply["choices"][0]["finish_reason"] = "length"
    with WireFake([(200, reply, 0)]) as fake, pytest.raises(ModelError, match="used up max_tokens"):
        model_for(fake).generate(HELLO)


def test_a_reply_without_usage_or_model_still_reads():
    payload = {"choices": [{"message": {"content": "1. Oster Pro 1200"}}]}
    with WireFake([(200, payload, 0)]) as fake:
        response = model_for(fake).generate(HELLO)
    assert response.text == "1. Oster Pro 1200" and response.model == "fake"
    assert response.usage.prompt_tokens == 0


# -- the same faults through the command line ----------------------------------------------------------
def cli(*args: str, store, env: dict | None = None):
    from .test_cli import poise

    return poise(*args, store=store, env=env)


def store_bytes(store) -> bytes:
    return b"".join(p.read_bytes() for p in store.rglob("*") if p.is_file())


def test_cli_timeout_bounds_a_hung_server(tmp_path):
    from .test_cli import assert_one_line_error

    with WireFake([hang(60)] * 10) as fake:
        start = time.monotonic()
        result = cli("recommend", "-c", "blender", "--model", "openai:fake", "--base-url", fake.url,
                     "--timeout", "0.5", "--json", store=tmp_path)
        elapsed = time.monotonic() - start
    assert_one_line_error(result, "did not answer within 0.5 s", "deadline 1.5 s per call", "--timeout")
    assert len(fake.requests) <= 3
    assert elapsed < 15  # the process start included; without --timeout it would wait 5 x 120 s


def test_cli_never_shows_or_stores_an_echoed_key(tmp_path):
    from .test_cli import assert_one_line_error

    with WireFake([echo_secrets(500)] * 4) as fake:
        result = cli("recommend", "-c", "blender", "--model", "openai:fake", "--base-url", fake.url,
                     "--max-attempts", "2", store=tmp_path, env={"OPENAI_API_KEY": SECRET})
    assert fake.headers[0]["authorization"] == f"Bearer {SECRET}"
    assert_one_line_error(result, "HTTP 500", "[redacted]")
    assert SECRET not in result.stdout + result.stderr
    assert store_bytes(tmp_path) and SECRET.encode() not in store_bytes(tmp_path)


def test_cli_catalog_outside_files_need_the_option(tmp_path):
    from .test_cli import assert_one_line_error

    (tmp_path / "outside.txt").write_text("words from outside the catalog")
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "a.txt").write_text("A glass jar.")
    path = tmp_path / "cat" / "c.csv"
    path.write_text("category,brand,model,document_file\nblender,Oster,Pro,a.txt\nblender,Ninja,Foodi,../outside.txt\n")
    refused = cli("catalog", "validate", str(path), store=tmp_path)
    assert_one_line_error(refused, "c.csv:3", "'../outside.txt' resolves outside", "--allow-outside-files")
    allowed = cli("catalog", "validate", str(path), "--allow-outside-files", store=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
