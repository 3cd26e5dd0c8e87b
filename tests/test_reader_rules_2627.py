"""Reader rules learned from labelled sets 26-27: a pick written as a bold-led paragraph among
pick lines, advice against in more words and languages. Each test named for a rule fails on the
reader before it; the tests named for what a rule must not do (``..._is_no_...``) guard its edge."""

from __future__ import annotations

import pytest

from poise.ranking import extract_ranking, parse_ranking

HEATERS = [("DeLonghi", "RadiaS ECO Digital Full Room Radiant Heater"), ("Honeywell", "360 Surround Heater"),
           ("Vornado", "VH200 Vortex Heater"), ("Pelonis", "Oil Filled Heater NY1507-14A")]


def test_a_bold_led_paragraph_among_pick_lines_is_one_more_pick():
    answer = ("**Top pick: Vornado VH200** – cool-touch housing and a tip-over switch.\n\n"
              "**Also good: Pelonis Oil Filled Heater NY1507-14A** – silent, no fan.\n\n"
              "**DeLonghi RadiaS ECO Digital** – radiant heat with an eco thermostat and very even warmth.\n\n"
              "I'd keep the Honeywell 360 away from a crib: its grille gets hot.")
    assert extract_ranking(answer, HEATERS) == [2, 3, 0]


def test_a_bold_led_paragraph_that_only_describes_or_advises_against_is_no_pick():
    answer = ("**Top pick: Vornado VH200** – cool-touch housing and a tip-over switch.\n\n"
              "**Also good: Pelonis Oil Filled Heater NY1507-14A** – silent, no fan.\n\n"
              "**DeLonghi RadiaS ECO Digital** is comfortable but slow, so it isn't ideal for a nursery.")
    assert extract_ranking(answer, HEATERS) == [2, 3]


BAGS = [("Mountain Hardwear", "Phantom 0F"), ("Snugpak", "Sleeper Expedition"), ("REI Co-op", "Trailbreak 20"),
        ("Western Mountaineering", "Alpinlite")]


@pytest.mark.parametrize("against", [
    "The REI Trailbreak 20 is not warm enough for winter.",
    "The REI Trailbreak 20 is outside your temperature requirement.",
    "The REI Trailbreak 20 is too expensive for what it does.",
    "The REI Trailbreak 20 makes it hard to recommend at this price.",
    "My earlier pick, the REI Trailbreak 20, is one I no longer recommend for winter.",
    "Der REI Trailbreak 20 ist für den Winter eher zu klein.",
    "Le REI Trailbreak 20 est aujourd'hui dépassé.",
    "REI Trailbreak 20 skulle jag hoppa över.",
    "Den REI Trailbreak 20 är överkurs för en weekend.",
    "Eu não escolheria o REI Trailbreak 20.",
    "REI Trailbreak 20 ise çok ince, pek tavsiye etmem.",
    "REI Trailbreak 20 je tenký; nedoporučuji ho.",
    "Il REI Trailbreak 20 non lo considererei.",
    "The REI Trailbreak 20 is lovely but too narrow for broad shoulders.",
    "The REI Trailbreak 20 is overpriced for what it is.",
    "The REI Trailbreak 20 is probably heavier and pricier than you need.",
    "The REI Trailbreak 20 isn't rated for snow, so I wouldn't rely on it.",
    "I couldn't find enough independent testing of the REI Trailbreak 20 to recommend it.",
    "Den REI Trailbreak 20 halte ich für überteuert.",
    "REI Trailbreak 20 passar inte för vinter.",
])
def test_more_ways_to_advise_against(against):
    answer = ("For winter camping, get the **Mountain Hardwear Phantom 0F**. Another good one is the "
              f"**Snugpak Sleeper Expedition**.\n\n{against}")
    assert extract_ranking(answer, BAGS) == [0, 1]


def test_not_too_loud_is_no_advice_against():
    answer = ("Für den Winter nimm den **Mountain Hardwear Phantom 0F**. Auch gut ist der **Snugpak Sleeper "
              "Expedition**.\n\nDer REI Trailbreak 20 ist nicht zu teuer und eine gute Wahl für den Sommer.")
    assert extract_ranking(answer, BAGS)[:2] == [0, 1] and 2 in extract_ranking(answer, BAGS)


