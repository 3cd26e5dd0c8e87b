"""Sweeps on this machine: a grid of attack jobs on the bundled model with the local executor
and with Ray, and a natural sweep's queries per second against 1, 2 and 4 llama.cpp servers
on loopback (calls spread over the servers, as ``poise sweep --base-url A --base-url B``).

    python benchmarks/bench_sweep.py                      # both parts
    python benchmarks/bench_sweep.py --parts executors    # local vs Ray only
    python benchmarks/bench_sweep.py --parts servers --servers 1 2 4 --trials 6

Every run starts from a new store (so no request cache) and prints its wall time, the model
queries the sweep made and queries per second. The catalog is three categories of three
products with short pages, written to a temporary folder. On a machine with few cores the
figures show the overhead of each executor and what spreading calls costs or buys when the
servers share the same cores: they are not a scaling curve.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from poise.models import default_model_path
from poise.store import Store
from poise.sweep import LocalExecutor, ModelSource, RayExecutor, close_models, load_sweep, prepare_all, totals

CATALOG = {
    "blender": [("Oster", "Pro 1200", "The Oster Pro 1200 has 7 speeds and a glass jar. Price: $99."),
                ("Blendtec", "Designer 650 S", "The Blendtec Designer 650 S has a 1,560-watt motor. Price: $449."),
                ("Ninja", "Foodi", "The Ninja Foodi crushes ice and makes smoothie bowls. Price: $179.")],
    "kettle": [("Fellow", "Stagg EKG", "The Fellow Stagg EKG pours precisely and holds temperature. Price: $165."),
               ("Cosori", "Gooseneck", "The Cosori Gooseneck has five presets. Price: $70."),
               ("Bonavita", "Variable", "The Bonavita Variable kettle heats fast. Price: $60.")],
    "toaster": [("Breville", "Smart Toaster", "The Breville Smart Toaster lowers the bread itself. Price: $180."),
                ("Cuisinart", "CPT-180", "The Cuisinart CPT-180 has four slots and six shades. Price: $90."),
                ("Dualit", "Classic", "The Dualit Classic is built by hand and lasts decades. Price: $300.")],
}
ATTACK_OPTIONS = ("budget = 2\nfinal_orders = 1\nselection_orders = 1\nconfirm = 0\nresponses = 1\n"
                  "max_tokens = {max_tokens}\n")


def write_catalog(folder: Path) -> None:
    lines = []
    for name, products in CATALOG.items():
        lines.append(json.dumps({"type": "category", "category": name, "query": f"Which {name}? Rank them."}))
        lines += [json.dumps({"category": name, "brand": b, "model": m, "document": d}) for b, m, d in products]
    (folder / "cat.jsonl").write_text("\n".join(lines) + "\n")


def run_sweep(path: Path, store: Path, *, executor: str, jobs: int, urls: Sequence[str] = (),
              endpoint_limit: int = 1) -> dict[str, Any]:
    """Run a sweep file into a new store; its wall time, queries and states."""
    source = ModelSource(list(urls), endpoint_limit=endpoint_limit)
    prepared = prepare_all(load_sweep(path).jobs(), source)
    begun = time.perf_counter()
    try:
        with Store(store) as db:
            ex: LocalExecutor | RayExecutor = LocalExecutor(db, jobs=jobs)
            if executor == "ray":
                ex = RayExecutor(db, jobs=jobs, base_urls=list(urls), endpoint_limit=endpoint_limit)
            outcomes = ex.run(prepared)
    finally:
        close_models(prepared)
        source.close()
    wall = time.perf_counter() - begun
    t = totals(outcomes)
    return {"wall_s": wall, "queries": t["queries"], "calls": t["calls"], "states": t["states"],
            "queries_per_s": t["queries"] / wall}


def show(label: str, r: dict[str, Any]) -> None:
    print(f"  {label:<34} wall {r['wall_s']:7.1f} s   queries {r['queries']:4d}   "
          f"{r['queries_per_s']:6.3f} queries/s   {r['states']}", flush=True)


# -- part 1: the local executor and Ray on the bundled model --------------------------------------
def executors(folder: Path, args: argparse.Namespace) -> None:
    import ray

    path = folder / "attack.toml"
    path.write_text('kind = "attack"\ncategories = ["blender", "kettle", "toaster"]\nmodels = ["local"]\n'
                    'methods = ["none", "single"]\n[options]\ncatalog = "cat.jsonl"\n'
                    + ATTACK_OPTIONS.format(max_tokens=args.max_tokens))
    print(f"attack sweep: 3 categories x 2 methods (none, single) on the bundled model, max_tokens "
          f"{args.max_tokens}", flush=True)
    show("local executor (jobs run one at a time)", run_sweep(path, folder / "s-local", executor="local", jobs=1))
    begun = time.perf_counter()
    ray.init(address="local", num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    print(f"  (ray.init: {time.perf_counter() - begun:.1f} s, not counted below)", flush=True)
    try:
        for jobs in args.ray_jobs:
            show(f"ray, {jobs} task(s) at once", run_sweep(path, folder / f"s-ray-{jobs}", executor="ray", jobs=jobs))
    finally:
        ray.shutdown()


# -- part 2: one natural sweep against 1, 2 and 4 llama.cpp servers -------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def llama_server(model: Path, threads: int, log_dir: Path) -> Iterator[str]:
    """``python -m llama_cpp.server`` on loopback (as tests/conftest.py starts it)."""
    port = free_port()
    with open(log_dir / f"server-{port}.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host",
                                 "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", str(threads),
                                 "--model_alias", "smollm2"], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the llama.cpp server exited with {proc.returncode}; see {log.name}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the llama.cpp server did not start in 180 s") from None
                    time.sleep(0.5)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            proc.terminate()
            proc.wait(30)


def servers(folder: Path, args: argparse.Namespace) -> None:
    path = folder / "natural.toml"
    path.write_text('kind = "natural"\ncategories = ["blender", "kettle", "toaster"]\nmodels = ["openai:smollm2"]\n'
                    f'[options]\ncatalog = "cat.jsonl"\ntrials = {args.trials}\nbootstrap = 0\n'
                    f'max_tokens = {args.max_tokens}\nconcurrency = 4\n')
    print(f"natural sweep: 3 categories x {args.trials} trials (openai:smollm2), 3 jobs at once, each server "
          f"{args.server_threads} thread(s), 1 call in flight per server", flush=True)
    model = default_model_path()
    base: float | None = None
    for n in args.servers:
        with ExitStack() as stack:
            urls = [stack.enter_context(llama_server(model, args.server_threads, folder)) for _ in range(n)]
            r = run_sweep(path, folder / f"s-servers-{n}", executor="local", jobs=3, urls=urls, endpoint_limit=1)
        base = base or r["queries_per_s"]
        show(f"{n} server(s)  ({r['queries_per_s'] / base:.2f}x one)", r)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--parts", nargs="+", choices=("executors", "servers"), default=["executors", "servers"])
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--ray-cpus", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--ray-jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--servers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--server-threads", type=int, default=1)
    parser.add_argument("--trials", type=int, default=4)
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    with tempfile.TemporaryDirectory(prefix="poise-bench-sweep-") as tmp:
        folder = Path(tmp)
        write_catalog(folder)
        if "executors" in args.parts:
            executors(folder, args)
        if "servers" in args.parts:
            servers(folder, args)
    print(f"load average {os.getloadavg()[0]:.1f} at the end", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
