"""Every reply body read within its attempt's time and a size. The HTTP client's read timeout
bounds each read, not the body: a server that trickles its body (a byte within every timeout)
would hold a call for ever, and one that sends without end would fill the memory. The bound is
put on the response's byte stream as the client receives the response (an event hook), so it
holds for the bodies the SDK reads itself (an error's) as for those poise reads."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from .._errors import ModelError

#: The largest reply body read: a chat completion, its log-probabilities included, is far smaller.
MAX_REPLY_BYTES = 64 * 2**20


def bound_body(response: Any, where: str, timeout_error: Callable[..., Exception]) -> None:
    """Make ``response``'s body stream raise ``timeout_error(request=...)`` once it has taken
    longer than the request's read timeout, and a ModelError past MAX_REPLY_BYTES."""
    http = sys.modules[type(response).__module__.partition(".")[0]]  # httpx or its successor
    seconds = (response.request.extensions.get("timeout") or {}).get("read")
    inner = response.stream
    deadline = time.monotonic() + seconds if seconds else None

    class Bounded(http.SyncByteStream):  # type: ignore[misc,name-defined]
        def __iter__(self) -> Iterator[bytes]:
            size = 0
            for chunk in inner:
                size += len(chunk)
                if size > MAX_REPLY_BYTES:
                    raise ModelError(f"the server at {where} sent a reply of more than {MAX_REPLY_BYTES // 2**20} "
                                     "MiB, which no chat completion needs",
                                     "check that --base-url points at an OpenAI-compatible API")
                if deadline is not None and time.monotonic() > deadline:
                    raise timeout_error(request=response.request)
                yield chunk

        def close(self) -> None:
            inner.close()

    response.stream = Bounded()