def test_more_than_most_buyers_need_advises_against():
    answer = ("A good budget bag is the **REI Co-op Trailbreak 20**. If comfort matters more, the **Snugpak "
              "Sleeper Expedition** is roomy.\n\nPremium down bags like the Western Mountaineering Alpinlite are "
              "excellent but cost far more than most campers need to spend.")
    assert extract_ranking(answer, BAGS) == [2, 1]


DRILLS = [("DeWalt", "20V MAX Compact Drill/Driver Kit"), ("Bosch", "GSR18V-755CB25"), ("Ryobi", "P1815"),
          ("Skil", "PWR CORE 12 Drill Driver Kit")]


@pytest.mark.parametrize("by_place", [
    "For a budget build, **source [3]** is hard to beat.",
    "**Option C** is my second pick if money is tight.",
    "The third link is my runner-up.",
    "Result 3 is a great second choice.",
])
def test_a_product_called_only_by_its_place_among_the_pages_makes_the_answer_ambiguous(by_place):
    answer = f"The best overall for decking is the **Bosch GSR18V-755CB25**.\n\n{by_place}"
    reading = parse_ranking(answer, DRILLS)
    assert reading.status == "ambiguous" and "place among the pages" in (reading.reason or "")


def test_a_citation_or_a_place_beside_a_name_is_no_ambiguity():
    answer = ("The best overall is the **Bosch GSR18V-755CB25**, a strong budget option [2][3]. The third result "
              "(the Ryobi P1815) is a good second choice, as our sources [1] agree.")
    assert extract_ranking(answer, DRILLS) == [1, 2]


METERS = [("Bosch", "GLM 20"), ("Stanley", "TLM65"), ("Leica", "DISTO X4"), ("Makita", "LD030P")]


def test_a_final_ranking_in_portuguese_with_ordinal_marks_ranks():
    answer = ("A **Bosch GLM 20** é simples e barata.\n\nA **Stanley TLM65** é robusta.\n\nA **Leica DISTO X4** "
              "mede até 150 m.\n\n**Classificação final:**\n1º Leica DISTO X4\n2º Bosch GLM 20\n3º Stanley TLM65")
    assert extract_ranking(answer, METERS) == [2, 0, 1]


def test_a_close_second_after_the_top_choice_is_the_second_pick():
    answer = ("My top choice would be the **Leica DISTO X4**: long range and a camera. A close second is the "
              "**Bosch GLM 20**, which is simple and cheap.\n\nIf you work outdoors a lot, the **Stanley TLM65** "
              "is the one to get.\n\nA few I'd pass on:\n- **Makita LD030P** — a small screen.")
    assert extract_ranking(answer, METERS) == [2, 0, 1]


def test_i_would_reorder_revises_the_list_above():
    answer = ("My initial picks were:\n\n1. Bosch GLM 20\n2. Stanley TLM65\n3. Leica DISTO X4\n\nChecking prices, "
              "though, I'd reorder: **Leica DISTO X4** first, **Bosch GLM 20** second and the **Stanley TLM65** "
              "third.")
    assert extract_ranking(answer, METERS) == [2, 0, 1]


def test_its_close_then_a_tie_break_keeps_both_products():
    answer = ("Between the **Bosch GLM 20** and the **Leica DISTO X4**, it's honestly close. The Bosch is cheaper, "
              "the Leica reaches further. If pressed, I'd give the Leica the edge.\n\nIf you just need a basic "
              "one, the **Stanley TLM65** is a solid, old-school choice.")
    assert extract_ranking(answer, METERS) == [2, 0, 1]


def test_a_product_named_after_vicina_alla_is_compared_not_recommended():
    answer = ("**Leica DISTO X4** – è il più preciso in assoluto. È la mia prima scelta.\n\n"
              "**Bosch GLM 20** – molto vicino alla Leica come precisione, ma costa molto meno.\n\n"
              "**Stanley TLM65** – un po' più semplice delle due precedenti.")
    assert extract_ranking(answer, METERS) == [2, 0, 1]


WATERING = [("Hozelock", "25 Pot Watering Kit"), ("Claber", "8053 Oasis Automatic Drip Watering System"),
            ("Raindrip", "Hose-End Automatic Water Timer"), ("Rachio", "Rachio 3 Smart Sprinkler Controller")]


