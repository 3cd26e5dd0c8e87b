"""The bundled model's weights in PyTorch, for white-box attacks (``--method gcg``).

torch and transformers are an optional extra (``pip install 'poise[whitebox]'``): they are
imported only here and only when a white-box method runs; without them the method fails
before any query with one line (:func:`require_whitebox`).

**Exactly what llama.cpp evaluates.** The GGUF is dequantized by transformers into a float32
PyTorch model, but prompts are *not* tokenized by transformers: the GGUF converted to a
Hugging Face tokenizer splits some text differently from llama.cpp (on the bundled model,
"\\n\\n7" is one token "\\n\\n" then "7" in llama.cpp, but "\\n", "\\n", "7" in transformers:
2,352 tokens instead of 2,351 for the blender prompt). So the chat template is rendered by
llama-cpp-python's own formatter from the GGUF's template and tokenized by llama.cpp's
vocabulary (a vocabulary-only load): the token ids are the ones the llama.cpp engine
evaluates; only the weights differ (float32 here, Q4_1 there).

**One order's prompt in pieces**: ``prefix`` (everything before the injection, with the fixed
head of the injection appended: computed once, without gradients, kept as a KV cache),
``suffix`` (the optimised tokens), ``rest`` (the promoted page after the injection, the other
pages, the instructions, the assistant's turn) and ``target`` (the forced answer opening).
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import PoiseError

__all__ = ["Surrogate", "WhiteboxUnavailable", "load_surrogate", "require_whitebox"]

#: Stands for the optimised tokens while a prompt is split into pieces.
SENTINEL = "\u2063\u2063gcg-suffix\u2063\u2063"
INSTALL_HINT = "install the white-box extra: pip install 'poise[whitebox]'"


class WhiteboxUnavailable(PoiseError):
    """PyTorch or transformers (the ``whitebox`` extra) is not installed."""


def require_whitebox(method: str) -> None:
    """One clear error when the white-box extra is missing (imports torch: about a second)."""
    for module in ("torch", "transformers", "gguf"):
        try:
            __import__(module)
        except ImportError:
            raise WhiteboxUnavailable(f"method {method!r} needs PyTorch and transformers ({module} is not installed)",
                                      INSTALL_HINT) from None


@dataclass
class Piece:
    """One context order's prompt, split around the optimised tokens (llama.cpp token ids)."""

    order: tuple[int, ...]
    before: str  # the prompt text before the optimised tokens (the head included)
    after: str  # the prompt text after them
    prefix: list[int]
    rest: list[int]
    target: list[int] = field(default_factory=list)
    opening: str = ""  # the target's text
    cache: Any = None  # the prefix's keys and values, per layer (no gradients)


