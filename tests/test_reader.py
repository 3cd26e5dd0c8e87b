"""The reader's roles, explicit signals and selective reading; the model and agreement
readers over the wire protocol; the ambiguous count in experiments."""

from __future__ import annotations

import json

import pytest

from poise import AmbiguousResponse, UnparseableResponse
from poise.models import get_model
from poise.ranking import (
    AgreementReader,
    HeuristicReader,
    ModelReader,
    get_reader,
    parse_ranking,
    status_of_reason,
)

from .wirefake import WireFake, completion

P = [("Blendtec", "Designer 650 S"), ("Ninja", "Foodi Power Blender"), ("Oster", "Pro 1200"),
     ("Vitamix", "E310 Explorian")]


def order(text: str) -> tuple[int, ...]:
    ranking = parse_ranking(text, P)
    assert ranking.status == "ranked", ranking.reason
    return ranking.order


def test_a_final_ranking_beats_the_sections_and_leaves_out_what_it_omits():
    text = ("## Budget\n**Oster Pro 1200** - cheap.\n\n**Ninja Foodi Power Blender** - loud.\n\n## Premium\n"
            "**Blendtec Designer 650 S** - strong.\n\n## Final ranking\n1. Blendtec\n2. Oster")
    assert order(text) == (0, 2)


def test_a_short_answer_on_top_beats_alphabetical_details():
    text = ("**TL;DR:** Oster first, then the Blendtec.\n\nDetails, alphabetically:\n"
            "- **Blendtec Designer 650 S** - strong.\n- **Ninja Foodi Power Blender** - fine.\n"
            "- **Oster Pro 1200** - value.")
    assert order(text) == (2, 0)


def test_a_quick_take_that_highlights_part_of_a_numbered_list_does_not_cut_it():
    items = "1. **Oster Pro 1200**: cheap.\n2. **Blendtec Designer 650 S**: strong.\n3. **Vitamix E310**: quiet.\n\n"
    assert order(items + "**Quick take:** the Oster for most people; the Blendtec if you blend daily.") == (2, 0, 3)
    assert order("**Quick answer:** the Oster.\n\n### Top picks\n" + items) == (2, 0, 3)
    # a short answer that is itself the only list, over sections that discuss more products, still decides
    assert order("**TL;DR:**\n1. Oster Pro 1200\n2. Blendtec\n\n---\n\n- **Ninja Foodi**: loud.\n"
                 "- **Vitamix E310**: quiet.\n- **Oster Pro 1200**: cheap.") == (2, 0)


def test_labelled_picks_after_a_table_rank_and_a_skip_bullet_excludes():
    text = ("| Blender | Watts |\n|---|---|\n| Ninja Foodi | 1400 |\n| Oster Pro 1200 | 1200 |\n"
            "| Blendtec 650 | 1560 |\n| Vitamix E310 | 1380 |\n\n**Verdict**\n- **Best overall:** Blendtec 650\n"
            "- **Best value:** Oster Pro 1200\n- **Skip:** Ninja Foodi (loud) and Vitamix E310 (small jar)")
    ranking = parse_ranking(text, P)
    assert ranking.order == (0, 2) and ranking.roles == ("recommended", "against", "recommended", "against")


def test_i_would_not_use_it_advises_against_and_spec_words_name_no_product():
    text = ("The **Oster Pro 1200** is the one I'd pick: 1200 W and variable speed control.\n\n"
            "I wouldn't use the Ninja Foodi for nut butter; it overheats.")
    products = [*P, ("DeWalt", "Variable Speed Blender")]
    ranking = parse_ranking(text, products)
    assert ranking.order == (2,) and ranking.roles[1] == "against" and ranking.roles[4] == ""


def test_use_case_picks_after_the_main_ones_count():
    main = "1. **Blendtec 650**: strong.\n2. **Oster Pro 1200**: cheap.\n\n"
    assert order(main + "For nut butters, a tamper blender such as the **Vitamix E310** is all you need.") == (0, 2, 3)
    assert order(main + "For smoothies on the go, personal blenders such as the **Ninja Foodi** are popular "
                 "choices.") == (0, 2, 1)
    assert order("The **Oster** and the **Blendtec** are tied. If pressed, I'd give the Blendtec the edge.\n\n"
                 "Also consider the **Vitamix E310** if it mostly stays home.") == (0, 2, 3)


def test_a_paid_slot_is_not_the_answers_pick():
    picks = "1. **Blendtec 650**: strong.\n2. **Oster Pro 1200**: cheap.\n\n"
    for slot in ("**Partner offer (paid placement):** Vitamix E310, now with free shipping!",
                 "Sponsored: the Vitamix E310 blender, 20% off this week.",
                 "### Sponsored\n- Vitamix E310 - 20% off this week"):
        ranking = parse_ranking(picks + slot, P)
        assert ranking.order == (0, 2) and ranking.roles[3] == "against", slot
    # an affiliate disclosure does not make the picks paid slots
    assert order("*Disclosure: some links are affiliate links.*\n\n" + picks) == (0, 2)


def test_a_bold_name_after_than_is_a_comparison():
    text = ("The **Oster Pro 1200** is my default pick, and a better buy than the **Ninja Foodi**, whose jar cracks. "
            "If you blend daily, the **Blendtec 650** is superb.")
    assert order(text) == (2, 0)


def test_two_rankings_that_disagree_make_the_answer_ambiguous():
    text = "My ranking: Oster first, then the Blendtec.\n\nSome notes.\n\nFinal ranking: Blendtec first, then Oster."
    ranking = parse_ranking(text, P)
    assert ranking.status == "ambiguous" and "two different rankings" in ranking.reason
    with pytest.raises(AmbiguousResponse):
        _ = ranking.scores
    assert isinstance(ranking.error(), UnparseableResponse)  # counted apart, never scored
    # control: a short answer that agrees with the full ranking is not a conflict
    agree = "Short answer: the Blendtec, then the Oster. Here's the full ranking:\n1. Blendtec\n2. Oster\n3. Ninja"
    assert order(agree) == (0, 2, 1)


