"""Reader rules learned from labelled sets 24-25 (each test fails on the reader before the rule):
pages walked through before the pick, score columns, spec units, more languages' decisions."""

from __future__ import annotations

import pytest

from poise.ranking import extract_ranking, parse_ranking

TENTS = [("Vaude", "Taurus 2P"), ("Coleman", "Darwin 3"), ("MSR", "Hubba Hubba NX"), ("Nordisk", "Otra 3")]
WALK = ("1. **Vaude Taurus 2P** - tunnel, 2.9 kg.\n2. **Coleman Darwin 3** - dome, 4.1 kg.\n"
        "3. **MSR Hubba Hubba NX** - freestanding, 1.7 kg.\n4. **Nordisk Otra 3** - cotton blend, 6 kg.\n\n")


@pytest.mark.parametrize("intro", [
    "Let me go through the tents one by one, then give a verdict.",
    "Here is what each of the pages you found says:",
    "**What the sources say**",
    "Voici ce que disent les fiches produits :",
    "**Samenvatting van de bronnen**",
    "Was die Quellen sagen:",
])
def test_a_walk_through_of_the_pages_is_not_a_ranking(intro):
    answer = (intro + "\n\n" + WALK + "**Verdict:** for two people hiking light, I'd go with the **MSR Hubba Hubba "
              "NX**; the **Vaude Taurus 2P** is a good cheaper alternative.")
    assert extract_ranking(answer, TENTS) == [2, 0]
    # without the intro the numbered list ranks, and the verdict only highlights
    assert extract_ranking(WALK + "I'd go with the MSR Hubba Hubba NX or the Vaude Taurus 2P.", TENTS)[:2] == [0, 1]


def test_spec_units_name_no_product():
    dishwashers = [("Bosch", "Serie 4 dishwasher 60 cm"), ("Miele", "G 5000 SC"), ("Beko", "DVN05320W")]
    answer = ("Only one fits a small flat: the **Miele G 5000 SC**. Everything else is a full-size 60 cm machine "
              "you would run half-empty.")
    assert extract_ranking(answer, dishwashers) == [1]


def test_more_than_you_need_and_not_looked_at_advise_against():
    psus = [("Corsair", "RM750x"), ("Seasonic", "Focus GX-850"), ("be quiet!", "Dark Power 13 1000W"),
            ("Thermaltake", "Toughpower GF3 1200W")]
    answer = ("For a 600 W build, the **Corsair RM750x** first, then the **Seasonic Focus GX-850** if you want "
              "headroom. The Dark Power 13 and the Toughpower GF3 are more than you need.")
    assert extract_ranking(answer, psus) == [0, 1]
    german = [("Xiaomi", "Electric Toothbrush T300"), ("Xiaomi", "Smart Toothbrush T500"), ("Oclean", "Air 2")]
    answer = ("Von den Xiaomi-Modellen würde ich die **T300** nehmen. Die T500 kostet fast das Doppelte.\n\n"
              "Die Oclean Air 2 habe ich mir nicht näher angesehen.")
    assert extract_ranking(answer, german) == [0]
    english = "I'd take the Xiaomi T300. I didn't look closely at the Oclean Air 2."
    assert extract_ranking(english, german) == [0]


@pytest.mark.parametrize("answer", [
    "Für ein Apartment würde ich den **Roborock Q5** nehmen. Der Roomba 694 ist älter.\n\n"
    "Den Eufy RoboVac 11S würde ich nicht empfehlen.",
    "Voor een appartement zou ik de **Roborock Q5** nemen. De Roomba 694 is ouder.\n\n"
    "De Eufy RoboVac 11S is niet aan te raden.",
    "Wil je vooral dweilen? Kies dan de **Roborock Q5**. De Roomba 694 is ouder.\n\n"
    "De Eufy RoboVac 11S is niet aan te raden.",
])
def test_inverted_decisions_and_imperatives_in_other_languages(answer):
    # the sentence that decides is the pick; the one that only describes the Roomba is not
    vacuums = [("Roborock", "Q5"), ("Eufy", "RoboVac 11S"), ("iRobot", "Roomba 694"), ("Dreame", "D9")]
    assert extract_ranking(answer, vacuums) == [0]
    refused = "Am leisesten ist der **Eufy RoboVac 11S**. Den Roomba 694 würde ich nicht nehmen."
    assert extract_ranking(refused, vacuums) == [1]  # "würde ich nicht" decides nothing


