"""Load a catalog from JSONL, CSV or a folder of saved HTML pages.

Every error names the file, the line (or page) and the field at fault.

JSONL: one object per line. A product line has ``category``, ``brand``, ``model``,
``document`` and optionally ``url``. A line ``{"type": "category", "category": ...,
"query": ...}`` sets a category's default query.

CSV: a header row with ``category``, ``brand``, ``model`` and either ``document`` (the
text) or ``document_file`` (a .txt or .html file, relative to the CSV); ``url`` optional.

HTML folder: ``DIR/<category>/<page>.html``. Brand and model come from the folder's
``index.csv`` (columns ``file``, ``brand``, ``model``, optional ``url``) or, failing that,
from the page's schema.org Product JSON-LD. The main text is extracted with trafilatura.

A catalog may be untrusted. Every file it names or holds (a ``document_file``, a page, a
category folder) must resolve inside the catalog's own folder (no absolute path, no ``..``,
no symlink leading out) unless ``allow_outside_files=True``. A catalog file (or index.csv)
over ``MAX_CATALOG_BYTES`` (256 MiB) is refused unread. A document longer than
``max_document_chars`` (default 200,000; ``POISE_MAX_DOCUMENT_CHARS``) is refused, and a
file too large to hold one is refused before it is read. Names (category, brand, model) and
queries may not hold control, zero-width or bidi characters (see ``text_problem``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._errors import CatalogError
from ._files import (
    HTML_BYTES_PER_CHAR,
    check_columns,
    csv_records,
    inside,
    max_document_chars,
    read_bounded,
    read_text,
    size_hint,
)
from ._schema import Catalog, Category, Document, Product, name_key, text_problem

SAMPLE_CATALOG_NAME = "sample"

_PRODUCT_FIELDS = {"type", "category", "brand", "model", "document", "url"}
_CATEGORY_FIELDS = {"type", "category", "query"}


@dataclass
class _Builder:
    """Collects rows in file order, then validates categories as a whole."""

    source: str
    max_chars: int
    products: dict[str, list[tuple[str, Product]]] = field(default_factory=lambda: defaultdict(list))
    queries: dict[str, str] = field(default_factory=dict)
    spellings: dict[str, tuple[str, str]] = field(default_factory=dict)  # name_key -> (where, category)
    seen: dict[tuple[str, str, str], str] = field(default_factory=dict)  # name_keys -> where

    def category(self, where: str, row: dict[str, Any]) -> str:
        """The row's category name, spelled as where it first appeared (else refused)."""
        name = _name(where, row, "category")
        first_where, first = self.spellings.setdefault(name_key(name), (where, name))
        if name != first:
            raise CatalogError(f"{where}: category {name!r} differs only in case or Unicode form from {first!r} "
                               f"at {first_where}", "spell each category the same way everywhere")
        return name

    def add_product(self, where: str, row: dict[str, Any]) -> None:
        category = self.category(where, row)
        brand, model = _name(where, row, "brand"), _name(where, row, "model")
        text = _required_text(where, row, "document")
        if len(text) > self.max_chars:
            raise CatalogError(f"{where}: field 'document' of {brand} {model}: {len(text):,} characters, "
                               f"over the limit of {self.max_chars:,}", size_hint())
        url = row.get("url") or None
        if url is not None and not isinstance(url, str):
            raise CatalogError(f"{where}: field 'url' must be text")
        if url is not None and (text_problem(url) or any(c.isspace() for c in url)):
            raise CatalogError(f"{where}: field 'url' {text_problem(url) or 'contains whitespace'}")
        try:
            product = Product(brand=brand, model=model, document=Document(text=text, source_url=url))
        except ValidationError as exc:
            raise _from_validation(where, exc) from None
        other_where = self.seen.setdefault((name_key(category), name_key(brand), name_key(model)), where)
        if other_where != where:
            raise CatalogError(
                f"{where}: product {product.name!r} already listed in category {category!r} at {other_where}",
                "give each product of a category once",
            )
        self.products[category].append((where, product))

    def add_category(self, where: str, row: dict[str, Any]) -> None:
        category = self.category(where, row)
        query = _required_text(where, row, "query")
        problem = text_problem(query)
        if problem:
            raise CatalogError(f"{where}: field 'query' {problem}", "a query must be plain text; remove the character")
        self.queries[category] = query

    def build(self) -> Catalog:
        if not self.products:
            raise CatalogError(f"{self.source}: no products found", "add at least one category of products")
        categories = {}
        for name in self.queries:
            if name not in self.products:
                raise CatalogError(f"{self.source}: category {name!r} has a query but no products")
        for name, rows in self.products.items():
            if len(rows) < 2:
                raise CatalogError(
                    f"{rows[0][0]}: category {name!r} has only one product",
                    "a category needs at least 2 products to rank",
                )
            categories[name] = Category(
                name=name, query=self.queries.get(name), products=tuple(p for _, p in rows)
            )
        return Catalog(source=self.source, categories=categories)