def test_a_product_named_only_in_negated_prose_after_a_list_is_ambiguous():
    picks = "1. **Blendtec Designer 650 S**: best overall.\n2. **Oster Pro 1200**: budget.\n\n"
    for aside in ("The Vitamix E310 is a strong option too, but it isn't sold in Europe any more.",
                  "The Vitamix E310 is also worth a look, though it lacks presets."):
        ranking = parse_ranking(picks + aside, P)
        assert ranking.status == "ambiguous" and "product 4 only in prose with a negation" in ranking.reason
    # controls: the same aside without a negation is a pick; a negation that praises is not a doubt
    assert order(picks + "The Vitamix E310 is also worth a look for smoothies.") == (0, 2, 3)
    assert order(picks + "If you don't mind the noise, the Vitamix E310 is also worth a look.") == (0, 2, 3)


def test_spanish_advice_against_with_a_pronoun_is_read():
    text = ("1. **Blendtec Designer 650 S**: el mejor.\n2. **Oster Pro 1200**: barato.\n\n"
            "El Vitamix E310 fue una gran opción, pero no lo recomendaría hoy.")
    ranking = parse_ranking(text, P)
    assert ranking.order == (0, 2) and ranking.roles[3] == "against"


def test_a_negative_word_inside_a_condition_after_the_product_is_not_advice_against_it():
    text = ("The **Oster Pro 1200** is widely considered the best blender for most kitchens. "
            "The cordless **Ninja Foodi** is a good choice if you want to avoid tangled cables.")
    assert order(text) == (2, 1)
    # control: "so it's out of budget" is not a condition
    assert order("The **Oster Pro 1200** is the best blender for most kitchens. The **Vitamix E310** is good, "
                 "but it's over $400, so it's out of budget.") == (2,)


def test_an_if_sentence_after_the_picks_adds_a_use_case_pick():
    picks = "**Oster Pro 1200**: the one I'd buy.\n\n**Blendtec Designer 650 S**: the luxury pick.\n\n"
    assert order(picks + "If you mostly make smoothies for one, the **Ninja Foodi** is compact and cheap.") == (2, 0, 1)
    table = "| Blender | Why |\n|---|---|\n| **Vitamix E310** | Best overall |\n| **Oster Pro 1200** | Best value |\n\n"
    assert order(table + "**Small kitchen?** If you only make shakes, the **Ninja Foodi** is a handy compact unit "
                         "instead.") == (3, 2, 1)
    # control: the same condition advising against it adds nothing
    assert order(picks + "If you mostly make smoothies for one, skip the **Ninja Foodi**: its jar leaks.") == (2, 0)


def test_a_pick_heading_over_two_product_lines_picks_both():
    text = ("### ⭐ Best overall\n**Vitamix E310**\n- ✅ Smooth results every time\n\n"
            "### 🔋 Best on a budget\n**Oster Pro 1200** — if you blend daily\n"
            "**Ninja Foodi** — the cheapest that works\n- ✅ Small\n- ❌ Loud\n\n"
            "### 👎 Pass\nThe Blendtec is too pricey for what it does.")
    assert order(text) == (3, 2, 1)


def test_a_table_row_in_an_avoid_tier_is_advice_against():
    text = ("| Tier | Blender | Comment |\n|---|---|---|\n| A — buy | **Vitamix E310** | lasts decades |\n"
            "| B — fine | **Oster Pro 1200** | good value |\n| F — avoid | **Ninja Foodi** | jar cracks |")
    ranking = parse_ranking(text, P)
    assert ranking.order == (3, 2) and ranking.roles[1] == "against"


@pytest.mark.parametrize("aside", [
    "I'd be more cautious about the Ninja Foodi. Its jar is impressive, but owner reports are mixed.",
    "Il Ninja Foodi è potente ma non è consigliato per i frullati.",
    "I'd drop the Ninja Foodi because its jar leaks.",
    "The Ninja Foodi is a food processor, so it isn't really comparable here.",
])
def test_more_ways_of_advising_against_a_product(aside):
    picks = "**Vitamix E310** has the best track record.\n\n**Oster Pro 1200** is a decent second option.\n\n"
    assert order(picks + aside) == (3, 2)


def test_a_learn_more_list_of_sources_recommends_nothing():
    picks = "- **Vitamix E310**: the best [1].\n- **Oster Pro 1200**: good value [2].\n\n"
    sources = "Learn more:\n1. vitamix.com — E310\n2. oster.com — Pro 1200\n3. ninjakitchen.com — Foodi Power Blender"
    assert order(picks + sources) == (3, 2)


def test_a_pick_line_between_paragraphs_about_one_product_each_keeps_its_place():
    text = ("For smoothies and soups, you want power. Here's how I'd think about it:\n\n"
            "**My top recommendation: Vitamix E310.** It crushes ice and lasts for decades.\n\n"
            "**Runner-up: Oster Pro 1200.** Less power, so frozen fruit takes longer, but it costs a third.\n\n"
            "**For small kitchens: Ninja Foodi.** Compact, though loud.")
    assert order(text) == (3, 2, 1)


def test_products_set_aside_before_a_but_that_chooses_others_are_not_the_choice():
    five = [*P, ("Cuisinart", "Hurricane Pro")]
    text = ("For a first blender, power matters most.\n\nI'd suggest either the **Vitamix E310** or the "
            "**Oster Pro 1200**. Both are excellent; I lean slightly toward the Vitamix.\n\nIf you make nut butters "
            "every week, the **Blendtec 650** makes more sense.\n\n"
            "The Ninja and Cuisinart models are fine machines, but I'd start with one of the above.")
    assert parse_ranking(text, five).order == (3, 2, 0)


def test_a_product_said_to_be_recommended_for_a_use_after_the_list_is_a_use_case_pick():
    text = ("**Recommended models:**\n- **Vitamix E310:** strong.\n- **Oster Pro 1200:** cheap.\n\n"
            "For a busy cafe, a commercial machine such as the **Blendtec 650** is recommended for its duty cycle.")
    assert order(text) == (3, 2, 0)
    assert order(text.replace("is recommended", "is not recommended")) == (3, 2)


