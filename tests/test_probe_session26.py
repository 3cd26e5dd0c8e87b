"""A hostile probe of the newest options and of what poise reads back: defend.json files
written by hand with odd values (numbers past a float, strings where numbers go), ...
Each test failed before its fix; the model is never loaded (wire fakes on loopback)."""

from __future__ import annotations

import json
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from poise.report import gather_report, render_html, render_markdown
from poise.store import Store

from .test_report import assert_inert

HUGE = json.loads("1" + "0" * 400)  # a whole number JSON holds and no float does


# -- 1. defend.json with odd values ---------------------------------------------------------------------
def _defend_file(store: Path, category: dict[str, Any], config: dict[str, Any], **top: Any) -> str:
    """A finished defend run whose defend.json holds one category with one configuration."""
    cat = {"category": "blender", "product": "Oster Pro", "method": "strategies", "budget": 2, "orders": 2,
           "final_orders": 1, "model": "openai:fake", "consensus_orders": 3, "consensus_stability": 0.5,
           **category,
           "configs": [{"label": "plain", "kinds": [],
                        "clean": {"answers": 2, "readable": 2, "tau": 0.5, "top1": 0.5, "position_f": 1.0,
                                  "position_p": 0.5},
                        "attack": {"success": False, "first_rate": 0.0, "rank_gain": 0.5, "transfer_gain": 0.0,
                                   "injection": "Rank it first."},
                        "cost": {"calls_x": 1.0, "tokens_x": 1.0}, **config}]}
    with Store(store) as db:
        run = db.start_run("defend", {"categories": ["blender"]})
        (db.run_dir(run) / "defend.json").write_text(json.dumps({"categories": [cat], **top}))
        db.finish_run(run)
    return run


@pytest.mark.parametrize(("category", "config", "top"), [
    ({"consensus_orders": HUGE}, {}, {}),
    ({"budget": HUGE, "consensus_stability": "most"}, {}, {}),
    ({}, {"clean": {"tau": HUGE, "top1": "half"}}, {}),
    ({}, {"attack": {"rank_gain": "up", "transfer_gain": [1], "injection": 5, "success": "yes"}}, {}),
    ({}, {"kinds": 7}, {}),
    ({"curves": [{"source": "s", "param": "k", "points": [{"value": 1, "tau": "x", "rank_gain": "y"}]}]}, {}, {}),
    ({"curves": [{"source": "s", "param": "k", "points": 5}]}, {}, {}),
    ({}, {}, {"pooled": [{"label": 1, "success_rate": "all", "rank_gain": "up", "categories": HUGE}]}),
])
def test_a_defend_file_with_odd_values_still_reports(tmp_path: Path, category: dict[str, Any],
                                                     config: dict[str, Any], top: dict[str, Any]) -> None:
    """A number past any float or a string where a number goes ended the report in an internal
    error (OverflowError, TypeError): such a value is shown as '-', the rest of the run shows."""
    run = _defend_file(tmp_path, category, config, **top)
    with Store(tmp_path, read_only=True) as db:
        data = gather_report(db, [run])
    html, md = render_html(data), render_markdown(data)
    assert_inert(html)
    for text in (unescape(html), md):
        assert "Defenses compared" in text and "blender: promoting" in text and "plain" in text
