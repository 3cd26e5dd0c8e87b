"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp server, Together,
Perplexity ...) through the ``openai`` SDK. The API key is read from the environment and
kept only in the client: it is never part of the identity, the cache or the store."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from .._errors import ModelError, ModelSpecError, ModelUnreachableError, RequestRejectedError
from ._base import ChatModel
from ._bounded import bound_body
from ._redact import inert_excerpt, register_secret
from ._reply import read_completion
from ._retry import parse_retry_after
from ._types import ChatMessage, ChatResponse, GenerateConfig

DEFAULT_BASE_URL = "https://api.openai.com/v1"
API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"


def redact_url(url: str) -> str:
    """The URL without user info, query or fragment: safe to store and print."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


class OpenAIModel(ChatModel):
    """An OpenAI-compatible endpoint; independent calls may run concurrently."""

    max_concurrency = 8

    def __init__(
        self,
        spec: str,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(spec, **kwargs)
        if timeout_s is not None:  # seconds per attempt; the deadline follows unless set
            self.retry = dataclasses.replace(self.retry, timeout_s=timeout_s)
        if not model:
            raise ModelSpecError(
                "the openai model spec names no model",
                "write it as openai:MODEL, e.g. openai:gpt-4o-mini",
            )
        self.model = model
        # an empty --base-url (an unset shell variable) is refused, never OpenAI's API silently; an empty
        # OPENAI_BASE_URL is unset, as the CLI reads it; spaces around a pasted URL are dropped
        given = base_url if base_url is not None else os.environ.get(BASE_URL_ENV) or None
        if given is not None and not given.strip():
            raise ModelSpecError(
                f"the base URL is blank (--base-url or {BASE_URL_ENV} is {given!r})",
                f"pass the server's URL, like http://127.0.0.1:8080/v1, or drop --base-url (unset {BASE_URL_ENV}) "
                f"for {DEFAULT_BASE_URL}",
            )
        self.base_url = given.strip(" \t") if given is not None else DEFAULT_BASE_URL  # CR/LF: refused below
        try:  # a bracket left open, a port out of range or not a number: urllib raises ValueError
            parts = urlsplit(self.base_url)
            redact_url(self.base_url)
        except ValueError as exc:  # the URL itself is not shown: it may hold a password
            raise ModelSpecError(f"cannot read the base URL ({inert_excerpt(str(exc))})",
                                 "pass --base-url like http://127.0.0.1:8080/v1") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ModelSpecError(
                f"not an http(s) URL: {redact_url(self.base_url)!r}",
                "pass --base-url like http://127.0.0.1:8080/v1",
            )
        if any(c in " \t" for c in self.base_url):  # the client would send it quoted, or to another host
            raise ModelSpecError(
                f"the base URL {redact_url(self.base_url)!r} holds a space",
                f"pass --base-url (or set {BASE_URL_ENV}) without spaces, like http://127.0.0.1:8080/v1",
            )
        if "?" in self.base_url.partition("#")[0]:  # a query, or a bare "?"
            # the client puts its path after the query (/v1/?x=1chat/completions), so the server's
            # 404 would blame the model; the query itself is not shown: it may hold a key
            raise ModelSpecError(
                f"the base URL {redact_url(self.base_url)!r} has a query string ('?...'), which the OpenAI "
                "client cannot send (the request would go to the wrong path)",
                f"pass --base-url (or set {BASE_URL_ENV}) without it, like http://127.0.0.1:8080/v1",
            )
        suffix = next((x for x in ("/chat/completions", "/completions") if parts.path.rstrip("/").endswith(x)), "")
        if suffix:  # the endpoint's own URL, copied whole: the client adds that path again
            shown = redact_url(self.base_url)
            raise ModelSpecError(
                f"the base URL {shown!r} ends in {suffix}, the path the client adds itself (the requests would go "
                f"to ...{suffix}/chat/completions)",
                f"pass the API's root as --base-url (or set {BASE_URL_ENV}): {shown.removesuffix(suffix)}",
            )
        key = api_key or os.environ.get(API_KEY_ENV)
        if not key:
            if redact_url(self.base_url) == DEFAULT_BASE_URL:
                raise ModelSpecError(
                    f"no API key for {DEFAULT_BASE_URL}",
                    f"set {API_KEY_ENV} in the environment, or pass --base-url for a local server",
                )
            key = "no-key"  # local OpenAI-compatible servers accept any key (not a secret: never redacted)
        else:
            register_secret(key)  # redacted from every error text and answer from now on
            _check_key(key, API_KEY_ENV if not api_key else "given")
        register_secret(parts.password)
        import openai  # lazy: only this backend needs the SDK

        self._openai = openai
        # redirects are not followed: a 301/302 turns the POST into a GET (the server's 404 or 405
        # would then blame the model), and one to another host drops the key; _describe_failure names them
        try:
            self._client = openai.OpenAI(
                api_key=key, base_url=self.base_url, max_retries=0, timeout=self.retry.timeout_s,
                http_client=openai.DefaultHttpxClient(follow_redirects=False, event_hooks={"response": [
                    lambda r: bound_body(r, redact_url(self.base_url), openai.APITimeoutError)]}),
            )
        except Exception as exc:  # httpx's InvalidURL (a control character, a bad IDNA host, too long); its module
            if not isinstance(exc, ValueError) and type(exc).__name__ != "InvalidURL":  # differs by openai version
                raise
            raise ModelSpecError(f"cannot use the base URL ({inert_excerpt(str(exc))})",
                                 f"pass --base-url (or set {BASE_URL_ENV}) like http://127.0.0.1:8080/v1") from None

    @property
    def timeout_s(self) -> float:
        """Seconds one attempt may take."""
        return self.retry.timeout_s

    def identity(self) -> dict[str, Any]:
        return {"backend": "openai", "base_url": redact_url(self.base_url), "model": self.model}

    def _generate(self, messages: list[ChatMessage], config: GenerateConfig) -> ChatResponse:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [m.model_dump() for m in messages],
            "temperature": config.temperature,
            "top_p": config.top_p,
            "max_tokens": config.max_tokens,
            "frequency_penalty": config.frequency_penalty,
            "presence_penalty": config.presence_penalty,
        }
        if config.stop:
            kwargs["stop"] = list(config.stop)
        if config.seed is not None:
            kwargs["seed"] = config.seed
        if config.json_schema:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "reply", "strict": True, "schema": json.loads(config.json_schema)}}
        if config.logprobs:
            kwargs["logprobs"] = True
            if config.top_logprobs:
                kwargs["top_logprobs"] = config.top_logprobs
        timeout = self._attempt_timeout()
        with self._client.chat.completions.with_streaming_response.create(**kwargs, timeout=timeout) as raw:
            body = self._read_body(raw)
        return read_completion(body, redact_url(self.base_url), self.model, config.logprobs)

    def _read_body(self, raw: Any) -> str:
        """A 200 reply's body, bounded in time and size (see ``bound_body``); a failure to read it
        is named as the SDK names it when it reads a body itself (a timeout, else a connection error)."""
        try:
            data = b"".join(raw.iter_bytes())
        except (ModelError, self._openai.APIError):  # the bounds' own
            raise
        except Exception as exc:  # the HTTP library's own errors (its module differs by openai version)
            timeout = "TimeoutException" in {c.__name__ for c in type(exc).__mro__}
            error = self._openai.APITimeoutError if timeout else self._openai.APIConnectionError
            raise error(request=raw.http_request) from exc
        return data.decode(raw.http_response.encoding or "utf-8", errors="replace")

    def _is_retryable(self, exc: BaseException) -> bool:
        o = self._openai
        if isinstance(exc, (o.APITimeoutError, o.APIConnectionError)):
            return True
        if isinstance(exc, o.APIStatusError):
            status: int = exc.status_code
            return status == 429 or status >= 500
        return False

    def _retry_after(self, exc: BaseException) -> float | None:
        response = getattr(exc, "response", None) if isinstance(exc, self._openai.APIStatusError) else None
        if response is None:
            return None
        millis = parse_retry_after(response.headers.get("retry-after-ms"))
        return millis / 1000 if millis is not None else parse_retry_after(response.headers.get("retry-after"))

    def _describe_failure(self, exc: BaseException) -> ModelError:
        o = self._openai
        where = redact_url(self.base_url)
        if isinstance(exc, o.APITimeoutError):
            return ModelUnreachableError(
                f"the server at {where} did not answer within {self.timeout_s:g} s per attempt "
                f"(deadline {self.retry.deadline:g} s per call)",
                "check that it is up and not overloaded, or allow it longer with --timeout SECONDS",
            )
        if isinstance(exc, o.APIConnectionError) and "complete message body" in str(exc.__cause__):
            # reached: it began its reply (httpx: "peer closed connection without sending complete message body")
            return ModelUnreachableError(
                f"the server at {where} closed the connection before its reply was complete "
                f"({inert_excerpt(str(exc.__cause__), 120)})",
                "check the server's log (it may have crashed or cut the reply short), then run the command again",
            )
        if isinstance(exc, o.APIConnectionError):
            return ModelUnreachableError(
                f"cannot reach the server at {where}",
                "check that it is running and that --base-url / OPENAI_BASE_URL is right",
            )
        if isinstance(exc, o.APIStatusError):
            status = exc.status_code
            detail = _error_detail(exc)
            if status in (401, 403):
                return ModelError(
                    f"the server at {where} refused the API key (HTTP {status})",
                    f"check {API_KEY_ENV}",
                )
            if status == 404:
                return ModelError(
                    f"the server at {where} has no model {self.model!r}, or no chat endpoint at "
                    f"{where}/chat/completions (HTTP 404{detail})",
                    "check the model name in --model openai:MODEL, and that --base-url is the API's root "
                    "(it often ends in /v1)",
                )
            if 300 <= status < 400:
                return ModelError(f"the server at {where} redirects {_redirect_target(exc)} (HTTP {status})",
                                  "pass the address it redirects to as --base-url (redirects are not followed)")
            if status in (400, 422):  # this request's content: another may pass
                return RequestRejectedError(f"the server at {where} answered HTTP {status}{detail}")
            return ModelError(f"the server at {where} answered HTTP {status}{detail}")
        return ModelError(f"model {self.spec} failed: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        self._client.close()


def _error_detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    message = None
    if isinstance(body, dict):
        err = body.get("error", body)
        message = err.get("message") if isinstance(err, dict) else str(err)
    if not message:
        return ""
    return f": {inert_excerpt(str(message), 200)}"


def _check_key(key: str, source: str) -> None:
    """Refuse a key that cannot be sent in an Authorization header (a line break from a copied
    file, a typographic quote), naming what is wrong and never the key."""
    where = f"the API key in {source}" if source != "given" else "the API key given"
    for i, c in enumerate(key):
        if c in "\r\n":
            what = "a line break"
        elif c.isspace():
            what = "a space"
        elif not c.isascii():
            what = "a character that is not ASCII"
        elif not c.isprintable():
            what = "a control character"
        else:
            continue
        raise ModelSpecError(f"{where} holds {what} (character {i + 1} of {len(key)}), so it cannot be sent",
                             f"set {API_KEY_ENV} to the key alone: letters, digits, '-' and '_'")


def _redirect_target(exc: Any) -> str:
    """'to URL' for a redirect's Location (resolved, without user info or query, inert; a
    trailing /chat/completions dropped: what --base-url takes), or 'elsewhere'."""
    location = exc.response.headers.get("location")
    if not location:
        return "elsewhere"
    try:
        target = redact_url(urljoin(str(exc.response.url), location)).removesuffix("/chat/completions")
    except ValueError:
        return f'elsewhere ("{inert_excerpt(location, 60)}")'
    return f"to {inert_excerpt(target, 200)}"