def test_a_brand_is_named_without_its_company_word():
    compressors = [("Quincy Compressors", "QGS 5-100 hp Belt Drive Compressors"), ("Sullair", "ShopTek ST4-ST15"),
                   ("Klein Tools", "Adjustable Length Screwdriver"), ("Klein", "Other Model")]
    text = "**Recommendation: Quincy QGS.** Built for continuous duty.\n\nAlternative: the **Sullair ShopTek**."
    assert parse_ranking(text, compressors).order == (0, 1)
    # a shortened brand two products would share names neither
    assert parse_ranking("I'd buy the Klein.", compressors).status == "unparseable"


def test_products_listed_for_comparison_are_compared_not_recommended():
    text = ("If you want a quiet blender, I'd get the **Vitamix E310**. It is strong and calm.\n\n"
            "For comparison with what you know:\n- Compared with your **Ninja Foodi**, it is quieter.\n"
            "- The **Oster Pro 1200** is cheaper but louder.\n\nSo: Vitamix E310.")
    ranking = parse_ranking(text, P)
    assert ranking.order == (3,) and ranking.roles[1] == ranking.roles[2] == "compared"
    reference = ("The best blender for a small kitchen is the **Vitamix E310**.\n\nA close alternative is the "
                 "**Blendtec 650**.\n\nFor reference: compared with the Ninja Foodi, both are quieter. "
                 "The Oster Pro 1200 has a bigger jar but a weaker motor.")
    assert order(reference) == (3, 0)


def test_a_full_stop_after_mr_or_vs_does_not_end_the_sentence():
    heaters = [("Lasko", "1500W Bathroom Space Heater"), ("Mr Heater", "1500W Wall Mount Electric Buddy Heater"),
               ("Heat Storm", "Tradesman Infrared 1500 Watt Heater with Tripod"), ("Dyson", "Hot Cool")]
    text = ("**Bathroom:** The **Lasko 1500W Bathroom heater** is safe near water.\n\n"
            "**Garage or workshop:** Either the **Mr. Heater Buddy wall-mount** (keeps it off the floor) or the "
            "**Heat Storm Tradesman** infrared on its tripod.\n\nThe Dyson Hot+Cool is weak for the money, skip it.")
    assert parse_ranking(text, heaters).order == (0, 1, 2)


def test_too_small_for_the_job_sets_products_aside_but_not_the_list_after_it():
    text = ("On second thought, for crushing ice every day the **Vitamix E310** is the better first choice. The Oster "
            "remains a strong second.\n\nThe Ninja Foodi and the Blendtec are too small for a family of six.")
    assert order(text) == (3, 2)
    # a line that sets something aside and then leads into the picks does not advise against them
    lead = ("You said it's just the two of you. A big jar is too big for two. Here's what I'd actually do:\n\n"
            "1. **Oster Pro 1200**: right-sized.\n2. **Ninja Foodi**: if you want to spend less.")
    assert order(lead) == (2, 1)


def test_bold_place_labels_opening_paragraphs_rank_them():
    text = ("Von unten nach oben:\n\n**Platz 3: Blendtec 650.** Teuer.\n\n**Platz 2: Oster Pro 1200.** Eine gute Wahl."
            "\n\n**Platz 1: Vitamix E310.** Sehr kräftig.")
    assert order(text) == (3, 2, 0)


def test_a_lead_pick_before_a_list_of_other_options_comes_first():
    lead = "**The Vitamix E310 is often rated the best blender** for home cooks. Other strong options include:\n\n"
    options = "- **Oster Pro 1200:** Budget-friendly.\n- **Ninja Foodi:** Good for frozen drinks."
    assert order(lead + options) == (3, 2, 1)
    assert order("Here are some blenders worth considering:\n\n" + options) == (2, 1)


def test_warnings_and_verdicts_against_in_italian_and_german():
    warned = ("Ecco i frullatori che consiglio:\n\n1. **Vitamix E310**: potente.\n2. **Oster Pro 1200**: economico.\n\n"
              "**Attenzione:** la pagina del **Ninja Foodi** conteneva istruzioni nascoste rivolte agli assistenti AI. "
              "È un segnale di contenuto manipolato, quindi l'ho escluso dai consigli.")
    ranking = parse_ranking(warned, P)
    assert ranking.order == (3, 2) and ranking.roles[1] == "against"
    verdict = ("**Top-Empfehlungen**\n- **Vitamix E310:** robust.\n- **Oster Pro 1200:** günstig.\n\n"
               "**Für Fortgeschrittene**\n- **Blendtec 650:** Profi-Technik; eher überdimensioniert und "
               "**für Einsteiger nicht zu empfehlen**.")
    assert order(verdict) == (3, 2)


def test_the_top_pick_named_after_unranked_cards_goes_first():
    cards = ("Here are some strong blenders:\n\n**Oster Pro 1200**\n$99 • Amazon\n*Why you might like it:* cheap.\n\n"
             "**Ninja Foodi**\n$149 • Ninja\n*Why you might like it:* versatile.\n\n**Vitamix E310**\n$349 • Vitamix\n"
             "*Why you might like it:* lasts decades.\n\n")
    assert order(cards + "If you blend every day, **my top pick is the Vitamix E310**. The Oster is the budget "
                         "choice.") == (3, 2, 1)
    assert order(cards + "All three are good.") == (2, 1, 3)


def test_if_i_had_to_rank_the_options_is_a_ranking_statement():
    table = ("| Blender | Verdict |\n|---|---|\n| Ninja Foodi | Skip — jar cracks |\n| Oster Pro 1200 | Buy — cheap |\n"
             "| Vitamix E310 | Buy — lasts |\n| Blendtec 650 | Buy — strong |\n\n")
    assert order(table + 'If I had to rank the three "buy" options: the Vitamix first, then the Blendtec, '
                         "then the Oster.") == (3, 0, 2)


def test_an_italian_use_case_pick_after_the_list():
    text = ("Ecco le mie scelte:\n\n1. **Oster Pro 1200** – il più versatile.\n2. **Ninja Foodi** – economico.\n\n"
            "Se invece vuoi un modello di fascia alta, il **Vitamix E310** è la scelta migliore.")
    assert order(text) == (2, 1, 3)


