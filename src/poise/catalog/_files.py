"""Reading a catalog's files safely: inside the catalog's own folder, bounded in size, and
CSV whose quoting errors are named for what they are."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._errors import CatalogError
from .._numbers import ascii_int

#: A document longer than this (in characters) is refused at load, unless raised.
DEFAULT_MAX_DOCUMENT_CHARS = 200_000
MAX_DOCUMENT_CHARS_ENV = "POISE_MAX_DOCUMENT_CHARS"
#: A catalog file (JSONL, CSV, an HTML folder's index.csv) larger than this is refused unread:
#: 256 MiB holds 10,000 products of 25 KB each; split a larger catalog into several.
MAX_CATALOG_BYTES = 256 * 1024 * 1024
#: Bytes of raw HTML read per character of the document limit (markup outweighs text).
HTML_BYTES_PER_CHAR = 10
OUTSIDE_HINT = ("keep the catalog's files in its own folder, or pass --allow-outside-files "
                "(allow_outside_files=True) for a catalog you trust")


def max_document_chars(value: int | None = None) -> int:
    """The document limit: ``value``, else $POISE_MAX_DOCUMENT_CHARS, else 200,000."""
    if value is None:
        raw = os.environ.get(MAX_DOCUMENT_CHARS_ENV)
        if raw is None or not raw.strip():
            return DEFAULT_MAX_DOCUMENT_CHARS
        try:
            value = ascii_int(raw)
        except ValueError:
            value = None
        if value is None or value < 1:  # named as the variable it was read from, with how to fix it
            raise CatalogError(f"{MAX_DOCUMENT_CHARS_ENV} must be a whole number of characters of at least 1, "
                               f"not {raw!r}", f"set it to a number such as {DEFAULT_MAX_DOCUMENT_CHARS}, or unset "
                                               f"it for the default ({DEFAULT_MAX_DOCUMENT_CHARS:,})")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CatalogError(f"the document limit must be a whole number of characters of at least 1, not {value!r}")
    return value


def read_text(path: Path, max_bytes: int = MAX_CATALOG_BYTES) -> str:
    """A catalog file's text; a device or a pipe (which may never end) and a file over
    ``max_bytes`` are refused unread."""
    if path.exists() and not path.is_file() and not path.is_dir():
        raise CatalogError(f"{path}: not a regular file (a device or a pipe)", "pass a catalog file on disk")
    if path.is_file() and (size := path.stat().st_size) > max_bytes:
        raise CatalogError(f"{path}: {size:,} bytes, too large for a catalog file (limit {max_bytes:,})",
                           "split it into several catalogs")
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CatalogError(f"{path}: no such file", "check the path given with --catalog") from None
    except IsADirectoryError:
        raise CatalogError(f"{path}: is a folder, not a file") from None
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path}: not UTF-8 text (byte {exc.start})", "save the file as UTF-8") from None
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read ({exc.strerror})") from None


def inside(root: Path, path: Path, where: str, field: str | None, allow_outside: bool) -> Path:
    """``path`` (relative to ``root``) resolved, symlinks followed; refused when it is absolute
    or leaves ``root`` (resolved), unless ``allow_outside``."""
    prefix = f"{where}: field {field!r}: " if field else f"{where}: "
    if not allow_outside and path.is_absolute():
        raise CatalogError(f"{prefix}{str(path)!r} is an absolute path; "
                           f"a catalog may name only files inside its own folder ({root})", OUTSIDE_HINT)
    resolved = (root / path).resolve()
    if not allow_outside and not resolved.is_relative_to(root):
        raise CatalogError(f"{prefix}{str(path)!r} resolves outside the catalog's folder ({root})", OUTSIDE_HINT)
    return resolved


def read_bounded(path: Path, max_bytes: int, where: str, field: str | None, limit_chars: int) -> str:
    """A document file's text, refused before it is read when it is larger than ``max_bytes``."""
    prefix = f"{where}: field {field!r}: " if field else f"{where}: "
    if path.exists() and not path.is_file() and not path.is_dir():
        raise CatalogError(f"{prefix}{path}: not a regular file (a device or a pipe)", "name a file on disk")
    if path.is_dir():  # a folder is there: "no such file" would send the user looking for a missing one
        raise CatalogError(f"{prefix}{path} is a folder, not a file",
                           "name a .txt or .html file" if field else "rename or move the folder: each *.html "
                           "entry of a category folder must be a saved page")
    if not path.is_file():
        raise CatalogError(f"{prefix}no such file {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise CatalogError(f"{prefix}{path} is {size:,} bytes, too large for a document "
                           f"(limit {limit_chars:,} characters)", size_hint())
    try:
        return read_text(path, max_bytes)
    except CatalogError as exc:  # not UTF-8, unreadable: named where the catalog names the file, as above
        if field is None:  # a page of an HTML folder: its own path names it
            raise
        raise CatalogError(f"{prefix}{exc.message}", exc.hint) from None


