"""Shared fixtures: a tiny catalog, the real bundled model, a real llama.cpp server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from poise.catalog import Catalog, Category, Document, Product
from poise.models import default_model_path

# A suite started in the background by a shell without job control ("make test &" in a script)
# inherits Ctrl-C ignored, and so would every command the tests start and interrupt (the Ctrl-C
# tests then see a command that finishes). Give Ctrl-C its normal handling back: commands started
# from here get the default disposition, whatever started the suite.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def tiny_category() -> Category:
    """Three short product pages: a real model reads them in a few seconds."""
    docs = {
        ("Blendtec", "Designer 650 S"): "The Blendtec Designer 650 S blender has a 1,560-watt motor, "
        "a touchscreen with six programs and an 8-year warranty. Price: $449.",
        ("Ninja", "Foodi Power Blender"): "The Ninja Foodi Power Blender crushes ice with a 1,400-watt "
        "motor and comes with a smoothie bowl maker. Price: $179. 1-year warranty.",
        ("Oster", "Pro 1200"): "The Oster Pro 1200 blender has 7 speeds, a glass jar and two smoothie "
        "cups. Price: $99. 10-year warranty on the motor.",
    }
    return Category(
        name="blender",
        query="Which blender should I buy? Rank them.",
        products=tuple(Product(brand=b, model=m, document=Document(text=t)) for (b, m), t in docs.items()),
    )


@pytest.fixture
def tiny_catalog_file(tmp_path: Path) -> Path:
    import json

    cat = tiny_category()
    path = tmp_path / "tiny.jsonl"
    lines = [json.dumps({"type": "category", "category": cat.name, "query": cat.query})]
    lines += [json.dumps({"category": cat.name, "brand": p.brand, "model": p.model, "document": p.document.text})
              for p in cat.products]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def model_path() -> Path:
    return default_model_path()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def llama_server(model_path: Path) -> Iterator[str]:
    """A real llama.cpp OpenAI-compatible server (llama-cpp-python's) on loopback."""
    port = free_port()
    # open for the server's whole life (closed in the finally below), so no `with`
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"poise-llama-server-{port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "4096", "--logits_all", "true", "--model_alias", "smollm2"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {proc.returncode}; see {log.name}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"llama.cpp server did not start in 120 s; see {log.name}") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def catalog_of(*categories: Category) -> Catalog:
    return Catalog(source="test", categories={c.name: c for c in categories})
