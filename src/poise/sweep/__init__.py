"""Sweeps: a grid of natural, attack and defend runs from one TOML file, run by an executor
(threads of this process) over one store, with calls spread over several endpoints."""

from ._base import NO_DEFENSE, Job, Options, Sweep, SweepError, SweepFile, load_sweep
from ._endpoints import FAILURES_TO_DOWN, Endpoint, Endpoints, PooledModel
from ._executors import STATES, Event, LocalExecutor, Outcome, close_models, store_states, totals
from ._jobs import ModelSource, Prepared, prepare, prepare_all

__all__ = [
    "FAILURES_TO_DOWN",
    "NO_DEFENSE",
    "STATES",
    "Endpoint",
    "Endpoints",
    "Event",
    "Job",
    "LocalExecutor",
    "ModelSource",
    "Options",
    "Outcome",
    "PooledModel",
    "Prepared",
    "Sweep",
    "SweepError",
    "SweepFile",
    "close_models",
    "load_sweep",
    "prepare",
    "prepare_all",
    "store_states",
    "totals",
]
