"""Chat models behind one interface, named by spec strings (``local``, ``llamacpp:PATH``,
``openai:MODEL``)."""

from ._base import ChatModel, RetryPolicy, UsageTotals
from ._cache import RequestCache, cache_key
from ._llamacpp import LlamaCppModel, default_model_path
from ._openai import OpenAIModel, redact_url
from ._registry import DEFAULT_MODEL_SPEC, backends, get_model, register_backend
from ._types import ChatMessage, ChatResponse, GenerateConfig, TokenLogprob, TopLogprob, Usage

__all__ = [
    "DEFAULT_MODEL_SPEC",
    "ChatMessage",
    "ChatModel",
    "ChatResponse",
    "GenerateConfig",
    "LlamaCppModel",
    "OpenAIModel",
    "RequestCache",
    "RetryPolicy",
    "TokenLogprob",
    "TopLogprob",
    "Usage",
    "UsageTotals",
    "backends",
    "cache_key",
    "default_model_path",
    "get_model",
    "redact_url",
    "register_backend",
]
