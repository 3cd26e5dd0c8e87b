"""A fake of the OpenAI chat-completions *wire protocol*: a real HTTP server on loopback
that answers scripted status codes, bodies and delays, for faults a real server won't make."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def completion(text: str = "1. Oster Pro 1200") -> dict:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "fake-model",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text},
                     "logprobs": {"content": [
                         {"token": "1", "logprob": -0.1, "bytes": None,
                          "top_logprobs": [{"token": "1", "logprob": -0.1, "bytes": None}]}]}}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


class WireFake:
    """Answers POST /v1/chat/completions from a script of (status, body, delay_s)."""

    def __init__(self, script: list[tuple[int, dict, float]],
                 responder: Callable[[dict], str] | None = None, port: int = 0) -> None:
        """``script`` answers first, in order; then ``responder`` (the request -> the
        answer's text) when given, else a fixed completion."""
        self.script = list(script)
        self.responder = responder
        self.break_after: int | None = None  # answer 500 once this many requests were answered
        self.answered = 0
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                if fake.break_after is not None and fake.answered >= fake.break_after:
                    status, payload, delay = error(500, "the server broke")
                elif fake.script:
                    status, payload, delay = fake.script.pop(0)
                elif fake.responder is not None:
                    status, payload, delay = 200, completion(fake.responder(body)), 0
                else:
                    status, payload, delay = 200, completion(), 0
                time.sleep(delay)
                if status == 200:
                    fake.answered += 1
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
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

    def __enter__(self) -> "WireFake":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
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