class Surrogate:
    """A GGUF's weights in PyTorch (float32, CPU) with llama.cpp's own tokenizer and chat template."""

    def __init__(self, path: Path) -> None:
        started = time.perf_counter()
        self.path = path
        self.vocab = _vocab(path)
        self.model = _weights(path)
        self.embeddings = self.model.get_input_embeddings().weight
        self.n_parameters = sum(p.numel() for p in self.model.parameters())
        self.allowed = self._allowed_tokens()
        self.load_seconds = time.perf_counter() - started

    # -- text and tokens ------------------------------------------------------------------------
    def render(self, messages: Sequence[dict[str, str]]) -> str:
        """The prompt text llama-cpp-python builds from chat messages (the GGUF's template)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        v = self.vocab
        template = v.metadata.get("tokenizer.chat_template")
        if not template:
            raise PoiseError(f"model file {self.path.name} has no chat template",
                             "white-box methods need a GGUF chat model with a template")
        eos, bos = v._model.token_get_text(v.token_eos()), v._model.token_get_text(v.token_bos())
        formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        chat: Any = [dict(m) for m in messages]
        return str(formatter(messages=chat).prompt)

    def tokens(self, text: str, special: bool = True) -> list[int]:
        return list(self.vocab.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def text(self, ids: Sequence[int]) -> str:
        return bytes(self.vocab.detokenize(list(ids))).decode("utf-8", errors="replace")

    def _allowed_tokens(self) -> list[int]:
        """Tokens a suffix may hold: printable ASCII text, no control tokens or newlines."""
        out = []
        for i in range(self.vocab.n_vocab()):
            raw = bytes(self.vocab.detokenize([i]))
            try:
                s = raw.decode("ascii")
            except UnicodeDecodeError:
                continue
            if s and s.isprintable() and "<|" not in s and s.strip():
                out.append(i)
        return out

    def split(self, messages: Sequence[dict[str, str]], order: tuple[int, ...]) -> Piece:
        """The pieces of a prompt built with :data:`SENTINEL` where the optimised tokens go."""
        text = self.render(messages)
        at = text.find(SENTINEL)
        if at < 0 or text.find(SENTINEL, at + 1) >= 0:
            raise PoiseError("the engine's prompt does not hold the injection once, as written",
                             "white-box methods need an engine that puts the page's text into the prompt unchanged")
        before, after = text[:at], text[at + len(SENTINEL):]
        return Piece(order, before, after, self.tokens(before), self.tokens(after))

    def fits(self, piece: Piece, suffix: Sequence[int]) -> bool:
        """Whether the whole prompt, as text, tokenizes to the pieces with ``suffix`` between."""
        return self.tokens(piece.before + self.text(suffix) + piece.after) == [*piece.prefix, *suffix, *piece.rest]

    # -- the model ------------------------------------------------------------------------------
    def kv(self, ids: Sequence[int], past: Any = None) -> Any:
        """The keys and values of ``ids`` (after ``past``, if given), per layer, without gradients."""
        import torch

        with torch.no_grad():
            out = self.model(input_ids=torch.tensor([list(ids)]), past_key_values=self._cache(past), use_cache=True,
                             logits_to_keep=1)
        return [(layer.keys, layer.values) for layer in out.past_key_values.layers]

    def _cache(self, kv: Any, batch: int = 1) -> Any:
        from transformers import DynamicCache

        if kv is None:
            return DynamicCache(config=self.model.config)
        return DynamicCache(ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1))
                                            for k, v in kv], config=self.model.config)

    def greedy(self, past: Any, ids: Sequence[int], max_tokens: int) -> str:
        """The model's greedy answer (up to ``max_tokens``) to ``ids`` after ``past``."""
        import torch

        eos = self.vocab.token_eos()
        cache, out = self._cache(past), []
        step = torch.tensor([list(ids)])
        with torch.no_grad():
            for _ in range(max_tokens):
                logits = self.model(input_ids=step, past_key_values=cache, logits_to_keep=1).logits
                token = int(logits[0, -1].argmax())
                if token == eos:
                    break
                out.append(token)
                step = torch.tensor([[token]])
        return self.text(out)

    def prepare(self, piece: Piece, head: str, max_tokens: int) -> str:
        """Keep ``piece``'s prefix keys and values; return the model's greedy answer (up to
        ``max_tokens``) to the same prompt without the injection. The two prompts share their
        beginning, which is evaluated once."""
        if not piece.before.endswith(head) or not piece.after.startswith("\n\n"):
            raise PoiseError("the engine's prompt does not hold the injection as the evaluator writes it",
                             "white-box methods need an engine that puts the page's text into the prompt unchanged")
        clean = self.tokens(piece.before[:len(piece.before) - len(head)] + piece.after[2:])
        common = next((i for i, (a, b) in enumerate(zip(clean, piece.prefix, strict=False)) if a != b),
                      min(len(clean), len(piece.prefix)))
        common = min(common, len(clean) - 1, len(piece.prefix) - 1)
        shared = self.kv(clean[:common]) if common else None
        piece.cache = self.kv(piece.prefix[common:], shared)
        return self.greedy(shared, clean[common:], max_tokens)

    def gradient(self, piece: Piece, suffix: Sequence[int]) -> tuple[float, Any]:
        """The target's mean negative log-likelihood with ``suffix``, and its gradient with
        respect to a one-hot over the suffix's tokens (suffix length x vocabulary)."""
        import torch

        w = self.embeddings
        onehot = torch.zeros(len(suffix), w.shape[0], dtype=w.dtype)
        onehot[torch.arange(len(suffix)), torch.tensor(list(suffix))] = 1.0
        onehot.requires_grad_(True)  # the only tensor with a gradient: the weights are frozen
        tail = torch.tensor([*piece.rest, *piece.target[:-1]])
        embeds = torch.cat([onehot @ w, w[tail]])[None]
        logits = self.model(inputs_embeds=embeds, past_key_values=self._cache(piece.cache),
                            logits_to_keep=len(piece.target)).logits[0]
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(piece.target))
        (grad,) = torch.autograd.grad(loss, [onehot])
        return float(loss.detach()), grad

    def losses(self, piece: Piece, suffixes: Sequence[Sequence[int]], batch: int = 4) -> list[float]:
        """The target's mean negative log-likelihood for each suffix (batched, no gradients)."""
        import torch

        out: list[float] = []
        n = len(piece.target)
        with torch.no_grad():
            for i in range(0, len(suffixes), batch):
                chunk = suffixes[i:i + batch]
                ids = torch.tensor([[*s, *piece.rest, *piece.target[:-1]] for s in chunk])
                logits = self.model(input_ids=ids, past_key_values=self._cache(piece.cache, len(chunk)),
                                    logits_to_keep=n).logits
                nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2),
                                                        torch.tensor([piece.target] * len(chunk)),
                                                        reduction="none").mean(dim=1)
                out += [float(x) for x in nll]
        return out


def _vocab(path: Path) -> Any:
    from llama_cpp import Llama

    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        return Llama(model_path=str(path), vocab_only=True, verbose=False)


def _weights(path: Path) -> Any:
    """The GGUF dequantized into a float32 transformers model, offline and quietly."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network: the file is local
    import transformers
    from transformers import AutoModelForCausalLM

    hf_logging: Any = transformers.logging
    hf_logging.set_verbosity_error()
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # the dequantization's progress bars
            model: Any = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                         local_files_only=True)
    except (ValueError, OSError, KeyError, RuntimeError) as exc:
        raise PoiseError(f"cannot load {path.name} into PyTorch: {str(exc).splitlines()[0][:200]}",
                         "white-box methods support the GGUF architectures transformers can dequantize") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


_LOADED: dict[Path, Surrogate] = {}


def load_surrogate(path: Path) -> Surrogate:
    """The surrogate for a GGUF file, loaded once per process (about 15 s for the bundled model)."""
    key = path.resolve()
    if key not in _LOADED:
        _LOADED[key] = Surrogate(key)
    return _LOADED[key]