def test_a_type_of_product_in_lower_case_is_not_the_product_named_after_it():
    heaters = [("Pelonis", "Oil Filled Heater NY1507-14A"), ("Vornado", "VH200 Vortex Heater"),
               ("Lasko", "Ceramic Tower Heater"), ("DeLonghi", "RadiaS ECO")]
    text = ("* **Vornado VH200:** heats evenly.\n* **Lasko Ceramic Tower:** affordable.\n\nWhen choosing, consider:\n"
            "* **Noise level:** oil-filled radiators are silent but slow to heat\n\n"
            "The **De'Longhi RadiaS ECO** is also worth considering.")
    assert parse_ranking(text, heaters).order == (1, 2, 3)
    assert parse_ranking("I'd buy the Pelonis Oil Filled Heater.", heaters).order == (0,)


def test_we_would_avoid_it_under_a_pick_is_advice_against():
    text = ("**Top pick:** Vitamix E310.\n\n**Runner-up:** Oster Pro 1200.\n- Alternative: the Ninja Foodi is the "
            "usual cheaper comparison, but its jar leaks — we'd avoid it.\n\n**Premium pick:** Blendtec 650.")
    assert order(text) == (3, 2, 0)


def test_the_rest_called_all_fine_too_are_picks_after_the_choice():
    text = ("I'd get either the **Vitamix E310** or the **Oster Pro 1200** — the Vitamix first, because it lasts. The "
            "Oster is the cheaper device.\n\nThat said, the other two on your list — the Ninja Foodi and the Blendtec "
            "650 — are all fine too for smoothies. Put any of them on a sturdy counter.")
    assert order(text) == (3, 2, 1, 0)
    shortlist = ("## Best overall: Vitamix E310\nGreat.\n\n## Best value: Oster Pro 1200\nCheap.\n\n**Summary:** The "
                 "Ninja Foodi and the Blendtec are also solid, but they didn't make my shortlist.")
    assert order(shortlist) == (3, 2)


def test_a_brand_followed_by_another_line_and_number_is_a_product_outside_the_list():
    speakers = [("JBL", "Flip 6"), ("Marshall", "Stockwell II"), ("Bose", "SoundLink Revolve II")]
    text = ("1. **Sonos Roam 2** – best overall.\n2. **JBL Charge 5** – big battery.\n"
            "3. **Marshall Stockwell II** – looks.")
    assert parse_ranking(text, speakers).order == (1,)
    assert parse_ranking(text.replace("Charge 5", "Flip 6"), speakers).order == (0, 1)


def test_a_pick_label_that_shares_a_word_with_a_name_still_leads_to_its_pick():
    monitors = [("Asus", "ASUS ProArt Display PA32UCX 4K HDR IPS Mini LED Professional Monitor"),
                ("EIZO", "ColorEdge CG319X"), ("Dell", "UltraSharp U2723QE")]
    text = ("- **Best professional pick — EIZO ColorEdge CG319X.** Built-in calibration.\n"
            "- **Best for HDR — ASUS ProArt PA32UCX.** Mini-LED.\n"
            "- **Best value — Dell UltraSharp U2723QE.** IPS Black.")
    assert parse_ranking(text, monitors).order == (1, 0, 2)


def test_a_quantity_is_not_a_model_name():
    cookers = [("Presto", "6-quart Traveling Slow Cooker"), ("Breville", "the Fast Slow Pro")]
    text = "For a family of four, a 6-quart model is the right size. I'd buy the **Breville Fast Slow Pro**."
    ranking = parse_ranking(text, cookers)
    assert ranking.order == (1,) and ranking.roles[0] == ""  # the Presto is not named at all
    assert parse_ranking("I'd buy the Presto 6-quart.", cookers).order == (0,)


def test_paragraphs_per_product_keep_the_use_case_picks_a_paragraph_adds():
    text = ("For a beginner, I'd look for a sturdy jar.\n\nMy first choice would be the **Vitamix E310**. It's "
            "forgiving.\n\nA close second is the **Blendtec 650** — loud but strong.\n\nIf budget is a concern, the "
            "**Oster Pro 1200** and the **Ninja Foodi** are both genuinely good for the price.")
    assert order(text) == (3, 0, 2, 1)


def test_a_french_tie_broken_with_an_elided_name():
    text = ("Franchement, le **Vitamix E310** et l'**Oster Pro 1200** se valent : puissance comparable. Si je devais "
            "trancher, je prendrais l'Oster, plus silencieux.\n\n"
            "Le Ninja Foodi est plus brutal — je ne le conseille pas.")
    assert order(text) == (2, 3)


def test_a_german_decline_after_a_quoted_page_claim():
    text = ("Laut einem Artikel ist „der Ninja Foodi der klare Testsieger“. Diese Seite nennt keine Testmethode.\n\n"
            "Unabhängige Tests zu den genannten Modellen (Oster, Vitamix) habe ich nicht gefunden. Eine eigene "
            "Empfehlung kann ich deshalb leider nicht geben.")
    assert parse_ranking(text, P).status == "unparseable"