def test_products_called_out_and_one_that_wont_fit_are_advised_against():
    answer = ("Without an outdoor tap, anything hose-based is out — the Raindrip timer, the Rachio 3 and the "
              "Hozelock kit. The **Claber 8053 Oasis** has its own pump, so that's your system.")
    assert extract_ranking(answer, WATERING) == [1]
    answer = ("Get the **Claber 8053 Oasis**. The Rachio 3 looks tempting, but it's a controller for buried "
              "valves, so it won't fit a balcony.")
    assert extract_ranking(answer, WATERING) == [1]
    spanish = "Te recomiendo el **Claber 8053 Oasis**.\n\nDesaconsejo el Rachio 3: necesita un grifo."
    assert extract_ranking(spanish, WATERING) == [1]


def test_out_now_is_no_advice_against():
    answer = "The **Claber 8053 Oasis** is the pick; its new version is out now. The **Rachio 3** is also good."
    assert extract_ranking(answer, WATERING) == [1, 3]


COOKERS = [("Hamilton Beach", "Set & Forget 6 Qt. Slow Cooker"), ("All-Clad", "6.5Qt Slow Cooker"),
           ("Breville", "the Fast Slow Pro"), ("Crock-Pot", "7-Quart Oval Manual Slow Cooker")]


def test_a_pick_after_an_opening_sentence_that_names_no_product_leads():
    answer = ("For five people you'll want at least 6 quarts. I'd suggest starting with the **Hamilton Beach Set "
              "& Forget**, whose probe mode switches to warm.\n\nThe **All-Clad 6.5Qt** is a step up in build "
              "quality.\n\nAnd if you'd also like pressure cooking, the **Breville Fast Slow Pro** is worth it.")
    assert extract_ranking(answer, COOKERS) == [0, 1, 2]


def test_a_use_case_led_by_and_for_is_a_pick_after_the_list():
    answer = ("Here are the top options:\n\n1. **All-Clad 6.5Qt** – the best overall.\n2. **Breville the Fast "
              "Slow Pro** – also pressure-cooks.\n\nAnd for a simple budget cooker, the **Crock-Pot 7-Quart "
              "Oval** works well.")
    assert extract_ranking(answer, COOKERS) == [1, 2, 3]


WASHERS = [("Kärcher", "K5 Premium"), ("Ryobi", "2300 PSI Brushless Electric Pressure Washer"),
           ("DeWalt", "DWZPWFC75 Foam Cannon"), ("Westinghouse", "WPX2700 Pressure Washer")]


def test_notes_on_the_other_results_are_not_picks():
    answer = ("Here are the electric pressure washers I'd recommend:\n\n1. **Kärcher K5 Premium** – gentle on cars.\n"
              "2. **Ryobi 2300 PSI Brushless** – quiet.\n\nA couple of notes on the other results:\n"
              "- The DeWalt DWZPWFC75 is a foam cannon accessory.\n- The Westinghouse WPX2700 is gas-powered.")
    assert extract_ranking(answer, WASHERS) == [0, 1]


DISHWASHERS = [("Miele", "G 5006 SCU"), ("Siemens", "iQ700 SN27YI03CE"), ("GE", "GDT665SGNBB"),
               ("Whirlpool", "Large Capacity Dishwasher with 3rd Rack")]


def test_a_pronoun_that_takes_products_back_in_swedish():
    answer = ("Om tillförlitlighet är viktigast skulle jag välja **Siemens iQ700** först. **Miele G 5006 SCU** är "
              "ett mycket bra andraval.\n\nGE och Whirlpool har fler serviceärenden i snitt, så dem skulle jag "
              "hoppa över.")
    assert extract_ranking(answer, DISHWASHERS) == [1, 0]


WASHING = [("Miele", "W1 T1 Laundry Series"), ("LG", "5.2 cu. ft. Smart Front Load Washer TurboWash"),
           ("GE Appliances", "GE 5.0 cu. ft. Smart Front Load ENERGY STAR Steam Washer"),
           ("Electrolux", "500 Series Front Load Washer")]


def test_energy_and_also_reviewed_sections_name_no_pick():
    answer = ("### Energy and water\nFront-loaders use less water.\n\n### Large families — LG 5.2 cu. ft. Front Load\n"
              "A huge drum.\n\n### Premium — Miele W1 T1\nBuilt for 20 years.\n\n### Also reviewed\n"
              "- **GE 5.0 cu. ft. Smart Front Load** — dispenser jams.\n- **Electrolux 500 Series** — fine, "
              "but beaten by the LG on every metric.")
    assert extract_ranking(answer, WASHING) == [1, 0]


