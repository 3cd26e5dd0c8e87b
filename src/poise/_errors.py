"""Errors poise raises on purpose: each says what is wrong and how to fix it."""

from __future__ import annotations


class PoiseError(Exception):
    """Base class: ``message`` says what went wrong, ``hint`` how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The error as one line for a terminal: what is wrong, then how to fix it; each part
        clipped (a value echoed whole, a list of every product, can run to megabytes)."""
        text = _clip(" ".join(self.message.split()), MAX_MESSAGE_CHARS).rstrip(".")
        if self.hint:
            hint = _clip(" ".join(self.hint.split()), MAX_HINT_CHARS).rstrip(".")
            text += f": {hint}" if text.endswith(")") else f"; {hint}"
        if not text.endswith(("?", "!")):
            text += "."
        return text


#: the most characters of an error's message and of its hint on the one line
MAX_MESSAGE_CHARS = 600
MAX_HINT_CHARS = 300


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    keep = limit - 40
    return f"{text[:keep]}… ({len(text) - keep:,} more characters)"


class CatalogError(PoiseError):
    """A catalog file or folder is missing or malformed; names the file, line and field."""


class UnknownCategoryError(PoiseError):
    """The catalog has no such category."""


class ModelSpecError(PoiseError):
    """A model spec string names no known backend, or a file that does not exist."""


class ModelError(PoiseError):
    """A model call failed for good (after any retries)."""


class ModelUnreachableError(ModelError):
    """The model server could not be reached."""


class EmptyResponseError(ModelError):
    """The model returned no text."""


class RequestRejectedError(ModelError):
    """The server refused this one request for what it asks (HTTP 400/422, e.g. a moderation
    flag); other requests to it may pass."""


class TemplateError(PoiseError):
    """A prompt template is missing, malformed or uses an unknown placeholder."""


class StoreError(PoiseError):
    """The results store cannot be opened or written."""


class UnparseableResponse(PoiseError):
    """No ranking can be read from a response (empty, degenerate or off-topic)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"no ranking can be read from the response: {reason}")
        self.reason = reason


class AmbiguousResponse(UnparseableResponse):
    """The answer can be read more than one way (its own ranking signals conflict, or too
    little of it can be read to be sure): counted apart, never scored."""

    def __init__(self, reason: str) -> None:
        PoiseError.__init__(self, f"the ranking in the response is ambiguous: {reason}")
        self.reason = reason