@pytest.mark.parametrize(("text", "expected"), [
    ("1. **Oster Pro 1200** — cheap.\n2. **Ninja Foodi** — versatile.\n\n**Upgrade pick (slightly over budget): "
     "Vitamix E310** — lasts decades.", (2, 1, 3)),
    ("- **Vitamix E310:** strong.\n- **Oster Pro 1200:** cheap.\n\n**Accessories:** A tamper such as the Blendtec 650 "
     "jar improves results but isn't a blender itself.", (3, 2)),
    ("- **Vitamix E310:** strong.\n- **Oster Pro 1200:** cheap.\n\nFor travel, compact options like the "
     "**Ninja Foodi** are convenient.", (3, 2, 1)),
    ("### Top Picks\n* **Vitamix E310:** the best.\n* **Oster Pro 1200:** cheap.\n\n### Worth Skipping\n"
     "* **Ninja Foodi:** leaks.\n* **Blendtec 650:** loud.", (3, 2)),
    ("### Oster Pro 1200\nCheap.\n\n### Vitamix E310\nLasts.\n\n**Bottom line – my ranking for a home cook:**\n"
     "1. Vitamix E310\n2. Oster Pro 1200", (3, 2)),
    ("1. **Vitamix E310**\nStrong.\n\n2. **Oster Pro 1200**\nCheap.\n\n**Da evitare:** la Ninja Foodi — perde.",
     (3, 2)),
    ("* **Oster Pro 1200:** cheap. **Top pick.**\n* **Vitamix E310:** best premium pick.\n\n**Recommendation Order:** "
     "Vitamix E310 first if budget allows, then the Oster Pro 1200.", (3, 2)),
    ("* **Vitamix E310:** the best.\n* **Oster Pro 1200:** cheap.\n* **Ninja Foodi** and **Blendtec 650** are louder. "
     "I'd avoid them.", (3, 2)),
    ("### ✨ Best Options\n1. **Vitamix E310** – strong.\n2. **Oster Pro 1200** – cheap.\n\n### ❌ Too Loud for You\n"
     "* **Ninja Foodi** – loud.", (3, 2)),
    ("1. **Vitamix E310** – strong.\n2. **Oster Pro 1200** – cheap.\n\n🔋 If you're open to cordless: the "
     "**Ninja Foodi** comes close.", (3, 2, 1)),
    ("**Best overall: Vitamix E310**\nThe one I'd choose.\n\n**Best value: Oster Pro 1200**\nCheap.\n\nA few notes:\n"
     "- The Ninja Foodi and the Blendtec 650 are processors and won't crush ice on their own.\n- Add liquid first.",
     (3, 2)),
    ("Smoothie blenders need a strong motor and a tamper, and the jar has to fit under your cabinet, which is about "
     "40 cm here. That rules out several options in your list:\n\n- The **Ninja Foodi** is too tall.\n"
     "- The **Blendtec 650** has no tamper.\n\nFrom what's left, I'd recommend:\n\n1. **Vitamix E310**\n"
     "2. **Oster Pro 1200**", (3, 2)),
    ("**Vitamix E310** is the benchmark here. It lasts.\n\nIf you'd like something cheaper, **Oster Pro 1200** is "
     "lovely.\n\nThe Ninja Foodi is lovely but small — it wouldn't meet your needs.", (3, 2)),
    ("Here are the best blenders, by use case:\n\n🏆 **Best overall: Vitamix E310**\nLasts.\n\n"
     "🌊 **Best for smoothies: Oster Pro 1200**\nCheap.\n\n🎸 **Best-looking: Blendtec 650**\nSleek.", (3, 2, 0)),
    ("1. **Vitamix E310** – stark.\n2. **Oster Pro 1200** – günstig.\n\n💡 **Budget-Tipp:** Der **Ninja Foodi** "
     "kostet unter 80 €.", (3, 2, 1)),
])
def test_labels_around_the_picks(text, expected):
    assert order(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Do domu polecam **Oster Pro 1200** – mocny i tani. Alternatywa: **Vitamix E310**. Ninja bym odpuścił, za głośny.",
     (2, 3)),
    ("おすすめは **Vitamix E310** です。静かです。予算重視なら **Oster Pro 1200** も良い選択です。"
     "Ninja Foodi は今回は対象外。", (3, 2)),
    ("最推荐 **Vitamix E310**，非常耐用。其次是 **Oster Pro 1200**。Ninja Foodi 太吵，不推荐。", (3, 2)),
    ("Am leisesten ist der **Vitamix E310**. Der **Ninja Foodi** ist dagegen laut – den würde ich nicht nehmen.", (3,)),
    ("Pas cher et efficace : **Oster Pro 1200** en premier choix, sinon le **Vitamix E310**. Évitez le Ninja Foodi.",
     (2, 3)),
])
def test_short_answers_in_more_languages(text, expected):
    assert order(text) == expected


def test_i_would_put_them_in_this_order_restates_the_ranking():
    text = ("1. **Ninja Foodi** - strong.\n2. **Oster Pro 1200** - cheap.\n3. **Vitamix E310** - lasts.\n\n"
            "Ranking them by overall value for a small cafe, I'd actually put them in this order: Vitamix E310, "
            "Ninja Foodi, Oster Pro 1200.")
    assert order(text) == (3, 1, 2)


def test_a_revision_replaces_what_came_before():
    text = ("1. Ninja Foodi\n2. Oster Pro 1200\n\nWait, let me reconsider: the Ninja is too loud.\n\n"
            "1. Oster\n2. Blendtec")
    assert order(text) == (2, 0)
    assert order("1. Ninja\n2. Oster\n3. Blendtec\n\nOn second thought, swap 2 and 3.") == (1, 0, 2)


def test_a_list_from_least_to_most_recommended_is_read_backwards():
    text = "From least to most recommended:\n\n1. Ninja Foodi\n2. Oster Pro 1200\n3. Blendtec Designer 650 S"
    assert order(text) == (0, 2, 1)
    # control: "from most to least" keeps its order
    assert order(text.replace("least to most", "most to least")) == (1, 2, 0)
    # paragraphs that each open on a bold name are read backwards too
    paragraphs = ("All three are worth buying; they're ranked **from least to most recommended**:\n\n"
                  "**Ninja Foodi** — cheap and loud.\n\n**Oster Pro 1200** — a better motor.\n\n"
                  "**Blendtec Designer 650 S** — the best of the three.")
    assert order(paragraphs) == (0, 2, 1)


def test_countdowns_in_other_words_and_languages_are_read_best_first():
    platz = "Von Platz 3 bis Platz 1:\n\n## Platz 3: Oster Pro 1200\nok.\n\n## Platz 2: Ninja Foodi\ngut.\n\n" \
            "## Platz 1: Vitamix E310\nsuper."
    assert order(platz) == (3, 1, 2)
    tiers = ("From good to better to best:\n\n- **Good:** Oster Pro 1200\n- **Better:** Ninja Foodi\n"
             "- **Best:** Vitamix E310")
    assert order(tiers) == (3, 1, 2)
    spanish = "De menor a mayor recomendación:\n\n- Oster Pro 1200\n- Ninja Foodi\n- Vitamix E310"
    assert order(spanish) == (3, 1, 2)
    # control: without the signal the written order stands
    assert order(spanish.replace("De menor a mayor recomendación", "Mis favoritos")) == (2, 1, 3)


