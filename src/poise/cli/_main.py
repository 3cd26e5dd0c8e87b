"""Entry point: every expected failure ends as one line on stderr and a non-zero exit.

typer has moved click's exception classes around (click's own, a vendored copy, typer's
``Abort``/``Exit``), so nothing here names a class of theirs: an exception is classified by
the names of the classes it derives from, which cannot fail whichever typer is installed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys

from .._errors import PoiseError

INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
INTERNAL = 70  # EX_SOFTWARE
_INTERRUPT_LINE = "interrupted; finished calls are saved in the store"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI: returns 0, or raises SystemExit with the exit code after one line on stderr."""
    try:
        from ._app import app
        from ._render import out

        out.quiet = False  # a closed pipe silences one invocation, not every later one in this process
        rv = app(args=argv, prog_name="poise", standalone_mode=False)
        # typer turns Ctrl-C into Exit(130) and, outside standalone mode, *returns* the code
        code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
        if code == INTERRUPTED:
            code = _fail(_INTERRUPT_LINE, INTERRUPTED)
    except BaseException as exc:  # noqa: BLE001 - classified below; nothing is let through unmatched
        code = _handle(exc)
    if code == INTERRUPTED and argv is None:
        _default_sigint()
    if code:
        sys.exit(code)  # as the console script would: callers in Python see SystemExit
    return 0


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _handle(exc: BaseException) -> int:
    names = _names(exc)
    if "OutputClosed" in names or _broken_pipe(exc):
        return _quiet_after_broken_pipe()
    if isinstance(exc, SystemExit):
        if _stdout_pacified():  # click met EPIPE itself and exited 1
            return _quiet_after_broken_pipe()
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else _fail(str(code), 1))
    if isinstance(exc, KeyboardInterrupt) or "Abort" in names:
        return _fail(_INTERRUPT_LINE, INTERRUPTED)
    if isinstance(exc, PoiseError):
        return _fail(exc.one_line(), 1)
    code = getattr(exc, "exit_code", None)
    if "Exit" in names and isinstance(code, int):
        return _fail(_INTERRUPT_LINE, INTERRUPTED) if code == INTERRUPTED else code
    if "NoArgsIsHelpError" in names:  # `poise` or `poise catalog` alone: the help, on stdout
        print(_message(exc))
        return 0
    if "UsageError" in names:
        ctx = getattr(exc, "ctx", None)
        path = getattr(ctx, "command_path", "") or ""
        where = f"poise {path.removeprefix('poise').strip()}".strip()
        return _fail(f"{_message(exc).rstrip('.')}. Run `{where} --help` for usage.", 2)
    if "ClickException" in names:
        code = getattr(exc, "exit_code", 1)
        return _fail(_message(exc), code if isinstance(code, int) and code else 1)
    if not isinstance(exc, Exception):  # GeneratorExit and the like: not ours to swallow
        raise exc
    if os.environ.get("POISE_DEBUG"):
        raise exc
    detail = " ".join(str(exc).split())
    return _fail(f"internal error: {type(exc).__name__}{': ' + detail if detail else ''}. "
                 "Set POISE_DEBUG=1 to see the traceback, and please report it", INTERNAL)


def _message(exc: BaseException) -> str:
    try:
        fmt = getattr(exc, "format_message", None)
        return str(fmt() if callable(fmt) else exc)
    except Exception:  # noqa: BLE001 - a message must never cost the exit code
        return str(exc)


def _broken_pipe(exc: BaseException) -> bool:
    return isinstance(exc, BrokenPipeError) or (isinstance(exc, OSError) and exc.errno == errno.EPIPE)


def _stdout_pacified() -> bool:
    return type(sys.stdout).__name__ == "PacifyFlushWrapper"


def _quiet_after_broken_pipe() -> int:
    """The reader went away: point stdout at /dev/null so the interpreter's final flush
    cannot fail ("Exception ignored ... BrokenPipeError"), as the Python docs recommend."""
    if sys.__stdout__ is None:  # no stdout at all: nothing to flush
        return 0
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())
        os.close(devnull)
    except (OSError, AttributeError, ValueError):
        pass
    return 0


def _fail(message: str, code: int) -> int:
    from ._render import inert

    with contextlib.suppress(OSError, ValueError):
        print(f"poise: error: {' '.join(inert(message).split())}", file=sys.stderr, flush=True)
    return code


def _default_sigint() -> None:
    """After the interrupt line, a second Ctrl-C (say, while worker threads finish at exit)
    ends the process at once, without a traceback."""
    with contextlib.suppress(ValueError, OSError):  # not the main thread
        signal.signal(signal.SIGINT, signal.SIG_DFL)
