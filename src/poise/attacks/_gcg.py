"""White-box attack: Greedy Coordinate Gradient (Zou et al. 2023) on the bundled model's
weights in PyTorch, with the loss averaged over several context orders (as Kumar &
Lakkaraju's strategic text sequences are optimised over product orders).

**The injection** is a fixed text (the strategy library's first direct phrasing) followed by
``suffix`` optimised tokens, initially " !" each.

**The loss**: the mean negative log-likelihood of a forced answer opening that names the
promoted product first, given the recommender's exact prompt (the engine's messages through
the GGUF's chat template, tokenized by llama.cpp: see ``_whitebox``), averaged over the same
``orders`` search orders at every step. The forced opening is, per order, the model's own
greedy answer to the prompt without the injection, cut where it first names a product, then
the promoted product's name ("The best blender for smoothies and crushing ice is the " +
"Oster Pro 1200"): the way the model starts its answers, with the product it should name.

**A step**: the gradient of the loss with respect to a one-hot over the suffix's tokens only
(everything before the suffix is a KV cache computed once per order, without gradients); the
``topk`` tokens with the most negative gradient at each position; ``candidates`` single-token
swaps drawn from them; those whose text does not tokenize back to the same ids in the prompt
are dropped, and so are those whose injection the stealth filter refuses
(``--max-perplexity-ratio``: :meth:`Evaluator.stealth_check`, the same llama.cpp scoring as every
method's candidates; never a recommender query); the rest are scored (batched, no gradients)
and the best is kept when it lowers the loss, so the kept suffix's loss never rises and its
injection is always one the filter admits. The search stops after ``steps`` steps or
``seconds`` of steps.

**Under a stealth filter** the starting injection (the fixed text and ``suffix`` times " !") is
checked first, before the weights load: when it is above the ratio the run stops with one line
(raise the ratio, or start from fewer tokens) rather than optimise from a start it may never
leave by single-token swaps. Each step records how many swaps it refused (``refused``), replayed
on resume with the rest of the step; steps stored before the filter applied inside the search
have no such count and are reported apart.

**Measured for real**: every ``every`` steps and at the end, the best injection so far is a
candidate the evaluator asks the recommender about (any engine: llama.cpp, an endpoint), like
every other method's; this is where the recommender budget is spent. Each step is recorded in
the store (phase ``gcg``: the kept suffix, its text and loss, the step's seconds), so a
resumed run replays finished steps without computing them, and asks the recommender nothing
twice.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from .._errors import PoiseError
from ..models import default_model_path
from ..store import CallRecord
from ._evaluate import Evaluator, injection_sha
from ._logprob import _first_mention
from ._strategies import FAMILIES, Target
from ._whitebox import SENTINEL, Piece, Surrogate, load_surrogate, require_whitebox
from .base import AttackMethod, Param, register_method

__all__ = ["GreedyCoordinateGradient", "admitted_swaps"]

#: Phases of store records that are computations on local weights, not model queries.
COMPUTE_PHASES = ("gcg",)
#: Tokens of the model's own answer read to find where it first names a product.
OPENING_TOKENS = 40
INITIAL_TOKEN = " !"


@register_method
class GreedyCoordinateGradient(AttackMethod):
    """Greedy Coordinate Gradient over an injection's suffix tokens (see the module)."""

    name = "gcg"
    description = ("white-box: Greedy Coordinate Gradient on the bundled model's weights (PyTorch, CPU), "
                   "loss averaged over context orders")

    parameters: ClassVar[dict[str, Param]] = {
        "steps": Param(20, 1, 10_000, "optimisation steps at most"),
        "seconds": Param(600.0, 1.0, 86_400.0, "optimisation time at most (the steps' seconds, replayed ones too)"),
        "orders": Param(2, 1, 10, "search orders the loss is averaged over (the same for every step)"),
        "suffix": Param(12, 1, 64, "optimised tokens after the fixed text"),
        "candidates": Param(8, 1, 512, "single-token swaps scored per step"),
        "topk": Param(64, 1, 4096, "tokens per position, by gradient, a swap is drawn from"),
        "every": Param(5, 1, 10_000, "the best injection so far is measured for real every this many steps"),
        "batch": Param(4, 1, 512, "swaps scored in one batch"),
        "threads": Param(1, 1, 256, "PyTorch CPU threads (more than the free cores slows it sharply)"),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        require_whitebox(self.name)
        self.report: dict[str, Any] = {}

    @staticmethod
    def summarize(report: dict[str, Any]) -> str:
        """One line on the method's report (``attack.json``'s ``method_report``)."""
        steps = report.get("steps") or []
        first = steps[0]["loss_before"] if steps else None
        last = steps[-1]["loss"] if steps else None
        per = sum(s["seconds"] for s in steps) / len(steps) if steps else 0.0
        measured = ", ".join(f"{m['step']}: {m['loss']:.3f} -> {m.get('mean_score', 0):.1f}"
                             for m in report.get("measured") or [])
        span = "-" if first is None or last is None else f"{first:.3f} -> {last:.3f}"
        return (f"gcg: loss {span} over {len(steps)} steps ({per:.1f} s a step, {report.get('orders', 0)} orders, "
                f"{report.get('surrogate', '?')} in PyTorch); measured for real (step: loss -> mean score): "
                f"{measured or 'none'}{_filtered(report)}")

    def search(self, evaluator: Evaluator, target: Target, rng: random.Random) -> None:
        run = _Run(self, evaluator, target, rng)
        try:
            run.loop()
        finally:
            run.release()
            self.report = run.summary()


def _filtered(report: dict[str, Any]) -> str:
    """What the stealth filter did inside the search ("" without one)."""
    ratio = report.get("max_perplexity_ratio")
    if ratio is None:
        return ""
    steps = report.get("steps") or []
    counted = [s for s in steps if "refused" in s]
    parts = [f"{sum(s['refused'] for s in counted)} of {sum(s['fitting'] for s in counted)} swaps refused "
             "before scoring"] if counted or not steps else []
    if len(counted) < len(steps):
        parts.append(f"{len(steps) - len(counted)} steps stored before the filter applied inside the search")
    return f"; stealth filter (perplexity ratio <= {ratio:g}): {', '.join(parts)}"


def admitted_swaps(evaluator: Evaluator, head: str, swaps: list[list[int]],
                   text: Callable[[list[int]], str]) -> tuple[list[list[int]], int]:
    """The swaps whose injection (``head`` + the suffix's ``text``) the evaluator's stealth filter
    admits, in order, and how many it refused. The filter scores pages on its own llama.cpp
    model: nothing is asked of the recommender, nothing counts as a query; without a maximum
    ratio every swap is admitted."""
    kept = [swap for swap in swaps if evaluator.stealth_check(head + text(swap))[0]]
    return kept, len(swaps) - len(kept)


def check_start(evaluator: Evaluator, head: str, suffix_text: str, tokens: int) -> None:
    """One clear error when the stealth filter refuses the starting injection (head + suffix)."""
    ok, ratio = evaluator.stealth_check(head + suffix_text)
    if ok or ratio is None:
        return
    stealth = evaluator.stealth
    assert stealth is not None and stealth.max_ratio is not None
    limit = stealth.max_ratio
    _, alone = evaluator.stealth_check(head)
    hint = (f"the fixed text alone is at {alone:.3g}: raise --max-perplexity-ratio to at least that"
            if alone is not None and alone > limit else
            "raise --max-perplexity-ratio, or start from fewer tokens (--param suffix=K)")
    raise PoiseError(f"gcg cannot start: its starting injection (the fixed text and {tokens} {INITIAL_TOKEN!r} "
                     f"tokens) has a perplexity ratio of {ratio:.3g}, above --max-perplexity-ratio {limit:g}", hint)


def surrogate_path(evaluator: Evaluator) -> Path:
    """The recommender's own GGUF when it runs one in-process; else the bundled model's."""
    path = getattr(evaluator.engine.model, "path", None)
    return path if isinstance(path, Path) and path.suffix == ".gguf" else default_model_path()


class _Run:
    """The state of one optimisation."""

    def __init__(self, method: GreedyCoordinateGradient, evaluator: Evaluator, target: Target,
                 rng: random.Random) -> None:
        assert evaluator.target is not None
        self.p, self.ev, self.index = method.params, evaluator, evaluator.target
        self.name = target.name
        self.head = FAMILIES["direct"](target, 0)
        self.orders = evaluator.search_orders[-self.p["orders"]:]  # fixed: every step is compared paired
        self.seed = rng.getrandbits(32)
        self.path = surrogate_path(evaluator)
        self.surrogate: Surrogate | None = None
        self.pieces: list[Piece] = []
        self.suffix: list[int] | None = None
        self.loss: float | None = None
        self.steps: list[dict[str, Any]] = []
        self.measured: list[dict[str, Any]] = []
        self.setup: dict[str, Any] = {}
        self.stopped_by = "steps"
        self.threads: int | None = None

    # -- the loop -------------------------------------------------------------------------------------
    def loop(self) -> None:
        spent = 0.0
        for k in range(self.p["steps"]):
            if spent >= self.p["seconds"]:
                self.stopped_by = "seconds"
                break
            record = self.replay(k) or self.compute(k)
            self.steps.append(record)
            spent += record["seconds"]
            if (k + 1) % self.p["every"] == 0 and k + 1 < self.p["steps"] and \
                    self.budget_left() >= 2 * self.ev.responses_per_candidate:  # the final one is kept
                self.measure(k)
        if self.steps:
            self.measure(len(self.steps) - 1)

    def budget_left(self) -> int:
        return self.ev.budget.recommender_queries - self.ev.search_queries

    def measure(self, step: int) -> None:
        """The best injection so far, asked of the recommender (unless it already was)."""
        text = self.head + self.steps[-1]["text"]
        if self.measured and self.measured[-1]["sha"] == injection_sha(text):
            return
        parent = self.measured[-1]["candidate"] if self.measured else None
        cand = self.ev.new_candidate(text, "gcg", parent, step + 1)
        self.measured.append({"candidate": cand.id, "step": step, "loss": self.steps[-1]["loss"],
                              "sha": injection_sha(text)})
        try:
            self.ev.evaluate(cand)
        finally:
            self.measured[-1]["mean_score"] = round(cand.mean_score, 4)

    # -- the store -------------------------------------------------------------------------------------
    def key(self, what: str) -> str:
        return f"{self.ev.task_prefix}gcg/{what}"

    def replay(self, k: int) -> dict[str, Any] | None:
        """Step ``k`` as the store holds it (None: never finished)."""
        import json

        done = self.ev.store.done_call(self.ev.run_id, self.key(f"step={k}"))
        if done is None:
            return None
        meta = json.loads(done["meta_json"] or "{}")
        record: dict[str, Any] = meta["step_record"]
        self.suffix, self.loss = list(meta["suffix"]), record["loss"]
        if not self.setup:
            setup = self.ev.store.done_call(self.ev.run_id, self.key("setup"))
            self.setup = json.loads(setup["meta_json"] or "{}").get("setup", {}) if setup else {}
        return record

    def save(self, what: str, seconds: float, meta: dict[str, Any]) -> None:
        ev = self.ev
        ev.store.record_call(ev.run_id, CallRecord(
            task_key=self.key(what), category=ev.category.name, query=ev.query,
            model_spec=f"whitebox:{self.path.name}", context_order=[], messages=[],
            config={k: v for k, v in self.p.items()}, template=ev.engine.template.name, latency_s=seconds,
            meta={"experiment": "attack", "phase": "gcg", "target": self.index, **meta}))

    # -- computing a step ------------------------------------------------------------------------------
    def start(self) -> Surrogate:
        """The surrogate and the orders' pieces (prefix caches, forced openings), once."""
        if self.surrogate is not None:
            return self.surrogate
        import torch

        if self.suffix is None:  # a fresh start (a replayed suffix was admitted when its step ran)
            check_start(self.ev, self.head, INITIAL_TOKEN * self.p["suffix"], self.p["suffix"])  # before the load
        self.threads = torch.get_num_threads()
        torch.set_num_threads(self.p["threads"])
        s = self.surrogate = load_surrogate(self.path)
        started = time.perf_counter()
        answers = []
        for order in self.orders:
            messages = self.ev.engine.build_messages(self.ev.category, self.ev.query, order,
                                                     self.ev.documents(self.head + SENTINEL))
            piece = s.split([m.model_dump() for m in messages], order)
            answer = s.prepare(piece, self.head, OPENING_TOKENS)
            at = _first_mention(answer, self.ev.category)
            piece.opening = (answer[:at] if at is not None else "") + self.name
            piece.target = s.tokens(piece.opening, special=False)
            self.pieces.append(piece)
            answers.append(answer)
        if self.suffix is None:
            self.suffix = s.tokens(INITIAL_TOKEN * self.p["suffix"], special=False)[: self.p["suffix"]]
            if not all(s.fits(piece, self.suffix) for piece in self.pieces):
                raise PoiseError("the initial suffix does not tokenize back to itself in this prompt",
                                 "report it: the gcg method cannot start on this model")
        seconds = time.perf_counter() - started
        self.setup = {"surrogate": s.path.name, "parameters": s.n_parameters, "load_seconds": round(s.load_seconds, 2),
                      "setup_seconds": round(seconds, 2), "orders": [list(o) for o in self.orders],
                      "prompt_tokens": [len(p.prefix) + len(self.suffix) + len(p.rest) for p in self.pieces],
                      "cached_tokens": [len(p.prefix) for p in self.pieces],
                      "openings": [p.opening for p in self.pieces], "answers": answers}
        if self.ev.store.done_call(self.ev.run_id, self.key("setup")) is None:
            self.save("setup", seconds, {"setup": self.setup})
        return s

    def compute(self, k: int) -> dict[str, Any]:
        s = self.start()
        assert self.suffix is not None
        started = time.perf_counter()
        losses, grad = [], None
        for piece in self.pieces:
            loss, g = s.gradient(piece, self.suffix)
            losses.append(loss)
            grad = g if grad is None else grad + g
        before = sum(losses) / len(losses)
        current = before if self.loss is None else self.loss  # the kept loss: never recomputed upward
        swaps = self.swaps(grad, random.Random(f"gcg/{self.seed}/{k}"))
        fitting = [c for c in swaps if all(s.fits(piece, c) for piece in self.pieces)]
        admitted, refused = admitted_swaps(self.ev, self.head, fitting, s.text)
        scored = [0.0] * len(admitted)
        for piece in self.pieces:
            scored = [a + b / len(self.pieces) for a, b in
                      zip(scored, s.losses(piece, admitted, self.p["batch"]), strict=True)]
        best = min(range(len(admitted)), key=lambda i: (scored[i], i), default=None)
        improved = best is not None and scored[best] < current
        if improved:
            assert best is not None
            self.suffix, current = admitted[best], scored[best]
        self.loss = current
        seconds = time.perf_counter() - started
        text = s.text(self.suffix)
        record = {"step": k, "loss_before": round(before, 6), "loss": round(current, 6), "improved": improved,
                  "swaps": len(swaps), "fitting": len(fitting), "refused": refused, "seconds": round(seconds, 3),
                  "text": text}
        self.save(f"step={k}", seconds, {"step_record": record, "suffix": self.suffix,
                                         "injection": self.head + text,
                                         "injection_sha": injection_sha(self.head + text)})
        return record

    def swaps(self, grad: Any, rng: random.Random) -> list[list[int]]:
        """``candidates`` distinct single-token swaps of the suffix, each drawn from the ``topk``
        allowed tokens with the most negative gradient at a random position."""
        import torch

        s = self.surrogate
        assert s is not None and self.suffix is not None
        mask = torch.full((grad.shape[1],), float("inf"))
        mask[torch.tensor(s.allowed)] = 0.0
        top = (-(grad + mask)).topk(min(self.p["topk"], len(s.allowed)), dim=1).indices.tolist()
        out: list[list[int]] = []
        seen = {tuple(self.suffix)}
        for _ in range(4 * self.p["candidates"]):
            if len(out) == self.p["candidates"]:
                break
            pos = rng.randrange(len(self.suffix))
            swap = list(self.suffix)
            swap[pos] = top[pos][rng.randrange(len(top[pos]))]
            if tuple(swap) not in seen:
                seen.add(tuple(swap))
                out.append(swap)
        return out

    def release(self) -> None:
        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)

    def summary(self) -> dict[str, Any]:
        stealth = self.ev.stealth
        return {"surrogate": self.setup.get("surrogate", self.path.name), "orders": len(self.orders),
                "head": self.head, "stopped_by": self.stopped_by, "setup": self.setup,
                "steps": self.steps, "measured": self.measured,
                "max_perplexity_ratio": None if stealth is None else stealth.max_ratio,
                "refused": sum(s.get("refused", 0) for s in self.steps)}
