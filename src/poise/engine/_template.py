"""Prompt templates are data: a TOML file with the system, user and per-document texts."""

from __future__ import annotations

import string
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from .._errors import TemplateError

PROMPT_FIELDS = frozenset({"query", "documents", "category", "n"})
DOCUMENT_FIELDS = frozenset({"position", "title", "brand", "model", "url", "text"})
#: What a template is formatted with once at load, to find what would fail only later.
_SAMPLE_PROMPT = {"query": "Which one?", "documents": "[1] A\ntext", "category": "blender", "n": 3}
_SAMPLE_DOCUMENT = {"position": 1, "title": "Brand Model", "brand": "Brand", "model": "Model",
                    "url": "https://example.test/", "text": "text"}
MAX_TEMPLATE_BYTES = 1_000_000


def _placeholders(text: str) -> set[str]:
    """The names of ``text``'s placeholders; only plain ``{name}`` (no ``!conversion``,
    no ``:format spec``) is allowed, so nothing can fail or blow up when a prompt is built."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"malformed placeholder ({exc}); write literal braces as {{{{ and }}}}") from None
    for _, name, spec, conversion in parsed:
        if name is not None and (spec or conversion):
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            shown = shown if len(shown) <= 40 else shown[:37] + "...}"
            raise ValueError(f"placeholder {shown} has a {'format spec' if spec else 'conversion'}; "
                             f"write a plain {{{name}}}")
    return {name for _, name, _, _ in parsed if name is not None}


def _try_format(field: str, text: str, values: dict[str, object]) -> None:
    try:
        text.format(**values)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError, OverflowError) as exc:
        raise ValueError(f"{field!r} cannot be filled in ({type(exc).__name__}: {exc})") from None


class PromptTemplate(BaseModel):
    """How the engine turns a query and documents into chat messages."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "custom"
    system: str
    user: str
    document: str = "[{position}] {title}\n{text}"
    separator: str = "\n\n"

    @model_validator(mode="after")
    def _known_placeholders(self) -> PromptTemplate:
        for field, allowed in (("system", PROMPT_FIELDS), ("user", PROMPT_FIELDS), ("document", DOCUMENT_FIELDS)):
            try:
                unknown = sorted(_placeholders(getattr(self, field)) - allowed)
            except ValueError as exc:
                raise ValueError(f"{field!r}: {exc}") from None
            if unknown:
                raise ValueError(
                    f"{field!r} uses unknown placeholder {{{unknown[0]}}}; allowed: "
                    + ", ".join("{" + a + "}" for a in sorted(allowed))
                )
        if "{documents}" not in self.user and "{documents}" not in self.system:
            raise ValueError("neither 'system' nor 'user' contains {documents}")
        if "{text}" not in self.document:
            raise ValueError("'document' does not contain {text}")
        _try_format("system", self.system, _SAMPLE_PROMPT)
        _try_format("user", self.user, _SAMPLE_PROMPT)
        _try_format("document", self.document, _SAMPLE_DOCUMENT)
        return self

    @classmethod
    def from_file(cls, path: str | Path) -> PromptTemplate:
        path = Path(path)
        data = _read_toml(path)
        try:
            return cls.model_validate({"name": path.stem, **data})
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            field = f"field {loc!r}: " if loc else ""
            msg = err["msg"].removeprefix("Value error, ")
            raise TemplateError(f"{path}: {field}{msg}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    """A template file's TOML table; one TemplateError naming the file for whatever is wrong."""
    try:
        if path.is_dir():
            raise TemplateError(f"{path}: is a folder, not a template file", "pass a .toml file with --template")
        if path.exists() and not path.is_file():  # a device or a pipe may never end: refused unread
            raise TemplateError(f"{path}: not a regular file (a device or a pipe)", "pass a .toml file with --template")
        if path.stat().st_size > MAX_TEMPLATE_BYTES:
            raise TemplateError(f"{path}: {path.stat().st_size:,} bytes, too large for a prompt template "
                                f"(limit {MAX_TEMPLATE_BYTES:,})")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(f"{path}: no such template file", "check the path given with --template") from None
    except UnicodeDecodeError as exc:
        raise TemplateError(f"{path}: not UTF-8 text (byte {exc.start})", "save the template as UTF-8") from None
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{path}: not valid TOML ({' '.join(str(exc).split())})") from None
    except (RecursionError, ValueError):  # nested without end, or an integer of thousands of digits
        raise TemplateError(f"{path}: not valid TOML (nested too deeply, or a number too long)") from None


def default_template() -> PromptTemplate:
    ref = resources.files("poise.engine") / "templates" / "default.toml"
    with resources.as_file(ref) as path:
        return PromptTemplate.from_file(path).model_copy(update={"name": "default"})