def _required_text(where: str, row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise CatalogError(f"{where}: field {key!r} is missing or empty")
    if not isinstance(value, str):
        raise CatalogError(f"{where}: field {key!r} must be text, not {type(value).__name__}")
    return value


def _name(where: str, row: dict[str, Any], key: str) -> str:
    """A name field (category, brand, model): text without hidden characters, spaces collapsed."""
    value = _required_text(where, row, key)
    problem = text_problem(value)
    if problem:
        raise CatalogError(f"{where}: field {key!r} {problem}", "names must be plain text; remove the character")
    return " ".join(value.split())


def _from_validation(where: str, exc: ValidationError) -> CatalogError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "row"
    return CatalogError(f"{where}: field {loc!r}: {err['msg'].removeprefix('Value error, ')}")


# -- JSONL ---------------------------------------------------------------------------------
def load_jsonl(path: str | Path, *, max_document_chars: int | None = None) -> Catalog:
    path = Path(path)
    builder = _Builder(source=str(path), max_chars=_limit(max_document_chars))
    # lines end at "\n" alone (read_text has turned "\r\n" and "\r" into it): str.splitlines would also
    # split inside a JSON string at U+2028, U+2029 or U+0085, which JSON lets stand unescaped
    for lineno, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CatalogError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})",
                               "each line must be one JSON object") from None
        except (RecursionError, ValueError):  # nested without end, or a number of thousands of digits
            raise CatalogError(f"{where}: not valid JSON (nested too deeply, or a number too long)",
                               "each line must be one JSON object of text fields") from None
        if not isinstance(row, dict):
            raise CatalogError(f"{where}: expected a JSON object, found {type(row).__name__}")
        kind = row.get("type", "product")
        allowed = _CATEGORY_FIELDS if kind == "category" else _PRODUCT_FIELDS
        if kind not in ("product", "category"):
            raise CatalogError(f"{where}: field 'type' must be 'product' or 'category', not {kind!r}")
        unknown = sorted(set(row) - allowed)
        if unknown:
            raise CatalogError(f"{where}: unknown field {unknown[0]!r}",
                               f"a {kind} line has the fields {', '.join(sorted(allowed))}")
        if kind == "category":
            builder.add_category(where, row)
        else:
            builder.add_product(where, row)
    return builder.build()


