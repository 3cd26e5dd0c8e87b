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
from typing import Any

from .._errors import PoiseError

INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
TERMINATED = 143  # 128 + SIGTERM, what shells report for `kill`, `timeout` or a CI runner's stop
INTERNAL = 70  # EX_SOFTWARE
_INTERRUPT_LINE = "interrupted; finished calls are saved in the store"
_TERMINATE_LINE = "terminated (SIGTERM); finished calls are saved in the store"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt: every path that marks runs
    interrupted on Ctrl-C (a run's context, the sweep executors) does the same for it."""


class _Sigterm:
    """SIGTERM handled as Ctrl-C for one invocation: while a command runs (``armed``), the
    first SIGTERM raises Terminated in the main thread; those that follow while it winds down
    (runs marked, the store closed) are not let cut that short. On leaving, the handler there
    before is put back, so a SIGTERM after the one line (worker threads ending at exit) ends
    the process at once."""

    def __init__(self) -> None:
        self.received = 0
        self.armed = False
        self._before: Any = None
        self._installed = False

    def __enter__(self) -> _Sigterm:
        self.received, self.armed = 0, True
        try:
            self._before = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        except (ValueError, OSError):  # not the main thread: signals are not ours to handle
            self._installed = False
        return self

    def __exit__(self, *exc: object) -> None:
        self.armed = False
        if self._installed:
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(signal.SIGTERM, signal.SIG_DFL if self._before is None else self._before)

    def _handle(self, signum: int, frame: object) -> None:
        self.received += 1
        if self.armed and self.received == 1:
            raise Terminated()


_SIGTERM = _Sigterm()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI: returns 0, or raises SystemExit with the exit code after one line on stderr."""
    with _SIGTERM:
        try:
            from typer.main import get_command

            from ._app import app
            from ._options import ascii_numbers
            from ._render import out

            out.quiet = False  # a closed pipe silences one invocation, not every later one in this process
            rv = ascii_numbers(get_command(app))(args=argv, prog_name="poise", standalone_mode=False)
            _SIGTERM.armed = False
            # typer turns Ctrl-C into Exit(130) and, outside standalone mode, *returns* the code
            code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
            if code == INTERRUPTED:
                code = interrupted()
        except BaseException as exc:  # noqa: BLE001 - classified below; nothing is let through unmatched
            _SIGTERM.armed = False
            code = _handle(exc)
    if code in (INTERRUPTED, TERMINATED) and argv is None:
        _default_sigint()
        _leave_workers(code)
    if code:
        sys.exit(code)  # as the console script would: callers in Python see SystemExit
    return 0


def interrupted() -> int:
    """The one line for an interruption (Ctrl-C, or SIGTERM) on stderr; its exit code."""
    if _SIGTERM.received:
        return _fail(_TERMINATE_LINE, TERMINATED)
    return _fail(_INTERRUPT_LINE, INTERRUPTED)


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
        return interrupted()
    if isinstance(exc, PoiseError):
        return _fail(exc.one_line(), 1)
    code = getattr(exc, "exit_code", None)
    if "Exit" in names and isinstance(code, int):
        return interrupted() if code == INTERRUPTED else code
    if "NoArgsIsHelpError" in names:  # `poise` or `poise catalog` alone: the help, on stdout
        return _help(_message(exc))
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


def _help(text: str) -> int:
    """The help on stdout; a reader gone before it is written (``poise | head``) ends quietly."""
    from ._render import OutputClosed, emit

    try:
        emit(text)
    except OutputClosed:
        return _quiet_after_broken_pipe()
    return 0


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


def _leave_workers(code: int) -> None:
    """After the interrupt line, with the runs marked and the store closed: calls still in flight
    on worker threads (a retry's backoff, a hung server) are abandoned, not waited for at exit,
    which could take minutes; the process ends here with ``code``."""
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _default_sigint() -> None:
    """After the interrupt line, a second Ctrl-C (say, while worker threads finish at exit)
    ends the process at once, without a traceback."""
    with contextlib.suppress(ValueError, OSError):  # not the main thread
        signal.signal(signal.SIGINT, signal.SIG_DFL)