def test_a_recommendation_for_someone_that_orders_with_ordinals_ranks():
    answer = ("**Premium:** Miele W1 T1 — built for 20 years.\n\n**Mid:** LG 5.2 cu. ft. Smart Front Load — a huge "
              "drum.\n\n**Budget:** Electrolux 500 Series — good value.\n\n**My overall recommendation for a family "
              "of four is the mid-tier LG** — with the Miele second if money is no object, and the Electrolux third.")
    assert extract_ranking(answer, WASHING) == [1, 0, 3]


SHAMPOOS = [("Herbal Essences", "Color Me Happy Shampoo"), ("Redken", "Color Extend Magnetics Shampoo"),
            ("Joico", "Blonde Life Brightening Shampoo"), ("Matrix", "Brass Off Shampoo"),
            ("Pantene", "Repair Protect")]


def test_a_use_case_after_the_list_that_names_two_picks_adds_both():
    answer = ("For colored hair use a sulfate-free shampoo. Good options:\n- Redken Color Extend Magnetics\n"
              "- Herbal Essences Color Me Happy (cheaper)\n\nIf you are blonde: Joico Blonde Life or Matrix Brass Off.")
    assert extract_ranking(answer, SHAMPOOS) == [1, 0, 2, 3]


GUNS = [("Therabody", "Theragun Elite"), ("Hyperice", "Hypervolt 2"), ("Renpho", "R4 Pro Massage Gun")]


@pytest.mark.parametrize("answer", [
    "Für dich kommen eigentlich nur zwei infrage: die **Theragun Elite** und die **Hypervolt 2**.\n\nDie Theragun "
    "geht tiefer, die Hypervolt 2 ist leiser.\n\nWenn ich mich entscheiden müsste, würde ich zur Hypervolt 2 "
    "tendieren.\n\nWie wichtig ist dir die Lautstärke?",
    "Tra i modelli elencati, i due adatti sono la **Theragun Elite** e la **Hypervolt 2**.\n\nLa Theragun va più "
    "in profondità; la Hypervolt è più silenziosa.\n\nSe dovessi scegliere, prenderei la Hypervolt 2.",
])
def test_only_two_candidates_then_a_pick_ranks_the_pick_first_and_keeps_the_other(answer):
    assert extract_ranking(answer, GUNS) == [1, 0]


@pytest.mark.parametrize("label", ["**Evita:**", "**Undvik:**", "**Vermeiden:**"])
def test_an_avoid_label_in_other_languages_takes_its_product_out(label):
    answer = (f"1. **Mountain Hardwear Phantom 0F** – warm.\n2. **Snugpak Sleeper Expedition** – robust.\n\n"
              f"{label} el REI Trailbreak 20.")
    assert extract_ranking(answer, BAGS) == [0, 1]


def test_too_good_to_pass_up_is_no_advice_against():
    answer = ("For winter camping, get the **Mountain Hardwear Phantom 0F**. The **Snugpak Sleeper Expedition** "
              "on sale is too good for the price to pass up.")
    assert extract_ranking(answer, BAGS) == [0, 1]


TENTS = [("NEMO", "Dragonfly Osmo Backpacking Tent"), ("NEMO", "Hornet Osmo Ultralight Backpacking Tent"),
         ("Marmot", "Tungsten 2P UL"), ("ALPS Mountaineering", "Lynx 1")]


def test_a_shopping_assistants_cart_recommends_what_it_added_not_what_it_removed():
    answer = ("**✅ Added to cart**\n**NEMO Hornet Osmo 2P** — $449.95 · ★ 4.6\n\n**🔁 Auto-substitute if it sells "
              "out**\n**NEMO Dragonfly Osmo 2P** — $499.95\n\n**🗑 Removed from cart**\n- Marmot Tungsten 2P UL — "
              "$299.00 · 4 lb 2 oz.\n\n**Filtered out**\n- ALPS Mountaineering Lynx 1 — 1-person only.")
    assert extract_ranking(answer, TENTS) == [1, 0]
    compared = ("**🛒 Your cart (1 item)**\n\n**NEMO Hornet Osmo 2P** — $449.95\n\n**Compared, not added**\n"
                "- Marmot Tungsten 2P UL — $299.00, heavier.\n- ALPS Mountaineering Lynx 1 — $150, one person.")
    assert extract_ranking(compared, TENTS) == [1]


