"""Saved prompt states for llama.cpp: a prompt that shares a long prefix with any recent prompt
evaluates only what follows that prefix.

llama-cpp-python reuses the KV cache of the prefix a prompt shares with the *previous* prompt
only. An attack asks about many candidates on a few context orders, so the prompt that shares
the longest prefix with the next one (the same order, another injection) is seldom the previous
one. :class:`PrefixStore` keeps the KV state of recent prompts (llama.cpp's per-sequence state:
the keys and values only, no logits) within a byte budget, and before each call restores the one
that shares the longest prefix with the new prompt, when it beats what the live context shares.

Outputs are unchanged, because a reused prefix is cut back to a multiple of the batch size
(:func:`aligned_reuse`): the rest of the prompt is then evaluated in the very batches a full
evaluation uses. llama.cpp's numbers depend on how tokens are batched: a prompt whose last token
is re-evaluated alone (as llama-cpp-python does when the whole prompt is already held) can
answer differently from the same prompt evaluated in full. tests/test_prefix_cache.py checks
the answers on the real model.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

#: A restored state must save at least this many tokens over the live context to be worth loading.
MIN_GAIN_TOKENS = 16


@dataclass
class PrefixStats:
    """What the store did: restores, tokens they saved, states saved, bytes held now."""

    restores: int = 0
    restored_tokens: int = 0
    saves: int = 0
    bytes_held: int = 0


@dataclass(eq=False)  # held by identity
class _Saved:
    tokens: npt.NDArray[np.intc]
    data: Any  # a ctypes uint8 array: llama.cpp's state of sequence 0
    size: int


def common_prefix(a: npt.NDArray[np.intc], b: npt.NDArray[np.intc]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if len(diff) else n


@dataclass
class PrefixStore:
    """KV states of recent prompts, most recently used first, within ``capacity_bytes``."""

    capacity_bytes: int
    stats: PrefixStats = field(default_factory=PrefixStats)
    _entries: list[_Saved] = field(default_factory=list)
    _live_prompt: int = 0  # prompt tokens of the last call (the live context holds them first)

    def before_call(self, llama: Any, prompt: list[int]) -> None:
        """Prepare ``llama`` for ``prompt``: keep the live prompt's state, restore a better one,
        and cut what is reused back to a whole number of batches."""
        tokens = np.asarray(prompt, dtype=np.intc)
        live = common_prefix(llama.input_ids[: llama.n_tokens], tokens)
        self._keep_live(llama, live)
        best, entry = self._best(tokens)
        if entry is not None and aligned(best, llama) >= aligned(live, llama) + MIN_GAIN_TOKENS:
            self._restore(llama, entry)
            self.stats.restores += 1
            self.stats.restored_tokens += aligned(best, llama)
        aligned_reuse(llama, prompt)
        self._live_prompt = len(tokens)

    def _best(self, tokens: npt.NDArray[np.intc]) -> tuple[int, _Saved | None]:
        best, found = 0, None
        for entry in self._entries:
            n = common_prefix(entry.tokens, tokens)
            if n > best:
                best, found = n, entry
        if found is not None:  # most recently used first
            self._entries.remove(found)
            self._entries.insert(0, found)
        return best, found

    def _keep_live(self, llama: Any, live: int) -> None:
        """Save the previous prompt's state before the new call overwrites it."""
        from llama_cpp import llama_cpp as lcpp

        n = self._live_prompt
        if n == 0 or n > llama.n_tokens or live >= n:
            return  # nothing live, or the new prompt extends it (the live context serves it)
        tokens = np.array(llama.input_ids[:n], dtype=np.intc)
        if any(len(e.tokens) >= n and common_prefix(e.tokens, tokens) == n for e in self._entries):
            return  # already held
        llama._ctx.kv_cache_seq_rm(0, n, -1)  # the answer's tokens: no later prompt starts with them
        llama.n_tokens = n
        size = int(lcpp.llama_state_seq_get_size(llama._ctx.ctx, 0))
        data = (ctypes.c_uint8 * size)()
        written = int(lcpp.llama_state_seq_get_data(llama._ctx.ctx, data, size, 0))
        if written <= 0:
            return
        # a held prompt that the new one extends is no longer needed
        self._entries = [e for e in self._entries
                         if not (len(e.tokens) <= n and common_prefix(e.tokens, tokens) == len(e.tokens))]
        self._entries.insert(0, _Saved(tokens, data, written))
        self.stats.saves += 1
        while len(self._entries) > 1 and sum(e.size for e in self._entries) > self.capacity_bytes:
            self._entries.pop()
        if sum(e.size for e in self._entries) > self.capacity_bytes:
            self._entries.clear()
        self.stats.bytes_held = sum(e.size for e in self._entries)

    def _restore(self, llama: Any, entry: _Saved) -> None:
        from llama_cpp import llama_cpp as lcpp

        llama._ctx.kv_cache_seq_rm(0, 0, -1)
        if int(lcpp.llama_state_seq_set_data(llama._ctx.ctx, entry.data, entry.size, 0)) != entry.size:
            llama.reset()  # nothing usable restored: the call evaluates its whole prompt
            return
        n = len(entry.tokens)
        llama.input_ids[:n] = entry.tokens
        llama.n_tokens = n
        llama._requires_eval = True  # llama-cpp-python re-evaluates a token before sampling

    def clear(self) -> None:
        self._entries.clear()
        self._live_prompt = 0
        self.stats.bytes_held = 0


