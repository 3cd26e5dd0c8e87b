"""Products called by their place among the pages ("source [3]", "the first result", "the machine
from [2]") are read as named when the reader knows the context order, and make the answer
ambiguous when it does not (``poise.ranking._places``)."""

from __future__ import annotations

import pytest

from poise.models import get_model
from poise.ranking import parse_ranking

from .wirefake import WireFake

PODS = [("Nespresso", "Vertuo Next White"), ("Nespresso", "Pixie Electric Titan"), ("Nespresso", "CitiZ Cherry Red"),
        ("Hamilton Beach", "The Scoop Single-Serve Coffee Maker"), ("Breville", "the Barista Express")]
# the pages as the engine showed them: [1] = CitiZ, [2] = Scoop, [3] = Vertuo, [4] = Barista, [5] = Pixie
SHOWN = [2, 3, 0, 4, 1]

BY_PLACE = ("**Top pick:** the machine from [5]: the narrowest here, and it heats in 25 seconds.\n\n"
            "**Runner-up:** the model in the first result, if you want a bigger water tank.\n\n"
            "**Also good:** source [3], for large mugs.")


def test_places_are_read_as_the_products_shown_there():
    ranking = parse_ranking(BY_PLACE, PODS, SHOWN)
    assert ranking.status == "ranked" and list(ranking.order) == [1, 2, 0]


def test_without_the_context_order_the_answer_is_ambiguous():
    ranking = parse_ranking(BY_PLACE, PODS)
    assert ranking.status == "ambiguous" and "place among the pages" in (ranking.reason or "")


def test_a_place_outside_the_pages_stays_ambiguous():
    ranking = parse_ranking("**Top pick:** source [7], the best of the lot.", PODS, SHOWN)
    assert ranking.status == "ambiguous"


def test_a_citation_is_no_place():
    answer = ("1. **Nespresso Pixie Electric Titan** – narrow and quick [2].\n2. **Nespresso CitiZ Cherry Red** – "
              "retro style [1].\n\nThe reviews in [3] agree that both are reliable.")
    assert list(parse_ranking(answer, PODS, SHOWN).order) == [1, 2]


@pytest.mark.parametrize("context", [[0, 1, 2], [0, 0, 1, 2, 3], [0, 1, 2, 3, 9]])
def test_a_context_that_is_not_an_order_of_the_products_is_refused(context):
    with pytest.raises(ValueError, match="not an order of the 5 products"):
        parse_ranking(BY_PLACE, PODS, context)


def test_the_engine_reads_places_in_the_order_it_showed_the_pages(tmp_path):
    """End to end: an engine answer that names no product, only page numbers, is read through the
    order the engine used (from its seed), not the catalog's."""
    from poise.catalog import sample_catalog
    from poise.engine import SearchEngine
    from poise.experiments import recommend
    from poise.store import Store

    category = sample_catalog().category("blender")
    answer = "My top pick is source [2]. The runner-up is source [1]."
    with WireFake([], responder=lambda request: answer) as fake, Store(tmp_path) as store:
        engine = SearchEngine(get_model("openai:engine", base_url=fake.url, api_key="k"))
        run_id = store.start_run("recommend", {})
        result = recommend(engine, category, store=store, run_id=run_id, seed=3)
    shown = list(result.result.context_order)
    assert shown != sorted(shown)  # the pages were not in catalog order
    assert result.ranking.status == "ranked"
    assert list(result.ranking.order) == [shown[1], shown[0]]


def test_the_model_reader_is_told_which_product_each_page_was():
    import json

    from poise.ranking import ModelReader

    from .wirefake import completion

    answer = 200, completion(json.dumps({"ranking": [2, 3, 1], "unclear": False})), 0
    with WireFake([answer, answer]) as fake:
        reader = ModelReader(get_model("openai:reader", base_url=fake.url, api_key="k"))
        assert reader.read(BY_PLACE, PODS, context=SHOWN).order == (1, 2, 0)
        reader.read(BY_PLACE, PODS)
        with_pages, without = (r["messages"][1]["content"] for r in fake.requests)
    assert "[1] = product 3, [2] = product 4, [3] = product 1, [4] = product 5, [5] = product 2" in with_pages
    assert "[1] = product" not in without


def test_two_places_in_one_reference_name_both_and_a_picks_label_names_its_page():
    answer = ("The machines in [1] and [2] are bulky, so they don't fit a small kitchen.\n\n"
              "**Overall pick:** [5]\n**Also good:** [3]")
    assert list(parse_ranking(answer, PODS, SHOWN).order) == [1, 0]
    # "Sources: [1]" is no pick's label
    sources = "1. **Nespresso Pixie Electric Titan** – the narrowest here.\n\nSources: [1] rtings.com [2] wirecutter"
    assert list(parse_ranking(sources, PODS, SHOWN).order) == [1]