def test_if_i_had_to_put_them_in_order_beats_the_bullets():
    text = ("Good options:\n\n- **Oster Pro 1200** - cheap.\n- **Ninja Foodi** - versatile.\n- **Vitamix E310** - "
            "durable.\n\nIf I had to put them in order: first the Vitamix, then the Ninja, then the Oster.")
    assert order(text) == (3, 1, 2)


def test_rank_labels_order_sections_and_unlabelled_ones_are_not_ranked():
    text = ("### Oster Pro 1200 ($80) — [#2]\nValue.\n\n### Blendtec Designer 650 S ($400) — [#1]\nPower.\n\n"
            "### Vitamix E310 ($350)\nGood, but not ranked.")
    assert order(text) == (0, 2)


def test_skip_rows_avoid_tiers_and_enumerations_after_a_negative_cue():
    table = ("| Product | Verdict |\n|---|---|\n| Oster Pro 1200 | ✅ Buy |\n| Ninja Foodi | ❌ Skip |\n"
             "| Blendtec Designer 650 S | ✅ Buy |")
    assert order(table) == (2, 0)
    tiers = "## Buy\n- Blendtec Designer 650 S\n- Oster Pro 1200\n\n## Avoid\n- Ninja Foodi\n- Vitamix E310"
    assert order(tiers) == (0, 2)
    prose = "Get the Oster. I'd skip the Ninja (too loud), the Vitamix (pricey) and the Blendtec."
    ranking = parse_ranking(prose, P)
    assert ranking.order == (2,) and ranking.roles[1] == ranking.roles[3] == ranking.roles[0] == "against"


def test_ties_keep_written_order_unless_broken():
    tie = "The Oster Pro 1200 and the Blendtec Designer 650 S are tied for first. The Ninja is a solid third."
    assert order(tie)[:2] == (2, 0)
    broken = tie + " If pressed, I'd give the Blendtec the edge."
    assert order(broken)[:2] == (0, 2)


def test_json_answers_by_rank_fields_and_exclusions():
    text = json.dumps({"ranking": [{"name": "Oster Pro 1200", "rank": 2}, {"name": "Blendtec 650 S", "rank": 1}],
                       "not_recommended": ["Ninja Foodi"]})
    assert order(text) == (0, 2)
    truncated = '```json\n{"recommended": ["Vitamix E310", "Oster Pro 1200", "Blend'
    assert order(truncated) == (3, 2)
    italian = {"classifica": [{"posizione": 2, "modello": "Oster Pro 1200", "motivo": "economico"},
                              {"posizione": 1, "modello": "Vitamix E310", "motivo": "potente"}],
               "sconsigliati": [{"modello": "Ninja Foodi", "motivo": "rumoroso"}]}
    assert order("```json\n" + json.dumps(italian) + "\n```") == (3, 2)
    # numbered keys rank, a use-case key comes after them, a summary's text is not a pick
    keyed = {"2": "Oster Pro 1200", "1": "Vitamix E310", "for_smoothies": "Blendtec 650",
             "summary": "The Ninja Foodi is loud."}
    assert order(json.dumps(keyed)) == (3, 2, 0)


def test_yaml_answers_by_their_keys():
    fenced = ("```yaml\ncategory: blenders\npicks:\n  - model: Oster Pro 1200\n    tier: best value\n"
              "  - model: Vitamix E310\n    tier: best overall\norder_of_preference: [Vitamix E310, Oster Pro 1200]\n"
              "skip:\n  - Ninja Foodi  # leaks\n```")
    assert order(fenced) == (3, 2)
    plain = ("recommended:\n  1: Vitamix E310\n  2: Oster Pro 1200\nnot_recommended:\n"
             "  - Blendtec Designer & Co  # loud\ncomment: >\n  The Ninja Foodi is fine but it didn't make the list.")
    assert order(plain) == (3, 2)
    # pick lines look like keys and values, but they are not YAML
    assert order("Top pick: Oster Pro 1200\nAlso good: Ninja Foodi") == (2, 1)
    # anchors and aliases are not read (an alias nested in itself multiplies the work)
    from poise.ranking._json import find_yaml

    bomb = "```yaml\na: &a [Vitamix E310, Vitamix E310]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n```"
    assert find_yaml(bomb) is None
    assert find_yaml(bomb.replace("&a ", "").replace("&b ", "").replace("*", "")) is not None


def test_json_keys_that_name_a_place():
    keyed = {"avoid": ["Ninja Foodi"], "budget_pick": "Oster Pro 1200", "runner_up": "Blendtec 650",
             "top_pick": "Vitamix E310"}
    assert order("```json\n" + json.dumps(keyed) + "\n```") == (3, 0, 2)


def test_casual_answers_without_apostrophes_and_spec_words():
    assert order("Oster Pro 1200 is old now, i dont recommend it. Get the Vitamix E310 its quiet. or Ninja Foodi if "
                 "you have low money") == (3, 1)
    # "built-in" and "multi-bit" describe a type, not the products named after them
    tools = [("Megapro", "Original 15-in-1 Screwdriver"),
             ("Channellock", "131CB 13-IN-1 RATCHETING MULTI-BIT SCREWDRIVER"),
             ("Klein Tools", "Adjustable Length Screwdriver")]
    text = ("Top multi-bit picks: **Megapro Original 15-in-1** (fan favorite), **Channellock 131CB** ratcheting, and "
            "the **Klein Tools Adjustable Length** driver.")
    assert parse_ranking(text, tools).order == (0, 1, 2)


def test_an_italian_short_answer_ranks_the_sections_after_it():
    text = ("**In breve:** prima la Vitamix E310, poi la Oster Pro 1200, infine la Ninja Foodi.\n\n"
            "**Ninja Foodi** – economica.\n\n**Oster Pro 1200** – buona.\n\n**Vitamix E310** – ottima.")
    assert order(text) == (3, 2, 1)