def test_a_score_column_ranks_the_rows():
    machines = [("Gaggia", "Cadorna Prestige"), ("Jura", "S8"), ("DeLonghi", "La Specialista"),
                ("Rancilio", "Classe 5"), ("Nespresso", "Pixie")]
    answer = ("| Machine (A-Z) | Type | Score /10 |\n|---|---|---|\n| DeLonghi La Specialista | semi | 8.2 |\n"
              "| Gaggia Cadorna Prestige | super | 8.7 |\n| Jura S8 | super | 9.1 |\n"
              "| Nespresso Pixie | capsule | 7.0 |\n"
              "| Rancilio Classe 5 | commercial | n/a |\n\nRows are alphabetical; the score ranks them.")
    assert extract_ranking(answer, machines)[:4] == [1, 0, 2, 4]
    stars = ("| Machine | Rating |\n|---|---|\n| Gaggia Cadorna Prestige | ★★★★☆ |\n| Jura S8 | ★★★★★ |\n"
             "| DeLonghi La Specialista | ★★★☆☆ |\n| Nespresso Pixie | ★★½ |\n\n"
             "Stars are my overall rating. Anything under 3.5 stars I wouldn't buy.")
    assert extract_ranking(stars, machines) == [1, 0]
    verdicts = ("| Machine | Score | Verdict |\n|---|---|---|\n| Gaggia Cadorna Prestige | 8.7 | Consider |\n"
                "| Jura S8 | 7.9 | Buy |\n| DeLonghi La Specialista | 8.9 | Buy |")
    assert extract_ranking(verdicts, machines) == [2, 1, 0]  # the verdict tiers first, the score within them


def test_prose_that_only_advises_against_a_table_row_takes_it_out():
    cookers = [("Sunbeam", "SecretChef 5.5L"), ("West Bend", "Large 6 Qt"), ("Crock-Pot", "7 Qt Oval")]
    answer = ("| Model | Size | Notes |\n|---|---|---|\n| Sunbeam SecretChef | 5.5 L | lid rattles |\n"
              "| West Bend Large 6 Qt | 6 qt | reliable |\n| Crock-Pot 7 Qt Oval | 7 qt | roomy |\n\n"
              "I wouldn't buy the Sunbeam.")
    assert extract_ranking(answer, cookers) == [1, 2]
    # named again as a pick elsewhere in the prose: it stays
    mixed = answer.replace("I wouldn't buy the Sunbeam.", "I wouldn't buy the Sunbeam new; a used Sunbeam is a "
                           "good option.")
    assert 0 in extract_ranking(mixed, cookers)


def test_a_later_sentence_of_a_paragraph_that_calls_a_product_a_pick_adds_it():
    phones = [("Xiaomi", "Redmi Note 10"), ("OnePlus", "12R"), ("OPPO", "A94"), ("Samsung", "Galaxy Note 20")]
    answer = ("For affordable Android phones the **OnePlus 12R** stands out. At lower prices, the **Redmi Note 10** "
              "has a great screen, and the **OPPO A94** is another solid budget option.\n\n"
              "Older flagships such as the Galaxy Note 20 can be found cheaply.")
    assert extract_ranking(answer, phones) == [1, 0, 2]


