"""``poise report``: one HTML file (or Markdown) a person opens and understands in a minute."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from .._errors import PoiseError
from ..store import Store
from ._options import StoreOpt
from ._render import OutputClosed, emit

FORMATS = {"html": "html", "md": "md", "markdown": "md"}


def report(
    run_ids: Annotated[list[str] | None, typer.Argument(
        help="Runs to report (ids or unique prefixes; default: the latest run).", metavar="RUN_ID",
        show_default=False)] = None,
    out_path: Annotated[str | None, typer.Option(
        "--out", "-o", help="File to write (default poise-report-RUN.html or .md here; '-' for stdout).")] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", "-f", help="html (one self-contained file) or md (Markdown); default from --out, else html.",
        show_default=False)] = None,
    store: StoreOpt = None,
) -> None:
    """Write a report of runs: configuration, cost, rankings and the paper's figures."""
    from ..report import gather_report, render_html, render_markdown

    if out_path is not None and not out_path.strip():
        raise PoiseError("--out is empty", "pass a file to write, '-' for stdout, or leave --out out")
    kind = report_format(fmt, out_path)
    with Store(store, read_only=True) as db:
        data = gather_report(db, run_ids)
        text = render_html(data) if kind == "html" else render_markdown(data)
    if out_path == "-":
        emit(text)
        return
    ids = [r.id for r in data.runs]
    name = f"poise-report-{ids[0]}" + (f"-and-{len(ids) - 1}-more" if len(ids) > 1 else "") + f".{kind}"
    path = Path(out_path or name)
    write_text(path, text)
    emit(str(path))


def report_format(fmt: str | None, out_path: str | None) -> str:
    if fmt is None:
        return "md" if out_path and out_path.lower().endswith((".md", ".markdown")) else "html"
    if fmt.lower() not in FORMATS:
        raise PoiseError(f"unknown report format {fmt!r}", "use --format html or --format md")
    return FORMATS[fmt.lower()]


def check_target(path: Path, flag: str = "--out") -> None:
    """Refuse a report path that is one of a results store's own files (its database, its
    cache, their journals: writing there would destroy every run; a file of a run's folder,
    such as its defend.json: that run's result)."""
    from ..store import CACHE_NAME, DB_NAME

    folder = path.parent.resolve()
    in_run = folder.parent.name == "runs" and (folder.parent.parent / DB_NAME).is_file() and path.is_file()
    if in_run or (path.name.startswith((DB_NAME, CACHE_NAME)) and (path.parent / DB_NAME).is_file()):
        raise PoiseError(f"cannot write the report to {path}: it is a file of the results store",
                         f"pass another path to {flag}")


def write_text(path: Path, text: str, flag: str = "--out") -> None:
    """Write the whole file or nothing (a temporary file beside it, renamed). A target that is
    not a regular file (a device such as /dev/null, a named pipe) is written into: renaming over
    it would replace the device or pipe itself. ``flag``: the option that named the path."""
    check_target(path, flag)
    try:
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder")
        if path.exists() and not path.is_file():
            try:
                with path.open("w", encoding="utf-8") as fh:
                    fh.write(text)
            except BrokenPipeError:  # its reader went away (`--out /dev/stdout | head`): stop quietly
                raise OutputClosed() from None
            return
        folder = path.parent
        # a report replaced keeps its file's permissions (one kept private stays private)
        mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else 0o644 & ~_umask()
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PoiseError(f"cannot write the report to {path}: {reason}", f"pass a writable path with {flag}") from exc


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