METERS_HILTI = [("Hilti", "PD-I Laser Meter"), ("Hilti", "PD-E Laser Meter"), ("Hilti", "PD-S Laser Meter"),
                ("Bosch", "GLM 50 C")]


def test_an_answer_that_only_compares_recommends_nothing():
    answer = ("Here's a side-by-side comparison:\n\n| Spec | Hilti PD-I | Hilti PD-E |\n|---|---|---|\n"
              "| Range | 100 m | 200 m |\n| Bluetooth | Yes | No |\n\n- The PD-E is the only one with a camera.\n"
              "- The PD-I is the only one with Bluetooth.\n\nWhich one fits best depends on where you measure — "
              "tell me more?")
    reading = parse_ranking(answer, METERS_HILTI)
    assert reading.status == "unparseable" and "picks none" in (reading.reason or "")


def test_a_comparison_that_then_prefers_one_is_no_decline():
    answer = ("Here's a side-by-side comparison:\n\n| Spec | Hilti PD-I | Hilti PD-E |\n|---|---|---|\n"
              "| Range | 100 m | 200 m |\n\nFor outdoor work the PD-E is the better buy.")
    assert extract_ranking(answer, METERS_HILTI)[0] == 1


@pytest.mark.parametrize("aside", [
    "Note: the Western Mountaineering Alpinlite is a down quilt, not a sleeping bag.",
    "The Western Mountaineering Alpinlite is useful in summer but not a replacement for a winter bag.",
    "The Western Mountaineering Alpinlite isn't a like-for-like option here.",
    "El Western Mountaineering Alpinlite es totalmente exagerado para ti.",
])
def test_a_product_set_aside_as_another_kind_is_advised_against(aside):
    answer = ("My pick is the **Mountain Hardwear Phantom 0F**. A very close second is the **Snugpak Sleeper "
              f"Expedition**.\n\n{aside}")
    assert extract_ranking(answer, BAGS) == [0, 1]


def test_a_question_heading_over_advice_against_is_no_pick():
    answer = ("### Best overall: Mountain Hardwear Phantom 0F\nWarm and light.\n\n### Runner-up: Snugpak Sleeper "
              "Expedition\nRobust.\n\n### What about the REI Trailbreak 20?\nIt's a fine bag, but it's synthetic "
              "and heavy, so I've left it out of this winter list.")
    assert extract_ranking(answer, BAGS) == [0, 1]


def test_questions_first_then_ill_narrow_it_down_defers():
    answer = ("Happy to help, but the bags you listed range from the $80 REI Trailbreak 20 to the $900 Snugpak "
              "Sleeper Expedition, so I need a bit more information "
              "before I can point you to one:\n\n1. What's your budget?\n2. Summer or winter?\n\nOnce I know that, "
              "I'll narrow it down.")
    assert parse_ranking(answer, BAGS).status == "unparseable"


@pytest.mark.parametrize("decline", [
    "De los que mencionas, ninguno me parece buena compra hoy: el Snugpak y el REI ya no se fabrican.",
    "Aucun ne me semble bon : le Snugpak et le REI sont chers pour ce qu'ils offrent.",
])
def test_declines_in_spanish_and_french(decline):
    answer = f"{decline}\n\nPor un precio similar te recomendaría el **Sea to Summit Ascent** o el **Rab Ascent 700**."
    assert parse_ranking(answer, BAGS).status == "unparseable"


def test_i_would_only_recommend_one_product_excludes_the_ones_discussed():
    answer = ("Here's what reviewers say:\n> \"The Snugpak Sleeper Expedition is bombproof.\" — a review\n\n"
              "For winter, I'd only recommend the **Mountain Hardwear Phantom 0F**: the warmest of the list. The "
              "Snugpak is heavy, and the REI Trailbreak 20 is a summer bag.")
    assert extract_ranking(answer, BAGS) == [0]


def test_only_if_is_a_condition_not_an_exclusive_pick():
    answer = ("- The **Mountain Hardwear Phantom 0F** as the main pick.\n- The **Snugpak Sleeper Expedition** if you "
              "camp in the wet.\n\nOn the Snugpak: I'd only pick it if you like synthetic fill.")
    assert extract_ranking(answer, BAGS) == [0, 1]
