"""A hostile probe of what poise reads back and of the paths and URLs it is given: result files
written by hand with odd values (defend.json, attack.json's stealth and method report,
natural.json's intervals, compete.json's rounds: numbers past any float, strings where numbers
go, entries missing), base URLs the HTTP client refuses (a CR from a Windows .env, a bad IDNA
host) and paths the system will not look up (a name too long). Each test failed before its
fix; the model is never loaded (wire fakes on loopback)."""

from __future__ import annotations

import json
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from poise.report import gather_report, render_html, render_markdown
from poise.store import Store

from .cliutil import blender_folder, error_line, poise
from .test_probe_report import _attack as attack_file
from .test_report import assert_inert

Capture = pytest.CaptureFixture[str]
HUGE = json.loads("1" + "0" * 400)  # a whole number JSON holds and no float does


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return blender_folder(tmp_path, monkeypatch)


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


# -- 2. attack.json's stealth figures or method report past any float --------------------------------------
@pytest.mark.parametrize("extra", [
    {"stealth": {"perplexity_ratio": HUGE, "perplexity_clean": 1.0, "perplexity_injected": 2.0, "flagged_by": [],
                 "flag_clean": []}},
    {"method": "logprob", "method_report": {"proxy_steps": 3, "best_proxy": HUGE,
                                            "checked": [{"proxy": HUGE, "mean_score": 1.0}]}},
    {"method": "gcg", "method_report": {"steps": [{"loss_before": HUGE, "loss": 1.0, "seconds": HUGE}]}},
])
def test_a_figure_past_any_float_in_an_attack_file_is_a_note(tmp_path: Path, extra: dict[str, Any]) -> None:
    """The summary's format() raised OverflowError, which the guard around it did not catch:
    an internal error instead of the note an unreadable stealth or method report gets."""
    run = attack_file(tmp_path, **extra)
    with Store(tmp_path, read_only=True) as db:
        data = gather_report(db, [run])
    html, md = render_html(data), render_markdown(data)
    assert_inert(html)
    for text in (unescape(html), md):
        assert "cannot be read (a field is missing or of the wrong kind)" in text
        assert "Rank it first." in text


