"""Categories, products (brand, model) and their documents."""

from __future__ import annotations

import difflib
import unicodedata

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .._errors import UnknownCategoryError
from .._text import CONTROL_CHARS


def _clean(value: str) -> str:
    return " ".join(value.split())


_WHITESPACE_CONTROLS = frozenset("\t\n\r\v\f\x1c\x1d\x1e\x1f\x85")
_KINDS = {"Cc": "a control character", "Cf": "an invisible format character", "Cs": "a lone surrogate",
          "Co": "a private-use character", "Cn": "an unassigned character"}
_NAMED = {0: "a NUL byte", 0x200B: "a zero-width space", 0x200C: "a zero-width non-joiner",
          0x200D: "a zero-width joiner", 0x2060: "a word joiner", 0xFEFF: "a zero-width no-break space (BOM)",
          0x00AD: "a soft hyphen", 0x1B: "an escape character (ESC)", 0x7F: "a DEL character"}
_BIDI = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A)) | {0x200E, 0x200F, 0x061C}


def text_problem(value: str) -> str | None:
    """What makes ``value`` unfit for a name shown to people and models, or None.

    Names (category, brand, model, query, URL) must not hide or reorder what a reader sees:
    NUL and other control characters (whitespace is fine: it is collapsed), zero-width and
    other invisible format characters, bidirectional overrides, surrogates, private-use and
    unassigned code points are refused.
    """
    for char in value:
        if char in _WHITESPACE_CONTROLS:
            continue
        kind = unicodedata.category(char)
        if kind in _KINDS:
            code = ord(char)
            what = ("a bidi control" if code in _BIDI else _NAMED.get(code, _KINDS[kind]))
            return f"contains {what} (U+{code:04X})"
    return None


def name_key(value: str) -> str:
    """What makes two names the same name: equal after Unicode compatibility normalisation,
    case folding and collapsed spaces ("Café" in NFC or NFD, "Straße" and "STRASSE", "ＡＢＣ"
    and "ABC"). Two products of a category, or two categories, may not share one."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    return " ".join(folded.split())


def _checked_name(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    value = _clean(value)
    if not value:
        raise ValueError("must not be blank")
    return value


# C0/C1 controls but tab and newline, which a document keeps


class Document(BaseModel):
    """The text a search engine retrieved for a product, and where it came from.

    Documents are page text, where stray control characters are common: NUL and the other
    control characters but tab and newline are removed (carriage returns become newlines);
    zero-width and bidi characters are kept, as a retrieved page would carry them, and every
    view shows them inert. ``source_url`` is checked like a name.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1)
    source_url: str | None = None

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = CONTROL_CHARS.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
        if not value.strip():
            raise ValueError("the document text is empty")
        return value.strip()

    @field_validator("source_url")
    @classmethod
    def _plain_url(cls, value: str | None) -> str | None:
        if value is not None and (text_problem(value) or any(c.isspace() for c in value)):
            raise ValueError(text_problem(value) or "contains whitespace")
        return value


class Product(BaseModel):
    """One product: its brand, its model name and its document."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    brand: str = Field(min_length=1)
    model: str = Field(min_length=1)
    document: Document

    @field_validator("brand", "model")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return _checked_name(value)

    @property
    def name(self) -> str:
        """Brand and model, as a person would write them ("Blendtec Designer 650 S")."""
        if self.model.lower().startswith(self.brand.lower()):
            return self.model
        return f"{self.brand} {self.model}"


class Category(BaseModel):
    """A category of products a user asks about, with the query they ask."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    query: str | None = None
    products: tuple[Product, ...]

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        return _checked_name(value)

    @field_validator("query")
    @classmethod
    def _plain_query(cls, value: str | None) -> str | None:
        if value is not None and text_problem(value):
            raise ValueError(text_problem(value))
        return value

    @model_validator(mode="after")
    def _distinct_products(self) -> Category:
        if len(self.products) < 2:
            raise ValueError(f"category {self.name!r} needs at least 2 products to rank")
        seen: set[tuple[str, str]] = set()
        for product in self.products:
            key = (name_key(product.brand), name_key(product.model))
            if key in seen:
                raise ValueError(
                    f"category {self.name!r} lists {product.name!r} twice"
                )
            seen.add(key)
        return self

    @property
    def default_query(self) -> str:
        """The query a user asks about this category, unless they give their own."""
        if self.query:
            return self.query
        return (
            f"I am shopping for a {self.name}. Which products would you recommend? "
            "Rank them from best to worst and explain briefly."
        )


class Catalog(BaseModel):
    """Categories by name, from one source (a file, a folder or the bundled sample)."""

    model_config = ConfigDict(frozen=True)

    source: str
    categories: dict[str, Category]

    def category(self, name: str) -> Category:
        """The category called ``name`` (case-insensitive); a clear error with suggestions if none."""
        wanted = name_key(name)
        for key, category in self.categories.items():
            if name_key(key) == wanted:
                return category
        close = difflib.get_close_matches(wanted, list(self.categories), n=3, cutoff=0.6)
        hint = (
            f"did you mean {', '.join(repr(c) for c in close)}?"
            if close
            else "run `poise catalog list` to see the categories"
        )
        raise UnknownCategoryError(f"unknown category {name!r} in {self.source}", hint)

    @model_validator(mode="after")
    def _distinct_categories(self) -> Catalog:
        seen: dict[str, str] = {}
        for name in self.categories:
            if name_key(name) in seen:
                raise ValueError(f"categories {seen[name_key(name)]!r} and {name!r} differ only in case or "
                                 "Unicode form")
            seen[name_key(name)] = name
        return self

    def __len__(self) -> int:
        return len(self.categories)