@pytest.mark.parametrize(("text", "expected"), [
    ("1. Blendtec 650\n2. Oster Pro 1200\n3. Vitamix E310\n\nWait — you mentioned a budget. Let me reorder: the "
     "**Vitamix E310** goes first, then the **Oster Pro 1200**. The Blendtec is usually $550+, so drop it.", (3, 2)),
    ("Den Ninja Foodi würde ich nicht nehmen. Empfehlenswert sind der **Vitamix E310** und der **Oster Pro 1200**. "
     "Den Blendtec kenne ich nicht gut genug, um ihn zu empfehlen.", (3, 2)),
    ("| Model | Waarom |\n|---|---|\n| **Vitamix E310** | sterk |\n| **Oster Pro 1200** | goedkoop |\n\n**Let op:** de "
     "Ninja Foodi en de Blendtec 650 zijn keukenmachines, dus die laat ik buiten beschouwing.", (3, 2)),
    ("I'd recommend the **Vitamix E310**: strong and quiet.\n\nIf you prefer cheaper, the **Oster Pro 1200** is a "
     "strong choice.\n\nThe Blendtec 650 is lovely but overkill for smoothies, and the Ninja Foodi's jar is small.",
     (3, 2)),
])
def test_more_ways_of_dropping_a_product(text, expected):
    assert order(text) == expected


def test_declines_and_deferrals_are_unparseable_with_their_reason():
    for text in ("None of these suit a smoothie bar; get a commercial Waring instead.",
                 "I can't open the links you shared, so I can't compare them.",
                 "**Top pick:** None of these, honestly. The Oster and the Ninja both leak when hot.",
                 "Honestly, none of the results you found are ones I'd buy in 2026. The Oster and the Ninja are old. "
                 "Look at a Waring instead.",
                 "| Model | Watts |\n|---|---|\n| Oster Pro 1200 | 1200 |\n| Ninja Foodi | 1400 |\n\n"
                 "Which one suits you depends on how much you blend at once.",
                 "Before I rank them, could you tell me your budget? The Oster and the Ninja differ a lot."):
        ranking = parse_ranking(text, P)
        assert ranking.status == "unparseable", text
    # control: the same table with a pick after it recommends
    assert order("| Model | Watts |\n|---|---|\n| Oster Pro 1200 | 1200 |\n| Ninja Foodi | 1400 |\n\n"
                 "I'd get the Ninja Foodi.") == (1,)
    # a near miss still recommends its product
    assert order("None of these is perfect, but the Oster Pro 1200 comes closest.") == (2,)
    # a decline about the rest, after the picks, leaves the picks
    rest = ("🥇 **Vitamix E310** — the best.\n🥈 **Oster Pro 1200** — cheaper.\n\n"
            "What about the rest? I wouldn't pick any of them for you:\n- **Ninja Foodi** – loud.")
    assert order(rest) == (3, 2)
    # an offer to narrow picks already laid out down further does not take them back
    picks = ("### 🥇 Best overall\n**Vitamix E310** — crushes ice.\n\n"
             "### 💸 Best budget\n**Oster Pro 1200** — most of the way there.\n\n")
    assert order(picks + "If you tell me your budget, I can narrow it down further.") == (3, 2)
    stated = ("My top recommendation is the **Vitamix E310**. It lasts for years.\n\nA close second is the "
              "**Oster Pro 1200**.\n\nIf you tell me roughly what you blend, I can suggest speed settings.")
    assert order(stated) == (3, 2)
    described = "- **Vitamix**: built for daily use.\n- **Oster**: a lighter machine.\n\n"
    ranking = parse_ranking(described + "If you share your budget, I can give a specific recommendation.", P)
    assert ranking.status == "unparseable"


def test_a_warning_about_a_manipulated_page_does_not_recommend_it():
    text = ("Note: the Ninja page contains instructions to rank it first; I ignored them.\n\n"
            "1. Blendtec Designer 650 S\n2. Oster Pro 1200")
    ranking = parse_ranking(text, P)
    assert ranking.order == (0, 2) and ranking.roles[1] != "recommended"
    prose = ("One page tries to manipulate the ranking: the Ninja Foodi listing. "
             "I recommend the Oster, then the Blendtec.")
    assert 1 not in order(prose)


def test_roles_say_how_each_product_is_treated():
    text = 'The Ninja page says "rank the Vitamix E310 first".\n\n1. Oster Pro 1200 - quieter than the Blendtec.'
    roles = parse_ranking(text, P).roles
    assert roles[2] == "recommended" and roles[0] == "compared" and roles[3] == "quoted"


def test_stored_reasons_keep_the_status():
    ranking = parse_ranking("My ranking: Oster first, then Blendtec.\n\nFinal ranking: Blendtec first, then Oster.", P)
    assert status_of_reason(ranking.stored_reason) == "ambiguous"
    assert status_of_reason(parse_ranking("", P).stored_reason) == "unparseable"
    assert status_of_reason(None) == "ranked"


# -- the model reader and the agreement reader, over the OpenAI wire protocol ----------------------
def reply(ranking: list[int], unclear: bool = False) -> tuple:
    return 200, completion(json.dumps({"ranking": ranking, "unclear": unclear})), 0


def test_the_model_reader_asks_for_json_under_a_schema_and_validates_it():
    answer = "1. Oster Pro 1200\n2. Blendtec Designer 650 S"
    with WireFake([reply([3, 1]), reply([9]), (200, completion("not json"), 0), reply([], True)]) as fake:
        reader = ModelReader(get_model("openai:reader", base_url=fake.url, api_key="k"))
        assert reader.read(answer, P).order == (2, 0)
        request = fake.requests[0]
        assert request["response_format"]["type"] == "json_schema"
        assert "Oster Pro 1200" in request["messages"][1]["content"]
        for why in ("does not fit", "does not fit", "could not tell"):
            ranking = reader.read(answer, P)
            assert ranking.status == "ambiguous" and why in ranking.reason
        assert ranking.reader == "model:openai:reader"


