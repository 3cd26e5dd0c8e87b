"""Sweeps: a grid of natural, attack and defend runs from one TOML file, run by an executor
(threads of this process, or Ray tasks) over one store, with calls spread over several endpoints."""

from ._base import MAX_SWEEP_JOBS, NO_DEFENSE, Job, Options, Sweep, SweepError, SweepFile, load_sweep
from ._endpoints import FAILURES_TO_DOWN, Endpoint, Endpoints, PooledModel
from ._executors import STATES, Event, LocalExecutor, Outcome, close_models, store_states, totals
from ._jobs import ModelSource, Prepared, prepare, prepare_all
from ._progress import LIVE_STATES, Tally
from ._ray import INSTALL_HINT, JobResult, RayExecutor, check_ray_address, connect_ray, ray_session, require_ray

__all__ = [
    "FAILURES_TO_DOWN",
    "INSTALL_HINT",
    "LIVE_STATES",
    "MAX_SWEEP_JOBS",
    "NO_DEFENSE",
    "STATES",
    "Endpoint",
    "Endpoints",
    "Event",
    "Job",
    "JobResult",
    "LocalExecutor",
    "ModelSource",
    "Options",
    "Outcome",
    "PooledModel",
    "Prepared",
    "RayExecutor",
    "Sweep",
    "SweepError",
    "SweepFile",
    "Tally",
    "check_ray_address",
    "close_models",
    "connect_ray",
    "load_sweep",
    "prepare",
    "prepare_all",
    "ray_session",
    "require_ray",
    "store_states",
    "totals",
]