# -- CSV -----------------------------------------------------------------------------------
def load_csv(path: str | Path, *, allow_outside_files: bool = False,
             max_document_chars: int | None = None) -> Catalog:
    path = Path(path)
    limit = _limit(max_document_chars)
    builder = _Builder(source=str(path), max_chars=limit)
    root = path.parent.resolve()
    records = csv_records(path, read_text(path), limit)  # keeps line breaks inside quoted fields
    _check_header(path, next(records)[1] or [])
    for line, _, row in records:
        where = f"{path}:{line}"  # where the record starts (a quoted field may span lines)
        if None in row:
            raise CatalogError(f"{where}: more fields than the header has", "quote fields that hold commas")
        row = {k: (v or "").strip() for k, v in row.items()}
        if not any(row.values()):
            continue
        if not row.get("document") and row.get("document_file"):
            row["document"] = _document_file(root, row["document_file"], where, limit, allow_outside_files)
        row.pop("document_file", None)
        builder.add_product(where, {k: v for k, v in row.items() if k in _PRODUCT_FIELDS})
    return builder.build()


def _check_header(path: Path, header: list[str]) -> None:
    if not header or not any(header):
        raise CatalogError(f"{path}:1: no header row", "start with a header: category,brand,model,document")
    check_columns(path, header, "category,brand,model,document")
    missing = [c for c in ("category", "brand", "model") if c not in header]
    if missing:
        raise CatalogError(f"{path}:1: header lacks column {missing[0]!r}",
                           "the header needs category, brand, model and document or document_file")
    if "document" not in header and "document_file" not in header:
        raise CatalogError(f"{path}:1: header lacks column 'document' (or 'document_file')")
    allowed = (_PRODUCT_FIELDS - {"type"}) | {"document_file"}
    unknown = [h for h in header if h not in allowed]
    if unknown:
        raise CatalogError(f"{path}:1: unknown column {unknown[0]!r}",
                           f"the columns are {', '.join(sorted(allowed))}")


def _document_file(root: Path, name: str, where: str, limit: int, allow_outside: bool) -> str:
    """The text of a CSV row's document file: inside the catalog's folder, within the limit."""
    target = inside(root, Path(name), where, "document_file", allow_outside)
    is_html = target.suffix.lower() in (".html", ".htm")
    raw = read_bounded(target, limit * (HTML_BYTES_PER_CHAR if is_html else 4), where, "document_file", limit)
    return _html_to_text(raw, target) if is_html else raw


# -- HTML folder -----------------------------------------------------------------------------
def load_html_folder(folder: str | Path, *, allow_outside_files: bool = False,
                     max_document_chars: int | None = None) -> Catalog:
    folder = Path(folder)
    limit = _limit(max_document_chars)
    builder = _Builder(source=str(folder), max_chars=limit)
    root = folder.resolve()
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subfolders:
        raise CatalogError(f"{folder}: no category folders",
                           "put each category's pages in DIR/<category>/*.html")
    for sub in subfolders:
        inside(root, Path(sub.name), str(sub), None, allow_outside_files)
        index_path = sub / "index.csv"
        if index_path.exists():
            inside(root, Path(sub.name, index_path.name), str(index_path), None, allow_outside_files)
        index = _read_index(index_path, limit)
        pages = sorted(p for p in sub.iterdir() if p.suffix.lower() in (".html", ".htm") and not p.name.startswith("."))
        if not pages:
            raise CatalogError(f"{sub}: no pages (*.html or *.htm) in the category folder",
                               "save the category's product pages there, or remove the folder")
        for page in pages:
            where = str(page)
            real = inside(root, Path(sub.name, page.name), where, None, allow_outside_files)
            html = read_bounded(real, limit * HTML_BYTES_PER_CHAR, where, None, limit)
            meta = index.get(page.name) or _json_ld_product(html)
            if not meta:
                raise CatalogError(
                    f"{page}: cannot tell the product's brand and model",
                    f"list the page in {sub / 'index.csv'} (columns file,brand,model,url)",
                )
            builder.add_product(where, {
                "category": sub.name.replace("_", " "),
                "brand": meta.get("brand"),
                "model": meta.get("model"),
                "url": meta.get("url") or None,
                "document": _html_to_text(html, page),
            })
    return builder.build()


