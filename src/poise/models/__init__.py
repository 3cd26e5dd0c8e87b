"""Chat models behind one interface, named by spec strings (``local``, ``llamacpp:PATH``,
``openai:MODEL``)."""

from ._base import EARLY_STOP, ChatModel, StopRule, UsageTotals
from ._cache import RequestCache, cache_key
from ._llamacpp import LlamaCppModel, default_model_path
from ._openai import OpenAIModel, redact_url
from ._prefix import LlamaTimings, PrefixStats, PrefixStore
from ._redact import inert_excerpt, redact_secrets, register_secret
from ._registry import DEFAULT_MODEL_SPEC, backends, check_model_spec, get_model, register_backend
from ._retry import MAX_TIMEOUT_S, RetryPolicy, parse_retry_after
from ._types import MAX_TOKENS, ChatMessage, ChatResponse, GenerateConfig, TokenLogprob, TopLogprob, Usage

__all__ = [
    "DEFAULT_MODEL_SPEC",
    "EARLY_STOP",
    "MAX_TIMEOUT_S",
    "MAX_TOKENS",
    "ChatMessage",
    "ChatModel",
    "ChatResponse",
    "GenerateConfig",
    "LlamaCppModel",
    "LlamaTimings",
    "OpenAIModel",
    "PrefixStats",
    "PrefixStore",
    "RequestCache",
    "RetryPolicy",
    "StopRule",
    "TokenLogprob",
    "TopLogprob",
    "Usage",
    "UsageTotals",
    "backends",
    "cache_key",
    "check_model_spec",
    "default_model_path",
    "get_model",
    "inert_excerpt",
    "parse_retry_after",
    "redact_secrets",
    "redact_url",
    "register_backend",
    "register_secret",
]
