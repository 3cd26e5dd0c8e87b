"""Entry point: every expected failure ends as one line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import sys

from .._errors import PoiseError


def main(argv: list[str] | None = None) -> int:
    from ._app import app, click_exceptions

    exc_ = click_exceptions()

    try:
        app(args=argv, prog_name="poise", standalone_mode=False)
    except PoiseError as exc:
        _fail(exc.one_line(), 1)
    except exc_.NoArgsIsHelpError as exc:
        print(exc.format_message())
        return 0
    except exc_.UsageError as exc:
        where = f"poise {exc.ctx.command_path.removeprefix('poise').strip()}".strip() if exc.ctx else "poise"
        _fail(f"{exc.format_message().rstrip('.')}. Run `{where} --help` for usage.", 2)
    except exc_.Abort:
        _fail("interrupted; finished calls are saved in the store", 130)
    except KeyboardInterrupt:
        _fail("interrupted; finished calls are saved in the store", 130)
    except exc_.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code or 1)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - a bug: one line unless asked for the traceback
        if os.environ.get("POISE_DEBUG"):
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc}. Set POISE_DEBUG=1 to see the traceback "
              "and please report it", 70)
    return 0


def _fail(message: str, code: int) -> None:
    from ._render import inert

    print(f"poise: error: {inert(message)}", file=sys.stderr)
    sys.exit(code)
