"""Categories, products (brand, model) and their documents."""

from __future__ import annotations

import difflib

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .._errors import UnknownCategoryError


def _clean(value: str) -> str:
    return " ".join(value.split())


class Document(BaseModel):
    """The text a search engine retrieved for a product, and where it came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1)
    source_url: str | None = None

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the document text is empty")
        return value.strip()


class Product(BaseModel):
    """One product: its brand, its model name and its document."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    brand: str = Field(min_length=1)
    model: str = Field(min_length=1)
    document: Document

    @field_validator("brand", "model")
    @classmethod
    def _normalise(cls, value: str) -> str:
        value = _clean(value)
        if not value:
            raise ValueError("must not be blank")
        return value

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

    @model_validator(mode="after")
    def _distinct_products(self) -> "Category":
        if len(self.products) < 2:
            raise ValueError(f"category {self.name!r} needs at least 2 products to rank")
        seen: set[tuple[str, str]] = set()
        for product in self.products:
            key = (product.brand.lower(), product.model.lower())
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
        wanted = " ".join(name.lower().split())
        for key, category in self.categories.items():
            if key.lower() == wanted:
                return category
        close = difflib.get_close_matches(wanted, list(self.categories), n=3, cutoff=0.6)
        hint = (
            f"did you mean {', '.join(repr(c) for c in close)}?"
            if close
            else "run `poise catalog list` to see the categories"
        )
        raise UnknownCategoryError(f"unknown category {name!r} in {self.source}", hint)

    def __len__(self) -> int:
        return len(self.categories)
