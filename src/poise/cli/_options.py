"""Options several commands share (one definition each, so their help reads the same)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .._numbers import MAX_SEED, MAX_STORED_INT, ascii_float
from ..models import MAX_TIMEOUT_S, MAX_TOKENS
from ..store import STORE_ENV

CatalogOpt = Annotated[str | None, typer.Option(
    "--catalog", help="A .jsonl or .csv catalog or a folder of HTML pages (default: the bundled sample).")]
ModelOpt = Annotated[str, typer.Option(
    "--model", "-m", help="Model spec: local, llamacpp:PATH or openai:MODEL.")]
BaseUrlOpt = Annotated[str | None, typer.Option(
    "--base-url", envvar="OPENAI_BASE_URL", show_envvar=True,
    help="Endpoint for openai:MODEL specs (the key comes from OPENAI_API_KEY).")]


def _store_folder(value: str) -> Path:
    """--store's folder. An empty one (an unset shell variable: --store "$DIR") is refused: as a
    path it reads as '.', so the working folder itself would have become a results store."""
    if not value.strip():
        raise typer.BadParameter("is empty; pass a results folder, or leave --store out for ./poise-runs "
                                 f"(or ${STORE_ENV})")
    return Path(value)


StoreOpt = Annotated[Path | None, typer.Option(
    "--store", envvar=STORE_ENV, show_envvar=True, parser=_store_folder, metavar="<path>",
    help="Results folder (default ./poise-runs).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


def _template_file(value: str) -> Path:
    """--template's file. An empty one (an unset shell variable) is refused: as a path it reads
    as '.', which was then called 'a folder, not a template file'."""
    if not value.strip():
        raise typer.BadParameter("is empty; pass a prompt template .toml file, or leave --template out for the "
                                 "default")
    return Path(value)


TemplateOpt = Annotated[Path | None, typer.Option(
    "--template", parser=_template_file, metavar="<path>", help="A prompt template TOML file.")]
MaxTokensOpt = Annotated[int, typer.Option("--max-tokens", min=1, max=MAX_TOKENS, help="Most tokens per answer.")]
SeedOpt = Annotated[int, typer.Option(
    "--seed", min=0, max=MAX_SEED, help="Seeds the context orders and the model's sampling.")]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=MAX_STORED_INT, help="Most runs listed.")]
MaxAttemptsOpt = Annotated[int, typer.Option(
    "--max-attempts", min=1, max=20, help="Tries per call on timeouts, 429 and 5xx (exponential backoff).")]
TimeoutOpt = Annotated[float, typer.Option(
    "--timeout", min=0.1, max=MAX_TIMEOUT_S,
    help="Seconds one answer from a model server may take; a call gives up after 3 x this, "
         "retries and Retry-After waits included.")]
ReaderOpt = Annotated[str, typer.Option(
    "--reader", help="How answers are read: heuristic (default), a model spec (the model returns the ranking as "
                     "JSON under a schema), or heuristic+MODEL (kept only when both agree; the rest is ambiguous).")]
DefenseOpt = Annotated[list[str] | None, typer.Option(
    "--defense", help="Defend the engine: NAME[:key=value,...]; repeat it or join with + to compose (the first "
                      "wraps the engine; prompt-level ones go under the others). See `poise defend --list`.")]
AllowOutsideOpt = Annotated[bool, typer.Option(
    "--allow-outside-files", help="Let a catalog you trust read files outside its own folder.")]
ParamOpt = Annotated[list[str] | None, typer.Option("--param", help="A method parameter KEY=VALUE.")]


def parse_params(items: list[str] | None) -> dict[str, object]:
    """``--param KEY=VALUE`` items: a value is read as JSON where it is JSON (3, 0.5, true),
    else kept as text."""
    import json

    params: dict[str, object] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--param")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def ascii_numbers(command: Any) -> Any:
    """``command`` (a click command built from the app) with every option that reads a number,
    in it and its subcommands, refusing one not written in ASCII digits: Python's int and float
    read ``1_0`` as 10 (and, under older typers, ``٣`` as 3), which a person reads as a typo."""
    for sub in getattr(command, "commands", {}).values():
        ascii_numbers(sub)
    for param in getattr(command, "params", []):
        _ascii_number_option(param)
    return command


def _ascii_number_option(param: Any) -> None:
    process = param.process_value

    def refuse_unless_ascii(ctx: Any, raw: str) -> None:
        try:
            ascii_float(raw)
        except ValueError:
            raise typer.BadParameter(f"{raw!r} is not a number in ASCII digits; write it with the digits 0-9 alone "
                                     "(no '_', no other script's digits, no nan or inf)", ctx=ctx,
                                     param=param) from None

    def process_value(ctx: Any, value: Any) -> Any:
        given = value if isinstance(value, (list, tuple)) else (value,)
        try:
            result = process(ctx, value)
        except Exception:
            for raw in given:  # '١٠' or 'nan' refused by the option's type: said as what it is
                if isinstance(raw, str) and _python_number(raw):
                    refuse_unless_ascii(ctx, raw)
            raise
        read = result if isinstance(result, (list, tuple)) else (result,)
        for raw, number in zip(given, read, strict=False):
            if isinstance(raw, str) and isinstance(number, (int, float)) and not isinstance(number, bool):
                refuse_unless_ascii(ctx, raw)
        return result

    param.process_value = process_value


def _python_number(text: str) -> bool:
    """Whether Python's float reads ``text`` as a number."""
    try:
        float(text)
    except ValueError:
        return False
    return True
