"""A run's lifecycle, in one place: start it or resume it, then mark it finished, failed or
interrupted, and close the models it used, whatever happens in between."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from .._errors import PoiseError

if TYPE_CHECKING:
    from ._store import LiveRun, Store


class Closable(Protocol):
    def close(self) -> None: ...


class RunContext:
    """``with store.open_run(command, config) as run:`` — ``run.id`` is the run's id.

    With ``resume`` (the default) the latest unfinished run of the same command and
    configuration whose owner is gone is adopted (``run.resumed``); a run another live
    process is working on never is: a new run starts and ``run.live`` names the other. When the
    command's latest run stopped with other inputs, a new run starts too (a run resumes only
    with the same inputs) and ``run.stopped_other`` says which run and which inputs differ.
    On leaving, the run is marked finished, or failed (an error: its one line), or
    interrupted (Ctrl-C); then every model in ``close`` is closed, each once.
    """

    def __init__(self, store: Store, command: str, config: dict[str, Any], *, resume: bool = True,
                 close: Iterable[Closable | None] = ()) -> None:
        self.store = store
        self.command = command
        self.config = config
        self.resume = resume
        self.id = ""
        self.resumed = False
        self.live: list[LiveRun] = []
        # the latest run of the command, stopped with other inputs (never resumed): its id and what differs
        self.stopped_other: tuple[str, list[str]] | None = None
        self._close = list({id(m): m for m in close if m is not None}.values())

    def __enter__(self) -> RunContext:
        if self.resume:
            claimed, self.live = self.store.claim_unfinished(self.command, self.config)
            if claimed:
                self.id, self.resumed = claimed, True
                return self
            self.stopped_other = self.store.stopped_with_other_inputs(self.command, self.config)
        self.id = self.store.start_run(self.command, self.config)
        return self

    def done_tasks(self) -> int:
        """How many queries (or trials) of this run are already done (what a resume skips)."""
        return len(self.store.done_tasks(self.id))

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc is None:
                self.store.finish_run(self.id)
            elif isinstance(exc, KeyboardInterrupt):
                self.store.finish_run(self.id, "interrupted", _why(exc))
            else:
                self.store.finish_run(self.id, "failed", _why(exc))
        finally:
            self.close_models()

    def close_models(self) -> None:
        models, self._close = self._close, []
        for model in models:
            model.close()


def _why(exc: BaseException) -> str:
    return exc.one_line() if isinstance(exc, PoiseError) else type(exc).__name__