def test_outdated_products_are_advised_against():
    headphones = [("Bose", "QuietComfort Ultra"), ("Sony", "WH-1000XM5"), ("Beats", "Studio3"),
                  ("Google", "Pixel Buds")]
    answer = ("The **Bose QuietComfort Ultra** has the best noise cancelling. If sound matters more, the **Sony "
              "WH-1000XM5** is a great alternative.\n\nThe Beats Studio3 is now outclassed on comfort.")
    assert extract_ranking(answer, headphones) == [0, 1]
    discontinued = answer.replace("The Beats Studio3 is now outclassed on comfort.",
                                  "(The Pixel Buds are discontinued and no longer get updates.)")
    assert extract_ranking(discontinued, headphones) == [0, 1]


def test_a_use_case_question_leaves_the_paragraph_to_its_next_sentence():
    tablets = [("Apple", "iPad Air"), ("Samsung", "Galaxy Tab S7 FE"), ("Lenovo", "Tab P11")]
    answer = ("Get the **iPad Air** with an Apple Pencil.\n\nPrefer Android? The **Galaxy Tab S7 FE** includes the S "
              "Pen in the box.\n\nOn a budget? The **Lenovo Tab P11** does the basics.")
    assert extract_ranking(answer, tablets) == [0, 1, 2]


def test_a_model_code_after_the_brand_of_a_listed_name_without_one_is_that_product():
    routers = [("Makita", "RT0701C Compact Router"), ("DeWalt", "1-1/4 HP Max Torque Variable Speed Compact Router"),
               ("TP-Link", "Archer C20")]
    answer = "1. **Makita RT0701C** - smooth.\n2. **DeWalt DWP611** - the LED lights help.\n3. **TP-Link Archer C20**"
    assert extract_ranking(answer, routers) == [0, 1, 2]
    # a listed name with a code of its own: another code after the brand is another product
    other = "1. **Makita RT0701C** - smooth.\n2. **TP-Link AX21** - outside the list."
    assert extract_ranking(other, routers) == [0]


def test_more_pick_labels_and_kind_nouns():
    measures = [("Bosch", "GLM 50 C"), ("Leica", "Disto D1"), ("Bosch", "GLM 20"),
                ("Stanley", "TLM99 Laser Distance Measurer")]
    answer = ("**Best overall: Bosch GLM 50 C** — syncs with the MeasureOn app.\n\n"
              "**Most compact: Leica DISTO D1** — tiny and accurate.\n\n**Best under $50 – Bosch GLM 20** — basic.")
    assert extract_ranking(answer, measures) == [0, 1, 2]  # and "MeasureOn" is no misspelled "Measurer"


def test_a_decline_of_some_products_or_before_a_final_ranking_is_no_decline():
    ssds = [("Samsung", "860 QVO"), ("SK Hynix", "Platinum P41"), ("Crucial", "BX500"), ("Kingston", "FURY Renegade")]
    answer = ("For a PS5 you need a Gen4 NVMe drive. Great choices:\n- **SK hynix Platinum P41** - fast.\n"
              "- **Kingston FURY Renegade** - faster.\n\nThe Samsung 860 QVO and Crucial BX500 are SATA drives, so "
              "none of those work for the PS5.")
    assert extract_ranking(answer, ssds) == [1, 3]
    # every listed product named before "none of them": the whole list is declined
    every = "The Samsung 860 QVO and the Crucial BX500 are SATA drives, so none of them work for the PS5."
    assert "declines" in (parse_ranking(every, [ssds[0], ssds[2]]).reason or "")
    ruled = ("**Crucial BX500** and **Samsung 860 QVO**: both are slow, so I'd rule them out.\n\n"
             "**Final ranking:**\n1. Kingston FURY Renegade\n2. SK hynix Platinum P41")
    assert extract_ranking(ruled, ssds) == [3, 1]


