"""``poise demo``: the whole pipeline once, on the bundled model, in a few minutes."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ..catalog import sample_catalog
from ..engine import DEFAULT_GENERATE_CONFIG, SearchEngine
from ..experiments import recommend
from ..models import RequestCache, get_model
from ..store import Store
from ._render import InertDescription, ranking_table, safe

DEMO_CATEGORIES = ("blender", "laptop", "hair dryer", "portable speaker", "coffee maker",
                   "robot vacuum", "air purifier", "electric toothbrush", "cordless drill",
                   "noise-canceling headphone")


def run_demo(console: Console, *, model: str, n_categories: int, base_url: str | None,
             store_path: Path | None) -> None:
    llm = get_model(model, base_url=base_url)  # checks the spec before anything is shown or created
    catalog = sample_catalog()
    names = [c for c in DEMO_CATEGORIES if c in catalog.categories][:n_categories]
    console.rule("poise demo")
    console.print(safe(
        f"Catalog: {catalog.source}, {len(catalog)} categories x 8 products "
        "(names from the RAGDOLL list, CC BY 4.0; documents written for poise)."))
    with Store(store_path) as store:
        llm.cache = RequestCache(store.cache_path)
        engine = SearchEngine(llm, config=DEFAULT_GENERATE_CONFIG)
        console.print(safe(f"Model: {model} ({llm.identity().get('file') or llm.identity().get('model')}); "
                           f"results in {store.dir}"))
        config = {"model": model, "categories": names, "catalog": "sample",
                  "generate": engine.config.model_dump(mode="json")}
        with store.open_run("demo", config, resume=False, close=[llm]) as run:
            run_id = run.id
            results = []
            with Progress(SpinnerColumn(), InertDescription(), BarColumn(),
                          TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                          console=console, transient=False) as progress:
                task = progress.add_task("recommending", total=len(names))
                for name in names:
                    progress.update(task, description=f"asking about {name}")
                    results.append(recommend(engine, catalog.category(name), store=store, run_id=run.id, seed=0))
                    progress.advance(task)
            for rec in results:
                r = rec.result
                console.rule(safe(f"{r.category}: {r.query}"))
                console.print(safe(r.response.text))
                if not rec.ranking.parseable:
                    console.print(safe(f"No ranking could be read: {rec.ranking.reason}.", "yellow"))
                console.print(ranking_table(
                    f"Extracted ranking ({r.response.latency_s:.1f} s, "
                    f"{r.response.usage.prompt_tokens}+{r.response.usage.completion_tokens} tokens)",
                    rec.ranked_products()))
            console.rule("the request cache")
            start = time.perf_counter()
            again = recommend(engine, catalog.category(names[0]), store=store, run_id=run.id, seed=0,
                              task_key=f"{names[0]}/seed=0/again")
            console.print(safe(
                f"Asking about {names[0]} again: served from cache={again.result.response.cached} "
                f"in {time.perf_counter() - start:.3f} s, "
                f"same ranking={again.ranking.order == results[0].ranking.order}."))
    console.print(safe(f"Done: run {run_id}. Next: `poise recommend --category blender --json`, `poise runs`."))
