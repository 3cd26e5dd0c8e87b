"""A product named only in passing prose, in an answer that marks its picks, makes the answer
ambiguous (``poise.ranking._passing``); marked, picked and unstructured answers are read."""

from __future__ import annotations

import pytest

from poise.ranking import parse_ranking

PHONES = [("Google", "Pixel 8a"), ("Apple", "iPhone 13 mini"), ("OnePlus", "OnePlus 12R"),
          ("Samsung", "Galaxy Z Fold3"), ("Sony", "Xperia 10 V")]

FLAGGED = {
    "over-budget": (
        "For a compact phone these stand out:\n\n**Apple iPhone 13 mini** – the smallest flagship-class phone.\n\n"
        "**Google Pixel 8a** – great camera in a small body.\n\n"
        "The Galaxy Z Fold3 is superb, but it costs several times your budget."
    ),
    "risky-choice": (
        "**Google Pixel 8a** – best camera for the money [1].\n\n**Apple iPhone 13 mini** – tiny and fast [2].\n\n"
        "The Sony Xperia 10 V is gorgeous but very tall, so it is a risky choice for small hands [3]."
    ),
    "other-language": (
        "Meine Empfehlungen:\n\n**Google Pixel 8a** – sehr gute Kamera.\n\n"
        "**Apple iPhone 13 mini** – klein und schnell.\n\n"
        "Das Sony Xperia 10 V ist hübsch, für kleine Hände aber riesig."
    ),
}

READ = {
    # the third product is marked by its own line
    "also-consider-line": (
        "1. **Apple iPhone 13 mini** – the smallest flagship.\n2. **Google Pixel 8a** – best camera for the money.\n\n"
        "Also consider: Sony Xperia 10 V for battery life.",
        [1, 0, 4],
    ),
    # the third product is in a sentence that picks it
    "picking-sentence": (
        "- **Apple iPhone 13 mini** – the smallest flagship.\n- **Google Pixel 8a** – best camera for the money.\n\n"
        "The Sony Xperia 10 V is also worth considering for its battery.",
        [1, 0, 4],
    ),
    # plain prose marks nothing: read by its own rules
    "prose-only": (
        "The Google Pixel 8a is my pick: it is small and has the best camera here. The Apple iPhone 13 mini "
        "comes second.",
        [0, 1],
    ),
}


@pytest.mark.parametrize("name", sorted(FLAGGED))
def test_a_product_named_only_in_passing_makes_a_marked_answer_ambiguous(name):
    ranking = parse_ranking(FLAGGED[name], PHONES)
    assert ranking.status == "ambiguous", ranking
    assert "only in passing prose" in (ranking.reason or "")


@pytest.mark.parametrize("name", sorted(READ))
def test_marked_picked_and_unstructured_answers_are_read(name):
    text, order = READ[name]
    ranking = parse_ranking(text, PHONES)
    assert ranking.status == "ranked", ranking
    assert list(ranking.order) == order


def test_the_reason_names_no_text_of_the_answer():
    reason = parse_ranking(FLAGGED["over-budget"], PHONES).reason or ""
    assert reason.startswith("it marks its picks")
    assert "Galaxy" not in reason and "budget" not in reason
