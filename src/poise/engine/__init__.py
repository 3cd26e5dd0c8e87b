"""The search engine under test: prompt templates, context order, one call in, one response out."""

from ._engine import EngineResult, SearchEngine, context_order
from ._template import DOCUMENT_FIELDS, PROMPT_FIELDS, PromptTemplate, default_template

__all__ = [
    "DOCUMENT_FIELDS",
    "PROMPT_FIELDS",
    "EngineResult",
    "PromptTemplate",
    "SearchEngine",
    "context_order",
    "default_template",
]