def _read_index(path: Path, limit: int) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    rows = {}
    for line, header, row in csv_records(path, read_text(path), limit):
        if header:
            check_columns(path, header, "file,brand,model,url")
        if not row:
            continue
        where = f"{path}:{line}"
        if None in row:
            raise CatalogError(f"{where}: more fields than the header has", "quote fields that hold commas")
        name = (row.get("file") or "").strip()
        if not name:
            raise CatalogError(f"{where}: field 'file' is missing or empty")
        rows[name] = {k: (v or "").strip() for k, v in row.items() if k}
        for key in ("brand", "model"):
            if not rows[name].get(key):
                raise CatalogError(f"{where}: field {key!r} is missing or empty")
    return rows


def _json_ld_product(html: str) -> dict[str, str] | None:
    """Brand and model from a schema.org Product block, as many shop pages carry."""
    import re

    for block in re.findall(r"<script[^>]*application/ld\+json[^>]*>(.*?)</script>", html, re.S | re.I):
        try:
            data = json.loads(block)
        except (RecursionError, ValueError):  # broken, nested without end, or a number too long
            continue
        for item in data if isinstance(data, list) else [data]:
            if isinstance(item, dict) and item.get("@type") == "Product" and item.get("name"):
                brand = item.get("brand")
                if isinstance(brand, dict):
                    brand = brand.get("name")
                if brand:
                    return {"brand": str(brand), "model": str(item["name"]), "url": str(item.get("url") or "")}
    return None


def _html_to_text(html: str, where: Path) -> str:
    import trafilatura

    text = trafilatura.extract(html, include_comments=False, include_tables=True, favor_recall=True)
    if not text or not text.strip():
        raise CatalogError(f"{where}: no main text could be extracted from the page",
                           "check that the file is a saved product page, not an empty shell")
    return text


# -- entry points ------------------------------------------------------------------------------
def _limit(value: int | None) -> int:
    return max_document_chars(value)


def load_catalog(path: str | Path | None = None, *, allow_outside_files: bool = False,
                 max_document_chars: int | None = None) -> Catalog:
    """Load a catalog from a .jsonl or .csv file or an HTML folder; None or 'sample' is the bundled one.

    ``allow_outside_files`` lets a trusted catalog name files outside its own folder;
    ``max_document_chars`` sets the document limit (default 200,000 or $POISE_MAX_DOCUMENT_CHARS).
    """
    if path is None or str(path) == SAMPLE_CATALOG_NAME:
        return sample_catalog()
    if isinstance(path, str) and not path.strip():  # Path("") would read the working folder
        raise CatalogError("the catalog path is empty", "name a .jsonl or .csv file or a folder of HTML pages "
                           "with --catalog, or leave it out for the bundled sample")
    path = Path(path).expanduser()
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except OSError as exc:  # a name too long, a folder that may not be searched
        raise CatalogError(f"{path}: cannot look it up ({exc.strerror})",
                           "check the path given with --catalog") from None
    if is_dir:
        return load_html_folder(path, allow_outside_files=allow_outside_files,
                                max_document_chars=max_document_chars)
    if not exists:
        raise CatalogError(f"{path}: no such file or folder", "check the path given with --catalog")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return load_jsonl(path, max_document_chars=max_document_chars)
    if suffix == ".csv":
        return load_csv(path, allow_outside_files=allow_outside_files,
                        max_document_chars=max_document_chars)
    raise CatalogError(f"{path}: unknown catalog format {suffix or '(no extension)'!r}",
                       "use a .jsonl or .csv file or a folder of HTML pages")


def sample_catalog() -> Catalog:
    """The bundled sample catalog (10 categories x 8 products; names from the RAGDOLL list)."""
    ref = resources.files("poise.catalog") / "data" / "sample.jsonl"
    with resources.as_file(ref) as path:
        catalog = load_jsonl(path)
    return catalog.model_copy(update={"source": "the bundled sample catalog"})


def iter_products(catalog: Catalog) -> Iterable[tuple[str, Product]]:
    for name, category in catalog.categories.items():
        for product in category.products:
            yield name, product
