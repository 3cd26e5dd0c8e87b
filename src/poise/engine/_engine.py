"""The conversational search engine under test: documents in, one recommendation out."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..catalog import Category, Document, Product
from ..models import ChatMessage, ChatModel, ChatResponse, GenerateConfig
from ._template import PromptTemplate, default_template

#: The recommender's sampling: greedy and seeded; a presence penalty keeps small models
#: from looping on one sentence.
DEFAULT_GENERATE_CONFIG = GenerateConfig(temperature=0.0, max_tokens=384, presence_penalty=0.6)


def context_order(n: int, seed: int) -> list[int]:
    """The order documents appear in the context for a seed: catalog indices, first to last."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


@dataclass(frozen=True)
class EngineResult:
    """One recommendation: what was asked, in which context order, and what came back."""

    category: str
    query: str
    products: tuple[Product, ...]
    context_order: tuple[int, ...]
    messages: tuple[ChatMessage, ...]
    config: GenerateConfig
    response: ChatResponse
    template: str
    seed: int


class Recommender(ABC):
    """Something that takes a category, a query, the documents, a context order and a seed
    and returns an answer: the plain :class:`SearchEngine`, and every defended engine
    (``poise.defenses``), which wraps another recommender and is one itself, so experiments,
    attacks and transfers run against either unchanged."""

    model: ChatModel
    template: PromptTemplate
    config: GenerateConfig

    @abstractmethod
    def build_messages(self, category: Category, query: str, order: Sequence[int],
                       documents: Sequence[Document] | None = None) -> list[ChatMessage]:
        """The chat messages of one call."""

    def identity(self) -> dict[str, Any]:
        """What makes this recommender answer as it does (recorded with every run)."""
        return {"model": self.model.identity(), "template": self.template.name}

    def recommend(
        self,
        category: Category,
        *,
        query: str | None = None,
        seed: int = 0,
        order: Sequence[int] | None = None,
        documents: Sequence[Document] | None = None,
    ) -> EngineResult:
        """Ask the model once. The context order comes from ``seed`` unless given."""
        query = query or category.default_query
        order = list(order) if order is not None else context_order(len(category.products), seed)
        messages = self.build_messages(category, query, order, documents)
        config = self.config if self.config.seed is not None else self.config.model_copy(update={"seed": seed})
        response = self.model.generate(messages, config)
        return EngineResult(
            category=category.name, query=query, products=category.products,
            context_order=tuple(order), messages=tuple(messages), config=config,
            response=response, template=self.template.name, seed=seed,
        )


class SearchEngine(Recommender):
    """A recommender: a chat model, a prompt template and sampling parameters."""

    def __init__(
        self,
        model: ChatModel,
        *,
        template: PromptTemplate | None = None,
        config: GenerateConfig | None = None,
    ) -> None:
        self.model = model
        self.template = template or default_template()
        self.config = config or DEFAULT_GENERATE_CONFIG

    def build_messages(
        self,
        category: Category,
        query: str,
        order: Sequence[int],
        documents: Sequence[Document] | None = None,
    ) -> list[ChatMessage]:
        """The chat messages for ``query`` with the documents in ``order`` (catalog indices)."""
        products = category.products
        docs = list(documents) if documents is not None else [p.document for p in products]
        if len(docs) != len(products):
            raise ValueError(f"{len(docs)} documents for {len(products)} products")
        if sorted(order) != list(range(len(products))):
            raise ValueError(f"context order {list(order)} is not a permutation of 0..{len(products) - 1}")
        t = self.template
        blocks = []
        for position, index in enumerate(order, start=1):
            product, doc = products[index], docs[index]
            blocks.append(t.document.format(
                position=position, title=product.name, brand=product.brand, model=product.model,
                url=doc.source_url or "", text=doc.text,
            ))
        fields = {"query": query, "documents": t.separator.join(blocks),
                  "category": category.name, "n": len(products)}
        messages = []
        system = t.system.format(**fields)
        if system.strip():
            messages.append(ChatMessage(role="system", content=system))
        messages.append(ChatMessage(role="user", content=t.user.format(**fields)))
        return messages
