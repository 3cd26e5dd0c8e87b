"""poise: measure and harden how LLM-powered search engines rank products."""

from ._errors import (
    AmbiguousResponse,
    CatalogError,
    EmptyResponseError,
    ModelError,
    ModelSpecError,
    ModelUnreachableError,
    PoiseError,
    StoreError,
    TemplateError,
    UnknownCategoryError,
    UnparseableResponse,
)

__version__ = "0.1.0"

__all__ = [
    "AmbiguousResponse",
    "CatalogError",
    "EmptyResponseError",
    "ModelError",
    "ModelSpecError",
    "ModelUnreachableError",
    "PoiseError",
    "StoreError",
    "TemplateError",
    "UnknownCategoryError",
    "UnparseableResponse",
    "__version__",
]
