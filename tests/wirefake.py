"""A fake of the OpenAI chat-completions *wire protocol*: a real HTTP server on loopback
that answers scripted status codes, bodies and delays, for faults a real server won't make."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def completion(text: str = "1. Oster Pro 1200", logprobs: list[dict] | None = None) -> dict:
    """A chat completion whose log-probabilities are those of its own text's tokens (each
    its own only alternative) unless ``logprobs`` gives them (see ``token_logprobs``)."""
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "fake-model",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text},
                     "logprobs": {"content": logprobs if logprobs is not None else token_logprobs(text)}}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


def tokens_of(text: str) -> list[str]:
    """A plausible split of ``text`` into tokens (words with their leading space, digits,
    punctuation): the pieces concatenate to the text."""
    return re.findall(r"\s*[A-Za-z]+|\s*\d|\s*[^\sA-Za-z\d]|\s+", text)


def token_logprobs(text: str, alternatives: dict[int, dict[str, float]] | None = None) -> list[dict]:
    """OpenAI-shaped ``logprobs.content`` for ``text``: each token at -0.1 with itself as its only
    top alternative, except at the token indices in ``alternatives`` (token -> logprob there)."""
    out = []
    for i, token in enumerate(tokens_of(text)):
        top = (alternatives or {}).get(i, {token: -0.1})
        out.append({"token": token, "logprob": top.get(token, -0.1), "bytes": None,
                    "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top.items()]})
    return out


Reply = tuple  # (status, body, delay_s) or (status, body, delay_s, headers); body: a dict (sent as
# JSON) or str/bytes (sent as they are); a script entry may also be a function of the request
# (body, headers) that returns such a tuple.


class WireFake:
    """Answers POST /v1/chat/completions from a script of replies (see ``Reply``)."""

    def __init__(self, script: list[Reply | Callable[[dict, dict], Reply]],
                 responder: Callable[[dict], str] | None = None, port: int = 0) -> None:
        """``script`` answers first, in order; then ``responder`` (the request -> the
        answer's text) when given, else a fixed completion."""
        self.script = list(script)
        self.responder = responder
        self.break_after: int | None = None  # answer 500 once this many requests were answered
        self.answered = 0
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.times: list[float] = []  # time.monotonic() of each request's arrival
        self.closed = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake.times.append(time.monotonic())
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.requests.append(body)
                fake.headers.append(headers)
                status, payload, delay, extra = fake._next_reply(body, headers)
                if fake.closed.wait(delay):
                    return  # the fake is shutting down: a hung reply never comes
                if status == 200:
                    fake.answered += 1
                data = payload if isinstance(payload, bytes) else (
                    payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
                try:
                    self.send_response(status)
                    extra = {"Content-Type": "application/json", **extra}
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _next_reply(self, body: dict, headers: dict) -> tuple[int, object, float, dict]:
        if self.break_after is not None and self.answered >= self.break_after:
            reply = error(500, "the server broke")
        elif self.script:
            reply = self.script.pop(0)
            reply = reply(body, headers) if callable(reply) else reply
        elif self.responder is not None:
            reply = 200, completion(self.responder(body)), 0
        else:
            reply = 200, completion(), 0
        status, payload, delay, *rest = reply
        return status, payload, delay, dict(rest[0]) if rest else {}

    def __enter__(self) -> WireFake:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()


def context_titles(request: dict) -> list[str]:
    """The product titles of the documents in a request, in context order (default template)."""
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    return re.findall(r"^\[\d+\] (.+)$", user, re.M)


def context_documents(request: dict) -> list[tuple[str, str]]:
    """(title, text) of each document in a request, in context order (default template)."""
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    parts = re.split(r"^\[\d+\] (.+)$", user, flags=re.M)
    return [(parts[i], parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2)]


def error(status: int, message: str) -> tuple[int, dict, float]:
    return (status, {"error": {"message": message, "type": "x", "code": status}}, 0)


def raw(status: int, body: str | bytes, content_type: str = "application/json", delay: float = 0) -> Reply:
    """A reply whose body is sent as it is (not JSON-encoded)."""
    return (status, body, delay, {"Content-Type": content_type})


def retry_after(status: int, value: str, message: str = "slow down") -> Reply:
    """An error reply that asks the client to wait (a Retry-After header)."""
    return (status, error(status, message)[1], 0, {"Retry-After": value})


def hang(seconds: float = 60.0) -> Reply:
    """A reply that takes ``seconds`` to start (a hung server); cut short when the fake closes."""
    return (200, completion(), seconds)


def echo_secrets(status: int = 500) -> Callable[[dict, dict], Reply]:
    """An error reply that quotes the request's Authorization header back, as some proxies do."""
    def reply(body: dict, headers: dict) -> Reply:
        auth = headers.get("authorization", "")
        key = auth.removeprefix("Bearer ")
        message = (f"upstream rejected request with headers {{'Authorization': '{auth}'}}; "
                   f"retry at https://user:{key}@proxy.example/v1?api_key={key} (key={key})")
        return (status, {"error": {"message": message, "type": "x", "code": status}}, 0)
    return reply
