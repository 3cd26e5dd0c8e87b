"""poise: measure and harden how LLM-powered search engines rank products."""

from importlib.metadata import PackageNotFoundError, version

from ._errors import (
    AmbiguousResponse,
    CatalogError,
    EmptyResponseError,
    ModelError,
    ModelSpecError,
    ModelUnreachableError,
    PoiseError,
    RequestRejectedError,
    StoreError,
    TemplateError,
    UnknownCategoryError,
    UnparseableResponse,
)

try:  # the one place the version is written is pyproject.toml
    __version__ = version("poise")
except PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "AmbiguousResponse",
    "CatalogError",
    "EmptyResponseError",
    "ModelError",
    "ModelSpecError",
    "ModelUnreachableError",
    "PoiseError",
    "RequestRejectedError",
    "StoreError",
    "TemplateError",
    "UnknownCategoryError",
    "UnparseableResponse",
    "__version__",
]