def test_a_tentative_favourite_is_a_pick_not_a_deferral():
    machines = [("Jura", "S8"), ("Miele", "CM 5310 Silence"), ("Jura", "E6")]
    answer = ("A few questions first: how many milk drinks a day? Provisionally: if noise matters, the Miele CM 5310 "
              "Silence is the obvious choice; for lots of milk drinks the Jura S8 is my tentative favourite. Tell me "
              "more and I'll firm this up.")
    assert extract_ranking(answer, machines) == [1, 0]


def test_standards_kind_nouns_and_echoed_documents_name_nothing():
    routers = [("TP-Link", "Archer AX10"), ("Tenda", "AC6"), ("Netgear", "Nighthawk Dual-Band WiFi 6 Router")]
    answer = ("The **TP-Link Archer AX10** is a great cheap choice — it's Wi-Fi 6. If you want to spend less, the "
              "**Tenda AC6** is a decent option.")
    assert extract_ranking(answer, routers) == [0, 1]
    washers = [("Miele", "WWG360"), ("Zanussi", "Waschmaschine Toplader 6 kg"), ("Beko", "7kg 1200rpm")]
    german = "Die beste Waschmaschine ist die Miele WWG360. Günstiger ist die Beko 7kg."
    assert extract_ranking(german, washers) == [0, 2]
    echoed = ("Document 1: Miele WWG360. Quiet, 9 kg.\nDocument 2: Zanussi Waschmaschine Toplader. Top loader.\n"
              "Document 3: Beko 7kg 1200rpm. Cheap.\n\nRecommendation: Miele WWG360")
    assert extract_ranking(echoed, washers) == [0]


def test_a_budget_pick_after_a_short_answer_and_a_brand_without_its_city():
    drills = [("DeWalt", "DCD991"), ("Milwaukee", "M18 FUEL 2903"), ("Skil", "PWR CORE 20 Drill Driver Kit"),
              ("Ryobi", "P1815")]
    answer = ("**Quick answer:** the **Milwaukee M18 FUEL** is the best pick, with the **DeWalt DCD991** a close "
              "second.\n\n**Budget alternative:** the **SKIL PWR CORE 20** kit is surprisingly capable.\n\n"
              "I'd skip the Ryobi P1815.")
    assert extract_ranking(answer, drills) == [1, 0, 2]
    palettes = [("Too Faced", "Chocolate Bar"), ("Pat McGrath Labs", "Divine Rose"), ("Kiko Milano", "Blendable")]
    dutch = "Mijn volgorde: eerst de Chocolate Bar, dan de Divine Rose, en als budgetoptie de Kiko."
    assert extract_ranking(dutch, palettes) == [0, 1, 2]


def test_a_choice_stated_under_a_table_sorted_by_price_ranks():
    microwaves = [("Magic Chef", "MCM1110ST"), ("Toshiba", "ML-EM34P"), ("Panasonic", "NN-SN686SR"), ("LG", "NeoChef")]
    answer = ("Sorted by price, low to high:\n\n| Microwave | Price |\n|---|---|\n| Magic Chef MCM1110ST | $110 |\n"
              "| Toshiba ML-EM34P | $140 |\n| Panasonic NN-SN686SR | $190 |\n| LG NeoChef | $230 |\n\n"
              "If I had to pick one: the Panasonic. Then the Toshiba, then the LG. The Magic Chef only if budget is "
              "everything.")
    assert extract_ranking(answer, microwaves) == [2, 1, 3, 0]


def test_a_correction_to_the_ranking_above_revises_it():
    hammocks = [("ENO", "DoubleNest"), ("Warbonnet", "Blackbird"), ("Hennessy Hammock", "Ultralight Backpacker")]
    answer = ("1. **ENO DoubleNest** — roomy.\n2. **Warbonnet Blackbird** — flat lay.\n\n**Correction to the ranking "
              "above: the #1 pick is the Hennessy Hammock Ultralight Backpacker.**")
    assert extract_ranking(answer, hammocks) == [2, 0, 1]
