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
are dropped; the rest are scored (batched, no gradients) and the best is kept when it lowers
the loss, so the kept suffix's loss never rises. The search stops after ``steps`` steps or
``seconds`` of steps.

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
from pathlib import Path
from typing import Any, ClassVar

from ..models import default_model_path
from ..store import CallRecord
from ._evaluate import Evaluator, injection_sha
from ._logprob import _first_mention
from ._strategies import FAMILIES, Target
from ._whitebox import SENTINEL, Piece, Surrogate, load_surrogate, require_whitebox
from .base import AttackMethod, Param, register_method

__all__ = ["GreedyCoordinateGradient"]

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
                f"{measured or 'none'}")

    def search(self, evaluator: Evaluator, target: Target, rng: random.Random) -> None:
        run = _Run(self, evaluator, target, rng)
        try:
            run.loop()
        finally:
            run.release()
            self.report = run.summary()


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
                from .._errors import PoiseError

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
        scored = [0.0] * len(fitting)
        for piece in self.pieces:
            scored = [a + b / len(self.pieces) for a, b in
                      zip(scored, s.losses(piece, fitting, self.p["batch"]), strict=True)]
        best = min(range(len(fitting)), key=lambda i: (scored[i], i), default=None)
        improved = best is not None and scored[best] < current
        if improved:
            assert best is not None
            self.suffix, current = fitting[best], scored[best]
        self.loss = current
        seconds = time.perf_counter() - started
        text = s.text(self.suffix)
        record = {"step": k, "loss_before": round(before, 6), "loss": round(current, 6), "improved": improved,
                  "swaps": len(swaps), "fitting": len(fitting), "seconds": round(seconds, 3), "text": text}
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
        return {"surrogate": self.setup.get("surrogate", self.path.name), "orders": len(self.orders),
                "head": self.head, "stopped_by": self.stopped_by, "setup": self.setup,
                "steps": self.steps, "measured": self.measured}