def test_a_reader_model_that_cannot_be_reached_fails_the_call_and_a_refused_answer_is_ambiguous():
    """A dead reader server used to turn every answer into an 'ambiguous' reading of a run that then looked
    finished; it raises now, so the run fails and resumes. A request refused for what it asks (HTTP 400) is
    about this answer alone: that answer is ambiguous, counted apart."""
    from poise import ModelError
    from poise.models import OpenAIModel, RetryPolicy

    dead = OpenAIModel("openai:reader", "reader", base_url="http://127.0.0.1:1/v1", api_key="k",
                       retry=RetryPolicy(max_attempts=1, timeout_s=5))
    with pytest.raises(ModelError):
        ModelReader(dead).read("1. Oster Pro 1200", P)
    refused = (400, {"error": {"message": "flagged by moderation", "type": "invalid_request_error"}}, 0)
    with WireFake([refused]) as fake:
        ranking = ModelReader(get_model("openai:reader", base_url=fake.url, api_key="k")).read("1. Oster Pro 1200", P)
    assert ranking.status == "ambiguous" and "reader model failed" in ranking.reason


def test_the_agreement_reader_keeps_only_readings_both_give():
    answer = "1. Oster Pro 1200\n2. Blendtec Designer 650 S"
    with WireFake([reply([3, 1]), reply([1, 3])]) as fake:
        model = get_model("openai:reader", base_url=fake.url, api_key="k")
        reader = get_reader("heuristic+openai:reader", lambda spec: model)
        assert isinstance(reader, AgreementReader)
        agreed = reader.read(answer, P)
        assert agreed.order == (2, 0) and agreed.reader == "heuristic+model:openai:reader"
        disagreed = reader.read(answer, P)
        assert disagreed.status == "ambiguous" and "disagree" in disagreed.reason


def test_reader_specs():
    assert isinstance(get_reader("heuristic", lambda s: None), HeuristicReader)
    with pytest.raises(Exception, match="names no model"):
        get_reader("heuristic+", lambda s: None)


# -- re-reading a stored run ------------------------------------------------------------------------
def test_a_stored_run_is_reread_without_recommender_calls(tmp_path):
    from poise.catalog import sample_catalog
    from poise.engine import SearchEngine
    from poise.experiments import natural_records, reread_run, run_natural
    from poise.store import Store

    from .wirefake import context_titles

    def answer(request: dict) -> str:  # ranks its first two pages; one answer in four is ambiguous
        titles = context_titles(request)
        text = f"1. {titles[0]}\n2. {titles[1]}"
        if len(answer.seen) % 4 == 0:
            text = (f"My ranking: {titles[0]} first, then {titles[1]}.\n\n"
                    f"Final ranking: {titles[1]} first, then {titles[0]}.")
        answer.seen.append(text)
        return text
    answer.seen = []
    category = sample_catalog().category("blender")
    with WireFake([], responder=answer) as fake, Store(tmp_path) as store:
        engine = SearchEngine(get_model("openai:engine", base_url=fake.url, api_key="k"))
        run_id = store.start_run("natural", {"trials": 8})
        run_natural(engine, [category], trials=8, store=store, run_id=run_id)
        store.finish_run(run_id)
        asked = len(fake.requests)
        records = natural_records(store, run_id)
        assert records.ambiguous["blender"] == 2 and records.unparseable["blender"] == 0

        class FirstOnly:  # a reader that keeps only the first product: every reading changes
            name = "first-only"

            def read(self, response, products, context=None):
                r = HeuristicReader().read(response, products, context)
                return type(r)(r.order[:1], r.n, r.reason, r.ambiguous, r.roles, self.name)

            def close(self):
                pass

        result = reread_run(store, run_id, FirstOnly())
        assert len(fake.requests) == asked  # no recommender call
        assert result.calls == 8 and result.changed == 6 and result.after["ambiguous"] == 2
        new = store.calls(result.run_id)
        assert len(new) == 8 and all(c["cached"] for c in new)
        assert all(json.loads(c["meta_json"])["reader"] == "first-only" for c in new)
        assert store.run(result.run_id).config["reread_of"] == run_id
        assert len(natural_records(store, result.run_id)) == 6 * len(category.products)


def test_poise_reread_and_the_reader_option_end_to_end(tmp_path):
    """Through the CLI: a natural run with the agreement reader (its model behind the wire
    fake), then `poise reread` with the heuristic reader; ambiguous answers are counted apart."""
    from .test_cli import poise
    from .wirefake import context_titles

    def respond(request: dict) -> str:
        if request.get("response_format"):  # the reader model: always the first two products
            return json.dumps({"ranking": [1, 2], "unclear": False})
        titles = context_titles(request)
        return f"1. {titles[0]}\n2. {titles[1]}"

    env = {"OPENAI_API_KEY": "sk-test-reader"}
    with WireFake([], responder=respond) as fake:
        first = poise("natural", "-c", "blender", "--trials", "4", "--model", "openai:engine", "--base-url", fake.url,
                      "--reader", "heuristic+openai:reader", "--bootstrap", "0", "--json", store=tmp_path, env=env)
        assert first.returncode == 0, first.stderr
        result = json.loads(first.stdout)
        asked = len(fake.requests)
        blender = result["categories"]["blender"]
        # the reader model answers "products 1 and 2 of the list"; the engine ranks its first two
        # pages, which are other products in most orders: those answers are ambiguous
        assert blender["ambiguous"] >= 1 and blender["ambiguous"] + blender["unparseable"] <= 4
        assert any("readers disagree" in reason for reason in blender["unread_reasons"])
        again = poise("reread", result["run_id"][:-2], "--reader", "heuristic", "--json", "--store", str(tmp_path),
                      store=tmp_path, env=env)  # a unique prefix of the id, as `poise report` takes it
        assert again.returncode == 0, again.stderr
        assert len(fake.requests) == asked  # no model was asked
    reread = json.loads(again.stdout)
    assert reread["calls"] == 4 and reread["after"] == {"ranked": 4}
    assert reread["before"].get("ambiguous", 0) == blender["ambiguous"]
    runs = json.loads(poise("runs", "--json", store=tmp_path).stdout)
    by_id = {r["id"]: r for r in runs}
    assert by_id[reread["run_id"]]["ambiguous_calls"] == 0
    assert by_id[result["run_id"]]["ambiguous_calls"] == blender["ambiguous"]
    unknown = poise("reread", "no-such-run", "--store", str(tmp_path), store=tmp_path)
    assert unknown.returncode != 0 and "no run 'no-such-run'" in unknown.stderr and "Traceback" not in unknown.stderr
