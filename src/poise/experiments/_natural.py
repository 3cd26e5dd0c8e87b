"""The natural setting: what drives a recommender's rankings when nobody attacks it.

Every document of a category is rewritten to present every product (brand and model
names substituted, partial mentions included). A trial draws a random assignment of
documents to products and a random context order, asks the recommender once, and yields
one record per product: (product, document, position, score). Trials are seeded: trial t
of a category draws the same assignment and order on every run.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from .._errors import ModelError
from ..catalog import Category, Document, Product
from ..engine import Recommender
from ..models import ChatMessage, ChatModel, GenerateConfig
from ..ranking import RankingReader
from ..ranking._names import matcher_for
from ..store import Store
from ._recommend import Recommendation, recommend


def rewrite_document(text: str, source: Product, target: Product, products: Iterable[Product]) -> str:
    """``text`` (about ``source``) rewritten to present ``target``: each mention of the
    source, full, by brand or by model alone, becomes the same kind of mention of the target."""
    if source == target:
        return text
    names = tuple((p.brand, p.model) for p in products)
    index = next(i for i, p in enumerate(products) if p == source)
    out, last = [], 0
    for m in matcher_for(names).find(text):
        if m.product != index:
            continue
        name = {"brand": target.brand, "model": target.model}.get(m.kind, f"{target.brand} {target.model}")
        if m.kind == "full" and target.model.lower().startswith(target.brand.lower()):
            name = target.model
        mention = text[m.start : m.end]
        suffix = mention[-2:] if mention[-2:] in ("'s", "’s") else ""
        out.append(text[last : m.start])
        out.append(name + suffix)
        last = m.end
    out.append(text[last:])
    return "".join(out)


@dataclass(frozen=True)
class Trial:
    """One draw: document ``assignment[i]`` presents product i; ``order`` is the context order."""

    category: str
    index: int
    seed: int
    assignment: tuple[int, ...]
    order: tuple[int, ...]

    @property
    def task_key(self) -> str:
        return f"{self.category}/trial={self.index}"


def draw_trial(category: Category, index: int, seed: int = 0) -> Trial:
    n = len(category.products)
    rng = random.Random(f"natural/{category.name}/{seed}/{index}")
    assignment = list(range(n))
    rng.shuffle(assignment)
    order = list(range(n))
    rng.shuffle(order)
    trial_seed = rng.randrange(2**31)
    return Trial(category.name, index, trial_seed, tuple(assignment), tuple(order))


REWRITE_PROMPT = """Rewrite the product page below so that it presents the {target} (brand: {target_brand}; \
model: {target_model}) instead of the {source}. Replace every mention of the {source}, of its brand and of its \
model, including shortened mentions, with the matching name of the {target}. Change nothing else: keep the \
features, specifications, price and warranty exactly as they are. Reply with the rewritten page only.

{text}"""


class Rewriter:
    """Writes document j about product i: by substituting names (the default), or through
    a model when one is given. A model's rewrite is kept only if it names the target and
    no longer names the source; otherwise the substitution is used and counted."""

    def __init__(self, model: ChatModel | None = None) -> None:
        self.model = model
        self.kind = "substitute" if model is None else f"llm:{model.spec}"
        self.llm_kept = 0
        self.fell_back = 0
        self._memo: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def __call__(self, category: Category, source: int, target: int) -> str:
        products = category.products
        src, tgt = products[source], products[target]
        if source == target or self.model is None:
            return rewrite_document(src.document.text, src, tgt, products)
        key = (category.name, source, target)
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        prompt = REWRITE_PROMPT.format(target=tgt.name, target_brand=tgt.brand, target_model=tgt.model,
                                       source=src.name, text=src.document.text)
        text = self.model.generate([ChatMessage(role="user", content=prompt)],
                                   GenerateConfig(temperature=0.0, max_tokens=1024, seed=0)).text.strip()
        found = {m.product for m in matcher_for(tuple((p.brand, p.model) for p in products)).find(text)}
        with self._lock:
            if target in found and source not in found:
                self.llm_kept += 1
            else:
                text = rewrite_document(src.document.text, src, tgt, products)
                self.fell_back += 1
            self._memo[key] = text
        return text


def trial_documents(category: Category, trial: Trial, rewriter: Rewriter | None = None) -> list[Document]:
    """The documents of a trial, in catalog order: product i gets document assignment[i],
    rewritten to present it."""
    rewrite = rewriter or Rewriter()
    products = category.products
    return [Document(text=rewrite(category, trial.assignment[i], i),
                     source_url=products[trial.assignment[i]].document.source_url)
            for i in range(len(products))]


def run_trial(engine: Recommender, category: Category, trial: Trial, *, store: Store, run_id: str,
              rewriter: Rewriter | None = None, reader: RankingReader | None = None) -> Recommendation:
    rewriter = rewriter or Rewriter()
    return recommend(
        engine, category, store=store, run_id=run_id, seed=trial.seed, order=trial.order,
        documents=trial_documents(category, trial, rewriter), task_key=trial.task_key,
        meta={"experiment": "natural", "trial": trial.index, "assignment": list(trial.assignment),
              "rewrite": rewriter.kind},
        reader=reader,
    )


def run_natural(
    engine: Recommender,
    categories: list[Category],
    *,
    trials: int,
    store: Store,
    run_id: str,
    seed: int = 0,
    concurrency: int = 1,
    on_done: Callable[[Trial, Recommendation | None], None] | None = None,
    rewriter: Rewriter | None = None,
    reader: RankingReader | None = None,
) -> int:
    """Run the trials not yet done in ``run_id``; returns how many were run now.

    Finished trials are skipped, so calling this again after an interrupt resumes.
    A trial whose model call failed is stored as a failed row and retried next time.
    """
    done = store.done_tasks(run_id)
    todo = [draw_trial(c, t, seed) for c in categories for t in range(trials)]
    todo = [t for t in todo if t.task_key not in done]
    by_name = {c.name: c for c in categories}
    workers = max(1, min(concurrency, engine.model.max_concurrency))
    ran = 0
    pool = ThreadPoolExecutor(max_workers=workers)
    pending: dict[Future[Recommendation], Trial] = {}
    queue = iter(todo)
    interrupted = False
    try:
        while True:
            while len(pending) < workers:
                trial = next(queue, None)
                if trial is None:
                    break
                pending[pool.submit(run_trial, engine, by_name[trial.category], trial,
                                    store=store, run_id=run_id, rewriter=rewriter, reader=reader)] = trial
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                trial = pending.pop(future)
                try:
                    rec = future.result()
                except ModelError:
                    rec = None  # stored as a failed row by recommend(); rerun retries it
                ran += 1
                if on_done:
                    on_done(trial, rec)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM
        interrupted = True
        raise
    finally:
        # interrupted: the calls in flight are not waited for (a retry's backoff or a hung server could
        # hold them for minutes), so the run is marked interrupted at once; any other failure waits for
        # them, so none writes to the run after it is marked
        pool.shutdown(wait=not interrupted, cancel_futures=True)
    return ran
