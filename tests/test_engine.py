"""The search engine under test: context order, prompt building, templates, one recommendation.

The model is a scripted fake built the way a backend is: a ``ChatModel`` subclass that
implements ``identity`` and the protected ``_generate`` hook, so ``ChatModel.generate``
(validation, usage accounting, empty-response check) runs unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from poise import EmptyResponseError, TemplateError
from poise.catalog import Category, Document, Product, sample_catalog
from poise.engine import (
    DEFAULT_GENERATE_CONFIG,
    DOCUMENT_FIELDS,
    PROMPT_FIELDS,
    PromptTemplate,
    SearchEngine,
    context_order,
    default_template,
)
from poise.models import ChatMessage, ChatModel, ChatResponse, GenerateConfig, Usage

from .conftest import tiny_category


class ScriptedModel(ChatModel):
    """Answers each call with the next scripted text and remembers what it was asked."""

    def __init__(self, *replies: str) -> None:
        super().__init__("fake:scripted")
        self.replies = list(replies)
        self.requests: list[tuple[list[ChatMessage], GenerateConfig]] = []

    def identity(self) -> dict[str, Any]:
        return {"backend": "fake", "model": "scripted"}

    def _generate(self, messages: list[ChatMessage], config: GenerateConfig) -> ChatResponse:
        self.requests.append((list(messages), config))
        return ChatResponse(text=self.replies.pop(0), model="scripted", finish_reason="stop",
                            usage=Usage(prompt_tokens=11, completion_tokens=5))


def eight_products() -> Category:
    return sample_catalog().category("blender")


# -- context order -------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 2, 3, 8, 25])
def test_context_order_is_a_permutation(n):
    for seed in range(20):
        order = context_order(n, seed)
        assert sorted(order) == list(range(n))


def test_context_order_is_deterministic_per_seed():
    for seed in (0, 1, 7, 12345, 2**40):
        assert context_order(8, seed) == context_order(8, seed)


def test_context_order_differs_across_seeds():
    orders = {tuple(context_order(8, seed)) for seed in range(50)}
    assert len(orders) >= 45  # 8! orders: repeats among 50 seeds are rare
    # every product comes first for some seed: no position is fixed
    firsts = {context_order(8, seed)[0] for seed in range(200)}
    assert firsts == set(range(8))


# -- building messages -----------------------------------------------------------------------------
def test_build_messages_puts_documents_in_context_order_after_the_query():
    category = eight_products()
    engine = SearchEngine(ScriptedModel())
    order = [5, 2, 7, 0, 3, 6, 1, 4]
    messages = engine.build_messages(category, "Which blender crushes ice best?", order)
    assert [m.role for m in messages] == ["system", "user"]
    assert messages[0].content == default_template().system
    user = messages[1].content
    assert user.startswith("Which blender crushes ice best?")
    offsets = []
    for position, index in enumerate(order, start=1):
        p = category.products[index]
        block = f"[{position}] {p.name}\n{p.document.text}"
        assert user.count(block) == 1, p.name
        offsets.append(user.index(block))
    assert offsets == sorted(offsets)
    assert offsets[0] > user.index("Which blender crushes ice best?")


def test_build_messages_with_replacement_documents():
    category = tiny_category()
    engine = SearchEngine(ScriptedModel())
    docs = [Document(text=f"Replacement page number {i}.") for i in range(3)]
    user = engine.build_messages(category, "q?", [2, 0, 1], docs)[-1].content
    assert "[1] Oster Pro 1200\nReplacement page number 2." in user
    assert "[2] Blendtec Designer 650 S\nReplacement page number 0." in user
    assert "[3] Ninja Foodi Power Blender\nReplacement page number 1." in user
    for p in category.products:
        assert p.document.text not in user


@pytest.mark.parametrize("order", [[0, 1], [0, 1, 1], [0, 1, 3], [1, 2, 3]])
def test_build_messages_rejects_an_order_that_is_not_a_permutation(order):
    with pytest.raises(ValueError, match="not a permutation"):
        SearchEngine(ScriptedModel()).build_messages(tiny_category(), "q?", order)


def test_build_messages_rejects_wrong_number_of_documents():
    with pytest.raises(ValueError, match="2 documents for 3 products"):
        SearchEngine(ScriptedModel()).build_messages(
            tiny_category(), "q?", [0, 1, 2], [Document(text="a"), Document(text="b")])


# -- templates -------------------------------------------------------------------------------------
def test_default_template_uses_only_known_placeholders():
    t = default_template()
    assert t.name == "default"
    assert "{documents}" in t.user and "{query}" in t.user
    assert "{text}" in t.document
    assert {"query", "documents"} <= PROMPT_FIELDS and {"text", "position", "title"} <= DOCUMENT_FIELDS


def test_template_from_toml_file_overrides_the_prompt(tmp_path):
    path = tmp_path / "terse.toml"
    path.write_text(
        'system = ""\n'
        'user = "Q: {query}\\nCategory: {category} ({n} products)\\n---\\n{documents}\\n---"\n'
        'document = "#{position} {brand} / {model} <{url}>: {text}"\n'
        'separator = "\\n"\n',
        encoding="utf-8",
    )
    template = PromptTemplate.from_file(path)
    assert template.name == "terse"
    category = Category(name="kettle", products=(
        Product(brand="Fellow", model="Stagg", document=Document(text="Pour-over.", source_url="https://f.example")),
        Product(brand="Bodum", model="Bistro", document=Document(text="One litre.")),
    ))
    model = ScriptedModel("1. Fellow Stagg")
    result = SearchEngine(model, template=template).recommend(category, query="Best kettle?", order=[1, 0])
    # an empty system prompt sends no system message
    assert [m.role for m in result.messages] == ["user"]
    assert result.messages[0].content == (
        "Q: Best kettle?\nCategory: kettle (2 products)\n---\n"
        "#1 Bodum / Bistro <>: One litre.\n"
        "#2 Fellow / Stagg <https://f.example>: Pour-over.\n---"
    )
    assert result.template == "terse"
    assert model.requests[0][0] == list(result.messages)


def write_template(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ('system = "x"\nuser = "{query} {documents} {price}"\n',
         ["'user' uses unknown placeholder {price}", "allowed: {category}, {documents}, {n}, {query}"]),
        ('system = "You sell {brand}"\nuser = "{documents}"\n', ["'system' uses unknown placeholder {brand}"]),
        ('system = "x"\nuser = "{documents}"\ndocument = "{text} ({rating} stars)"\n',
         ["'document' uses unknown placeholder {rating}", "{text}", "{url}"]),
        ('system = "x"\nuser = "{query}"\n', ["neither 'system' nor 'user' contains {documents}"]),
        ('system = "x"\nuser = "{documents}"\ndocument = "{title}"\n', ["'document' does not contain {text}"]),
        ('system = "x"\nuser = "{documents} {query"\n', ["malformed placeholder", "{{"]),
        ('system = "x"\n', ["field 'user'", "required"]),
        ('system = "x"\nuser = "{documents}"\ntemperature = 0.2\n', ["field 'temperature'", "not permitted"]),
        ('system = "x\nuser = 3\n', ["not valid TOML"]),
    ],
)
def test_bad_template_raises_template_error_naming_file_and_problem(tmp_path, body, fragments):
    path = write_template(tmp_path, body)
    with pytest.raises(TemplateError) as info:
        PromptTemplate.from_file(path)
    line = info.value.one_line()
    assert "\n" not in line
    assert line.startswith(f"{path}: "), line
    for fragment in fragments:
        assert fragment in line, line


def test_missing_template_file(tmp_path):
    with pytest.raises(TemplateError) as info:
        PromptTemplate.from_file(tmp_path / "nope.toml")
    line = info.value.one_line()
    assert "nope.toml: no such template file" in line and "--template" in line


# -- recommend with a scripted model ---------------------------------------------------------------------
def test_recommend_orders_context_by_seed_and_passes_the_seed_to_the_model():
    category = eight_products()
    model = ScriptedModel("1. Vitamix A3500", "1. Blendtec Designer 650 S")
    engine = SearchEngine(model)
    first = engine.recommend(category, seed=3)
    second = engine.recommend(category, seed=4)

    assert first.context_order == tuple(context_order(8, 3))
    assert second.context_order == tuple(context_order(8, 4))
    assert first.context_order != second.context_order
    assert first.response.text == "1. Vitamix A3500"
    assert second.response.text == "1. Blendtec Designer 650 S"

    (sent_messages, sent_config), _ = model.requests
    assert sent_messages == list(first.messages)
    assert sent_messages == engine.build_messages(category, category.default_query, first.context_order)
    assert sent_config.seed == 3 and model.requests[1][1].seed == 4
    assert sent_config == DEFAULT_GENERATE_CONFIG.model_copy(update={"seed": 3})
    assert first.config == sent_config

    assert first.query == category.query
    assert first.products == category.products
    assert (first.category, first.seed, first.template) == ("blender", 3, "default")
    assert first.response.cache_key  # went through ChatModel.generate
    assert model.usage.calls == 2 and model.usage.prompt_tokens == 22


def test_recommend_same_seed_gives_the_same_request():
    model = ScriptedModel("a", "b")
    engine = SearchEngine(model)
    a = engine.recommend(eight_products(), seed=9)
    b = engine.recommend(eight_products(), seed=9)
    assert a.messages == b.messages and a.config == b.config
    assert a.response.cache_key == b.response.cache_key


def test_recommend_with_explicit_query_order_documents_and_fixed_seed():
    category = tiny_category()
    model = ScriptedModel("1. Oster Pro 1200")
    config = GenerateConfig(temperature=0.7, max_tokens=64, seed=42)
    docs = [Document(text=f"Page {i}.") for i in range(3)]
    result = SearchEngine(model, config=config).recommend(
        category, query="Cheapest blender?", seed=5, order=[2, 1, 0], documents=docs)
    assert result.context_order == (2, 1, 0)
    assert result.query == "Cheapest blender?"
    user = result.messages[-1].content
    assert user.startswith("Cheapest blender?")
    assert user.index("[1] Oster Pro 1200\nPage 2.") < user.index("[3] Blendtec Designer 650 S\nPage 0.")
    # a seed fixed in the engine's config wins over the per-call seed
    assert model.requests[0][1] == config and result.config.seed == 42
    assert result.seed == 5


def test_recommend_empty_response_is_an_error():
    with pytest.raises(EmptyResponseError) as info:
        SearchEngine(ScriptedModel("   \n")).recommend(tiny_category())
    assert "fake:scripted returned an empty response" in info.value.one_line()