def size_hint() -> str:
    return f"shorten it, or raise the limit with {MAX_DOCUMENT_CHARS_ENV}=N (max_document_chars=N)"


#: A CSV record as csv.DictReader gives it: the None key holds surplus fields (a list of str).
CsvRow = dict[str | None, Any]


def csv_records(path: Path, text: str, max_field_chars: int) -> Iterator[tuple[int, list[str] | None, CsvRow]]:
    """(line where the record starts, header or None, row) for each record of a CSV text.

    The header comes first (row empty), lower-cased and stripped. Quoting errors name the
    line where the unclosed quote starts; a field longer than ``max_field_chars`` is refused.
    """
    lines = list(io.StringIO(text, newline=""))
    with _field_limit(max_field_chars + 1):
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        first = 1
        header = None
        try:
            for record in reader:
                if header is None:
                    header = [h.strip().lower() for h in record]
                    yield first, header, {}
                else:
                    yield first, None, _as_row(header, record)
                first = reader.line_num + 1
        except csv.Error as exc:
            raise _csv_error(path, lines, first, str(exc), max_field_chars) from None
        if header is None:
            yield 1, [], {}


def check_columns(path: Path, header: list[str], example: str) -> None:
    """A header a spreadsheet got wrong, named: one column holding the others (semicolons or
    tabs), a column with no name (a trailing comma), a column given twice."""
    if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        raise CatalogError(f"{path}:1: the header reads as one column {header[0]!r}",
                           f"separate the columns with commas: {example}")
    for number, name in enumerate(header, start=1):
        if not name:
            raise CatalogError(f"{path}:1: column {number} of the header has no name",
                               "name it, or remove the comma that makes it")
        if name in header[:number - 1]:
            raise CatalogError(f"{path}:1: column {name!r} appears twice "
                               f"(columns {header.index(name) + 1} and {number})", "keep one of them")


def _as_row(header: list[str], record: list[str]) -> CsvRow:
    row: CsvRow = dict(zip(header, record, strict=False))  # short and long records are allowed
    if len(record) > len(header):
        row[None] = record[len(header):]
    for key in header[len(record):]:
        row[key] = None
    return row


def _csv_error(path: Path, lines: list[str], first: int, message: str, max_field_chars: int) -> CatalogError:
    if "unexpected end of data" in message:
        line = _unclosed_quote_line(lines, first)
        return CatalogError(f"{path}:{line}: unclosed quote starting on line {line}",
                            'close it, and write a quote inside a quoted field as two quotes ("")')
    if "field larger than field limit" in message:
        return CatalogError(f"{path}:{first}: a field is longer than the document limit of "
                            f"{max_field_chars:,} characters", size_hint())
    return CatalogError(f"{path}:{first}: malformed CSV ({message})",
                        'quote fields that hold commas, quotes or line breaks; double the quotes inside them')


def _unclosed_quote_line(lines: list[str], first: int) -> int:
    """The line of the quote that opens the field left open at the end of the file."""
    opened, quoted = first, False
    for number, line in enumerate(lines[first - 1:], start=first):
        field_start, i = not quoted, 0
        while i < len(line):
            char = line[i]
            if quoted and char == '"':
                if line[i + 1:i + 2] == '"':
                    i += 2
                    continue
                quoted = False
            elif not quoted:
                if char == '"' and field_start:
                    quoted, opened = True, number
                field_start = char == ","
            i += 1
    return opened


@contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    old = csv.field_size_limit()
    csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)
