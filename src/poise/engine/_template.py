"""Prompt templates are data: a TOML file with the system, user and per-document texts."""

from __future__ import annotations

import string
import tomllib
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from .._errors import TemplateError

PROMPT_FIELDS = frozenset({"query", "documents", "category", "n"})
DOCUMENT_FIELDS = frozenset({"position", "title", "brand", "model", "url", "text"})


def _placeholders(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise ValueError(f"malformed placeholder ({exc}); write literal braces as {{{{ and }}}}") from None


class PromptTemplate(BaseModel):
    """How the engine turns a query and documents into chat messages."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "custom"
    system: str
    user: str
    document: str = "[{position}] {title}\n{text}"
    separator: str = "\n\n"

    @model_validator(mode="after")
    def _known_placeholders(self) -> "PromptTemplate":
        for field, allowed in (("system", PROMPT_FIELDS), ("user", PROMPT_FIELDS), ("document", DOCUMENT_FIELDS)):
            unknown = sorted(_placeholders(getattr(self, field)) - allowed)
            if unknown:
                raise ValueError(
                    f"{field!r} uses unknown placeholder {{{unknown[0]}}}; allowed: "
                    + ", ".join("{" + a + "}" for a in sorted(allowed))
                )
        if "{documents}" not in self.user and "{documents}" not in self.system:
            raise ValueError("neither 'system' nor 'user' contains {documents}")
        if "{text}" not in self.document:
            raise ValueError("'document' does not contain {text}")
        return self

    @classmethod
    def from_file(cls, path: str | Path) -> "PromptTemplate":
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TemplateError(f"{path}: no such template file", "check the path given with --template") from None
        except tomllib.TOMLDecodeError as exc:
            raise TemplateError(f"{path}: not valid TOML ({exc})") from None
        try:
            return cls.model_validate({"name": path.stem, **data})
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            field = f"field {loc!r}: " if loc else ""
            msg = err["msg"].removeprefix("Value error, ")
            raise TemplateError(f"{path}: {field}{msg}") from None


def default_template() -> PromptTemplate:
    ref = resources.files("poise.engine") / "templates" / "default.toml"
    with resources.as_file(ref) as path:
        return PromptTemplate.from_file(path).model_copy(update={"name": "default"})
