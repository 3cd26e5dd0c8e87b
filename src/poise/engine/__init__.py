"""The search engine under test: prompt templates, context order, one call in, one response out."""

from ._engine import DEFAULT_GENERATE_CONFIG, EngineResult, Recommender, SearchEngine, context_order
from ._template import DOCUMENT_FIELDS, PROMPT_FIELDS, PromptTemplate, default_template

__all__ = [
    "DEFAULT_GENERATE_CONFIG",
    "DOCUMENT_FIELDS",
    "PROMPT_FIELDS",
    "EngineResult",
    "PromptTemplate",
    "Recommender",
    "SearchEngine",
    "context_order",
    "default_template",
]
