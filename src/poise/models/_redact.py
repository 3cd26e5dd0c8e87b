"""Secrets out of error text, and untrusted reply text made inert for one line.

Every error a model backend raises passes through :func:`redact_secrets` before it is
raised, so a server that echoes the request (an ``Authorization`` header, a key in a URL)
cannot put the key on a terminal, in the store or in a report. The store and the CLI may
apply it again to any text they did not build themselves.
"""

from __future__ import annotations

import os
import re
import threading
import unicodedata

REDACTED = "[redacted]"

#: Secrets shorter than this are not replaced by value (they would mangle ordinary words);
#: the patterns below still catch them behind ``Bearer``, ``Authorization:`` or ``key=``.
MIN_SECRET_CHARS = 4

#: Environment variables whose values are treated as secrets.
_SECRET_ENV = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD)", re.I)

_KNOWN: set[str] = set()
_KNOWN_LOCK = threading.Lock()

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer xxx / Basic xxx, as a header line or a quoted JSON value
    (re.compile(r"((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)[^\"'\r\n,}]+", re.I), rf"\1{REDACTED}"),
    (re.compile(r"(\bbearer\s+)[^\s\"',;}]+", re.I), rf"\1{REDACTED}"),
    # api-key: xxx, x-api-key=xxx, "api_key": "xxx", ?key=xxx&, token=xxx, password=xxx
    (re.compile(r"((?<![\w-])(?:x-)?(?:api[_-]?key|access[_-]?token|token|key|secret|password|passwd)"
                r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&#,;}]+", re.I), rf"\1{REDACTED}"),
    # scheme://user:password@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@", re.I), rf"\1{REDACTED}@"),
    # OpenAI-style keys, wherever they appear
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), REDACTED),
)


def register_secret(value: str | None) -> None:
    """Remember ``value`` (an API key) so that it is redacted by value from now on."""
    if value and len(value) >= MIN_SECRET_CHARS:
        with _KNOWN_LOCK:
            _KNOWN.add(value)


def redact_keys(text: str) -> str:
    """``text`` (a model's answer) with every key a backend was given (see
    :func:`register_secret`) replaced by value. No patterns and no environment scan: in an
    answer 'key=' or 'Bearer' are ordinary words, and an unrelated variable's value may be one."""
    with _KNOWN_LOCK:
        known = sorted(_KNOWN, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_split_keys(pieces: list[str]) -> list[str]:
    """``pieces`` (an answer's tokens, in order) with every known key redacted, also one split
    across several of them: each piece keeps its characters outside a key, the piece where a key
    starts holds the mark, so the pieces still make up the answer's redacted text."""
    joined = "".join(pieces)
    with _KNOWN_LOCK:
        known = [s for s in sorted(_KNOWN, key=len, reverse=True) if s in joined]
    if not known:
        return list(pieces)
    hidden: dict[int, bool] = {}  # position in ``joined`` -> whether a key starts there
    for secret in known:
        for found in re.finditer(re.escape(secret), joined):
            if not any(i in hidden for i in range(*found.span())):
                hidden.update({i: i == found.start() for i in range(*found.span())})
    out, at = [], 0
    for piece in pieces:
        out.append("".join(REDACTED if hidden.get(i) else c for i, c in enumerate(piece, at) if hidden.get(i, True)))
        at += len(piece)
    return out


def _secrets(extra: tuple[str, ...]) -> list[str]:
    with _KNOWN_LOCK:
        found = set(_KNOWN)
    found.update(v for k, v in os.environ.items() if _SECRET_ENV.search(k))
    found.update(extra)
    # longest first, so a key that contains another is replaced whole
    return sorted((s for s in found if s and len(s) >= MIN_SECRET_CHARS), key=len, reverse=True)


def redact_secrets(text: str, *secrets: str) -> str:
    """``text`` without API keys, bearer tokens, ``Authorization`` values, ``key=`` / ``token=``
    values and URL passwords.

    Known keys (every key an OpenAI backend was given, the values of environment variables
    named like ``*API_KEY*``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, and ``secrets``) are
    replaced wherever they occur; the patterns catch the rest.
    """
    if not text:
        return text
    for secret in _secrets(secrets):
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def inert_excerpt(text: str, limit: int = 80) -> str:
    """At most ``limit`` characters of untrusted text, on one line, secrets redacted, with
    control, format (zero-width, bidi) and other invisible characters shown as ``\\uXXXX``."""
    text = redact_secrets(" ".join(str(text).split()))
    cut = text[:limit]
    shown = "".join(c if c == " " or unicodedata.category(c)[0] not in "CZ" else f"\\u{ord(c):04x}" for c in cut)
    return shown + ("..." if len(text) > limit else "")