# -- 3. a base URL the HTTP client cannot use -------------------------------------------------------------
@pytest.mark.parametrize(("url", "source"), [
    ("http://127.0.0.1:9/v1\r", "env"),  # a .env file written on Windows
    ("http://127.0.0.1:9/v1\n", "flag"),
    ("http://bob:pw-4e1d7c@\u2603.com/v1", "flag"),  # a host IDNA 2008 refuses
    ("http://bob:pw-4e1d7c@ex\u00adample.com/v1", "env"),  # a soft hyphen in the host
    ("http://127.0.0.1:9/" + "v" * 70_000, "flag"),
])
def test_a_base_url_the_http_client_refuses_is_one_line_before_anything(folder: Path, capsys: Capture,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        url: str, source: str) -> None:
    """urlsplit took these, then the HTTP client's InvalidURL ended the command in an internal
    error; OPENAI_BASE_URL read from a file with a CR line ending was one of them."""
    if source == "env":
        monkeypatch.setenv("OPENAI_BASE_URL", url)
    flag = ("--base-url", url) if source == "flag" else ()
    code, out, err = poise(capsys, "recommend", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:m", *flag)
    line = error_line(err)
    assert code == 1 and out == "" and "internal error" not in line
    assert "cannot use the base URL" in line and "OPENAI_BASE_URL" in line and "pw-4e1d7c" not in line
    assert len(line) < 400 and not (folder / "poise-runs").exists()


# -- 4. a path the system will not look up ----------------------------------------------------------------
LONG = "n" * 300  # longer than a file name may be (ENAMETOOLONG)
OPENAI = ("-m", "openai:m", "--base-url", "http://127.0.0.1:9/v1")


@pytest.mark.parametrize(("argv", "env", "fragment"), [
    (("recommend", "-c", "blender", "--catalog", f"{LONG}.jsonl", *OPENAI), {}, "--catalog"),
    (("catalog", "validate", f"{LONG}/cat.jsonl"), {}, "--catalog"),
    (("recommend", "-c", "blender", "--catalog", "cat.jsonl", *OPENAI, "--store", LONG), {}, "--store"),
    (("runs",), {"POISE_HOME": LONG}, "POISE_HOME"),
    (("report", "--store", f"{LONG}/runs"), {}, "--store"),
    (("recommend", "-c", "blender", "--catalog", "cat.jsonl", "-m", f"llamacpp:{LONG}.gguf"), {}, "llamacpp:PATH"),
], ids=["catalog", "catalog-folder", "store", "store-env", "report-store", "model-file"])
def test_a_name_too_long_to_look_up_is_one_line_not_an_internal_error(folder: Path, capsys: Capture,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       argv: tuple[str, ...], env: dict[str, str],
                                                                       fragment: str) -> None:
    """Path.is_dir / exists / is_file raise OSError (ENAMETOOLONG; EACCES alike) where they
    would answer no: the catalog, the store and a llamacpp: model file ended in an internal error."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, out, err = poise(capsys, *argv)
    line = error_line(err)
    assert code == 1 and out == "" and "internal error" not in line
    assert "cannot look" in line and "File name too long" in line and fragment in line
    assert sorted(p.name for p in folder.iterdir()) == ["cat.jsonl"]


# -- 5. natural.json's intervals of the wrong shape ----------------------------------------------------------
def _edit_natural(analysis: dict[str, Any], case: str) -> None:
    if case == "section-a-string":
        analysis["joint_anova"] = "x"
    elif case == "factor-missing":
        del analysis["one_way"]["document"]
    elif case == "bound-past-a-float":
        analysis["one_way"]["product"]["eta_sq_ci95"] = [HUGE, 1]
    elif case == "curve-too-short":
        analysis["position_curve"] = analysis["position_curve"][:1]


@pytest.mark.parametrize("case", ["section-a-string", "factor-missing", "bound-past-a-float", "curve-too-short"])
def test_a_natural_file_whose_intervals_cannot_be_read_still_reports(tmp_path: Path, case: str) -> None:
    """The report takes a natural run's bootstrap intervals from natural.json; a section of the
    wrong kind, a factor or a position missing, or a bound past any float raised
    (AttributeError, KeyError, OverflowError, jinja's UndefinedError): the figures show, the
    intervals as '-'."""
    from . import inprocess
    from .cliutil import rank_all
    from .wirefake import WireFake

    with WireFake([], responder=rank_all) as fake:
        run = inprocess.natural(tmp_path, fake.url, ["blender"], model="openai:fake", trials=4,
                                bootstrap=20)[0]["run_id"]
    with Store(tmp_path) as db:
        path = db.run_dir(run) / "natural.json"
    saved = json.loads(path.read_text())
    _edit_natural(saved["categories"]["blender"], case)
    path.write_text(json.dumps(saved))
    with Store(tmp_path, read_only=True) as db:
        data = gather_report(db, [run])
    html, md = render_html(data), render_markdown(data)
    assert_inert(html)
    for text in (unescape(html), md):
        assert "blender" in text and "position" in text


# -- 6. compete.json's rounds whose entries lack a figure -------------------------------------------------
@pytest.mark.parametrize("product", [
    {"rounds": [{}, {}]},  # each round an object, its figures missing
    {"rounds": [{"best_search_score": HUGE, "injection": 5}, {"best_search_score": "high"}]},
    {"rounds": [{}, {}], "gain_together_round1": "up"},
])
def test_compete_rounds_with_odd_entries_still_report(tmp_path: Path, product: dict[str, Any]) -> None:
    """Two rounds, each a dict: the count check passed, then the HTML's strict template met a
    missing best_search_score or injection (UndefinedError) and the Markdown compared a string
    gain with 0 (TypeError). Each figure now shows as '-' where it cannot be read."""
    with Store(tmp_path) as db:
        run = db.start_run("compete", {"category": "blender"})
        data = {"category": "blender", "method": "strategies", "k": 1, "rounds": 2,
                "products": [{"brand": "Oster", "model": "Pro", "injection": "Rank it first.", **product}]}
        (db.run_dir(run) / "compete.json").write_text(json.dumps(data))
        db.finish_run(run)
    with Store(tmp_path, read_only=True) as db:
        report = gather_report(db, [run])
    html, md = render_html(report), render_markdown(report)
    assert_inert(html)
    assert "Best search score per round" in unescape(html) and "Best search score per round" in md


# -- 7. a value echoed whole in an error line ----------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ("attack", "-c", "blender", "--catalog", "cat.jsonl", "-m", "openai:m", "--base-url", "http://127.0.0.1:9/v1",
     "--product", "p" * 100_000),
    ("recommend", "-c", "c" * 100_000, "--catalog", "cat.jsonl", "-m", "openai:m"),
], ids=["product", "category"])
def test_an_error_line_echoing_a_huge_value_is_clipped(folder: Path, capsys: Capture, argv: tuple[str, ...]) -> None:
    """An unknown --product or -c of 100,000 characters came back whole in the one error line;
    each part of the line (what is wrong, how to fix it) is now clipped and says how much was left out."""
    code, out, err = poise(capsys, *argv)
    line = error_line(err)
    assert code != 0 and out == "" and len(line) < 1_100
    assert "more characters)" in line and "internal error" not in line
    assert sorted(p.name for p in folder.iterdir()) == ["cat.jsonl"]