def aligned(n: int, llama: Any) -> int:
    """``n`` cut back to a multiple of the batch size."""
    batch = int(llama.n_batch)
    return n // batch * batch


def aligned_reuse(llama: Any, prompt: list[int]) -> None:
    """Keep of the live context only the prefix it shares with ``prompt``, cut back to a whole
    number of batches (at most the prompt less one token), so that llama-cpp-python evaluates
    the rest in the batches a full evaluation would use."""
    shared = common_prefix(llama.input_ids[: llama.n_tokens], np.asarray(prompt, dtype=np.intc))
    keep = aligned(min(shared, len(prompt) - 1), llama)
    if keep < llama.n_tokens:
        if keep == 0:
            llama.reset()
        llama._ctx.kv_cache_seq_rm(0, keep, -1)
        llama.n_tokens = keep
        llama._requires_eval = True


@dataclass
class LlamaTimings:
    """llama.cpp's own counters over this model's calls: prompt evaluation and decoding."""

    prompt_ms: float = 0.0
    prompt_tokens: int = 0  # tokens actually evaluated (a reused prefix costs nothing)
    decode_ms: float = 0.0
    decode_tokens: int = 0

    @property
    def prompt_tokens_per_s(self) -> float:
        return self.prompt_tokens / self.prompt_ms * 1000 if self.prompt_ms else 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        return self.decode_tokens / self.decode_ms * 1000 if self.decode_ms else 0.0


def perf_counters(llama: Any) -> tuple[float, int, float, int]:
    """llama.cpp's cumulative (prompt ms, prompt tokens, decode ms, decode tokens) of a context."""
    from llama_cpp import llama_cpp as lcpp

    data = lcpp.llama_perf_context(llama._ctx.ctx)
    return float(data.t_p_eval_ms), int(data.n_p_eval), float(data.t_eval_ms), int(data.n_eval)


def prefix_llama_class() -> Any:
    """``llama_cpp.Llama`` with a hook before each generation: restore a held prefix (with a
    :class:`PrefixStore`), or start from nothing (``reuse_prefix`` false: every prompt is
    evaluated in full, as a loop without any cache would), and count the tokens it decodes."""
    from llama_cpp import Llama

    class PrefixLlama(Llama):
        prefix_store: PrefixStore | None = None
        reuse_prefix: bool = True
        last_prompt_tokens: int = 0
        last_completion_tokens: int = 0

        def generate(  # type: ignore[override]  # the same call, its options passed through
            self, tokens: Sequence[int], **kwargs: Any
        ) -> Iterator[int]:
            prompt = list(tokens)
            if not self.reuse_prefix:
                self.reset()  # type: ignore[no-untyped-call]  # llama_cpp leaves Llama.reset unannotated
            elif self.prefix_store is not None:
                self.prefix_store.before_call(self, prompt)
            else:
                aligned_reuse(self, prompt)
            self.last_prompt_tokens, self.last_completion_tokens = len(prompt), 0
            for token in super().generate(prompt, **kwargs):
                self.last_completion_tokens += 1
                yield token

    return PrefixLlama
