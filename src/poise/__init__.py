"""poise: measure and harden how LLM-powered search engines rank products."""

from ._errors import (
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
