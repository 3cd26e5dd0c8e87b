"""Products and their documents: schema, loaders and the bundled sample catalog."""

from ._files import DEFAULT_MAX_DOCUMENT_CHARS, MAX_CATALOG_BYTES, MAX_DOCUMENT_CHARS_ENV
from ._loaders import (
    SAMPLE_CATALOG_NAME,
    iter_products,
    load_catalog,
    load_csv,
    load_html_folder,
    load_jsonl,
    sample_catalog,
)
from ._schema import Catalog, Category, Document, Product, name_key, text_problem

__all__ = [
    "DEFAULT_MAX_DOCUMENT_CHARS",
    "MAX_CATALOG_BYTES",
    "MAX_DOCUMENT_CHARS_ENV",
    "SAMPLE_CATALOG_NAME",
    "Catalog",
    "Category",
    "Document",
    "Product",
    "iter_products",
    "load_catalog",
    "load_csv",
    "load_html_folder",
    "load_jsonl",
    "name_key",
    "sample_catalog",
    "text_problem",
]
