"""Model specs: one string names a model on the CLI and in Python.

``local``                the bundled SmolLM2-135M-Instruct (default)
``llamacpp:PATH``        any GGUF file, in-process
``openai:MODEL``         any OpenAI-compatible endpoint (``base_url`` / ``OPENAI_BASE_URL``)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .._errors import ModelSpecError
from .._text import UNSAFE_CHARS
from ._base import ChatModel

DEFAULT_MODEL_SPEC = "local"
# what has no place in a spec (it would reach the server or a file path as it is): every C0 and
# C1 control (newline, tab and CR too), DEL, and the bidi and invisible characters of _text
_NOT_IN_SPEC = re.compile(f"[\x00-\x1f\x7f-\x9f]|{UNSAFE_CHARS.pattern}")

# A factory takes (spec, argument after the colon, **options) and returns a model.
BackendFactory = Callable[..., ChatModel]
_BACKENDS: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``name:ARG`` specs build models with ``factory(spec, arg, **options)``."""
    _BACKENDS[name] = factory


def backends() -> list[str]:
    return sorted(_BACKENDS)


def _local(spec: str, arg: str, **options: Any) -> ChatModel:
    from ._llamacpp import LlamaCppModel, default_model_path

    options.pop("base_url", None)
    return LlamaCppModel(spec, default_model_path(), **options)


def _llamacpp(spec: str, arg: str, **options: Any) -> ChatModel:
    from ._llamacpp import LlamaCppModel

    if not arg:
        raise ModelSpecError(
            "the llamacpp model spec names no file", "write it as llamacpp:PATH/TO/MODEL.gguf"
        )
    options.pop("base_url", None)
    return LlamaCppModel(spec, arg, **options)


def _openai(spec: str, arg: str, **options: Any) -> ChatModel:
    from ._openai import OpenAIModel

    options.pop("n_ctx", None)
    return OpenAIModel(spec, arg, **options)


register_backend("local", _local)
register_backend("llamacpp", _llamacpp)
register_backend("openai", _openai)


def check_model_spec(spec: str) -> str:
    """``spec`` without surrounding spaces; ModelSpecError when a character of it is a control
    (a newline, CR, tab, ESC ...) or an invisible or bidi character."""
    found = _NOT_IN_SPEC.search(spec)
    if found is not None:
        raise ModelSpecError(f"model spec {spec!r} has a control or invisible character ({found.group()!r} at "
                             f"position {found.start() + 1})",
                             "retype it without them, e.g. openai:gpt-4o-mini or llamacpp:models/x.gguf")
    return spec.strip()


def get_model(spec: str = DEFAULT_MODEL_SPEC, **options: Any) -> ChatModel:
    """Build the model a spec string names; options go to the backend (cache, base_url ...)."""
    spec = check_model_spec(spec)
    name, _, arg = spec.partition(":")
    factory = _BACKENDS.get(name)
    if factory is None:
        raise ModelSpecError(
            f"unknown model spec {spec!r}",
            "use one of: local, llamacpp:PATH, openai:MODEL",
        )
    if name == "local" and arg:
        raise ModelSpecError(f"unknown model spec {spec!r}", "write just `local` for the bundled model")
    options = {k: v for k, v in options.items() if v is not None}
    return factory(spec, arg, **options)
