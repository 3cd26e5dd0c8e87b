"""Every reply body read within its attempt's time and a size. The HTTP client's read timeout
bounds each read, not the body: a server that trickles its body (a byte within every timeout)
would hold a call for ever, and one that sends without end, or a small gzip body that inflates
to gigabytes, would fill the memory. The bound is put on the response's byte stream as the
client receives it (an event hook), so it holds for the bodies the SDK reads itself (an
error's) as for those poise reads; a gzip or deflate body is inflated here, within the bound."""

from __future__ import annotations

import sys
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from .._errors import ModelError

#: The largest reply body read (inflated): a chat completion, its log-probabilities included, is far smaller.
MAX_REPLY_BYTES = 64 * 2**20
#: The content encodings the client asks for, inflated here so that their size is bounded too.
_INFLATED = ("gzip", "x-gzip", "deflate")


def bound_body(response: Any, where: str, timeout_error: Callable[..., Exception]) -> None:
    """Make ``response``'s body stream raise ``timeout_error(request=...)`` once it has taken
    longer than the request's read timeout, and a ModelError past MAX_REPLY_BYTES."""
    http = sys.modules[type(response).__module__.partition(".")[0]]  # httpx or its successor
    seconds = (response.request.extensions.get("timeout") or {}).get("read")
    deadline = time.monotonic() + seconds if seconds else None
    inner = response.stream
    encoding = response.headers.get("content-encoding", "").strip().lower()
    inflating = encoding in _INFLATED
    if inflating:
        del response.headers["content-encoding"]  # inflated here: the client must not inflate it again

    def too_large() -> ModelError:
        return ModelError(f"the server at {where} sent a reply of more than {MAX_REPLY_BYTES // 2**20} MiB, "
                          "which no chat completion needs", "check that --base-url points at an OpenAI-compatible API")

    class Bounded(http.SyncByteStream):  # type: ignore[misc,name-defined]
        def __iter__(self) -> Iterator[bytes]:
            size, inflate = 0, None
            for raw in inner:
                if deadline is not None and time.monotonic() > deadline:
                    raise timeout_error(request=response.request)
                if inflating and inflate is None:
                    inflate = zlib.decompressobj(_window(encoding, raw))
                chunk = raw if inflate is None else _inflate(inflate, raw, MAX_REPLY_BYTES + 1 - size, where)
                size += len(chunk)
                if size > MAX_REPLY_BYTES or (inflate is not None and inflate.unconsumed_tail):
                    raise too_large()
                yield chunk

        def close(self) -> None:
            inner.close()

    response.stream = Bounded()


def _window(encoding: str, first: bytes) -> int:
    """zlib's wbits for a body: gzip; deflate with its zlib header (0x78 ...) or, as some servers
    send it, raw (the HTTP client reads both)."""
    if encoding != "deflate":
        return zlib.MAX_WBITS | 16
    return zlib.MAX_WBITS if first[:1] == b"\x78" else -zlib.MAX_WBITS


def _inflate(inflate: Any, data: bytes, most: int, where: str) -> bytes:
    """At most ``most`` bytes of ``data`` inflated (what is left over stays in ``unconsumed_tail``)."""
    try:
        return bytes(inflate.decompress(data, max(most, 1)))
    except zlib.error as exc:
        raise ModelError(f"the server at {where} sent a compressed reply that cannot be read ({exc})",
                         "check that --base-url points at an OpenAI-compatible API") from None
