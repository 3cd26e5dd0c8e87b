"""Read an OpenAI chat-completions reply body, and say exactly what is wrong with a bad one."""

from __future__ import annotations

import json
from typing import Any

from .._errors import ModelError
from ._llamacpp import _parse_logprobs
from ._redact import inert_excerpt, redact_keys
from ._types import ChatResponse, Usage

_HINT = "check that --base-url points at an OpenAI-compatible API (it usually ends in /v1)"


def read_completion(body: str, where: str, model: str, want_logprobs: bool) -> ChatResponse:
    """The response in a 200 reply's ``body``; a one-line ModelError naming what is missing."""
    data = _json(body, where)
    choice = _choice(data, where)
    text = redact_keys(choice["message"]["content"])  # a server may echo the key: never stored or shown
    raw_usage = data.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    logprobs = None
    if want_logprobs:
        try:
            logprobs = _parse_logprobs(choice.get("logprobs"))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ModelError(f"the server at {where} replied with malformed choices[0].logprobs", _HINT) from None
    finish = choice.get("finish_reason")
    return ChatResponse(
        text=text,
        model=redact_keys(data["model"]) if isinstance(data.get("model"), str) and data["model"] else model,
        finish_reason=redact_keys(finish) if isinstance(finish, str) else None,  # stored as it is
        usage=Usage(prompt_tokens=_count(usage.get("prompt_tokens")),
                    completion_tokens=_count(usage.get("completion_tokens"))),
        logprobs=logprobs,
    )


def _json(body: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        shown = f'it starts "{inert_excerpt(body)}"' if body.strip() else "an empty body"
        raise ModelError(f"the server at {where} replied with something that is not JSON ({shown})", _HINT) from None
    except RecursionError:  # '[[[[...' deeper than the parser recurses: no reply a chat API gives
        raise ModelError(f"the server at {where} replied with JSON nested too deeply to read", _HINT) from None
    if not isinstance(data, dict):
        raise ModelError(f"the server at {where} replied with JSON that is not an object "
                         f"(a {type(data).__name__})", _HINT)
    return data


def _choice(data: dict[str, Any], where: str) -> dict[str, Any]:
    """``choices[0]`` once it has a ``message`` whose ``content`` is text."""
    error = data.get("error")
    if error and "choices" not in data:
        message = error.get("message") if isinstance(error, dict) else error
        raise ModelError(f'the server at {where} replied with an error: "{inert_excerpt(str(message), 200)}"')
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        missing = "choices" if not isinstance(choices, list) else "choices[0]"
        raise ModelError(f"the server at {where} replied, but the reply has no {missing}", _HINT)
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise ModelError(f"the server at {where} replied, but the reply has no choices[0].message", _HINT)
    content = message.get("content")
    if isinstance(content, str):
        return choices[0]
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal.strip():
        raise ModelError(f'the model at {where} refused to answer: "{inert_excerpt(refusal, 200)}"',
                         "change the prompt template or try another model")
    raise ModelError(f"the server at {where} replied, but the reply has no choices[0].message.content", _HINT)


#: the most tokens one call is taken to have spent: a larger figure is a broken server's, and past
#: SQLite's 64-bit integers it could not be stored (nor summed over a run's calls)
MAX_TOKEN_COUNT = 2**31 - 1


def _count(value: Any) -> int:
    """A token count from a reply's ``usage``; 0 (not counted) for anything but a whole number
    from 0 to MAX_TOKEN_COUNT."""
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKEN_COUNT
    return value if ok else 0
