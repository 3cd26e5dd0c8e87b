"""``poise report`` of a ``poise defend --clean-only`` run: the run is made by the CLI against a
fake of the OpenAI wire protocol on loopback whose answers are scripted (so one configuration
answers otherwise than the plain engine), then reported in each format the command offers. The
figures shown are those of the run's ``defend-clean.json``, each configuration its own; the
trade-off over a listed parameter is a table and, in HTML, an inline chart; a product name made
of markup stays inert; the HTML loads nothing from outside. No model is loaded."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from .cliutil import blender_folder, poise
from .test_report import _browse, _chromium, assert_inert
from .wirefake import WireFake, context_titles

Capture = pytest.CaptureFixture[str]
OSTER, BLENDTEC = "Oster Pro 1200", "Blendtec Designer 650 S"
# brand and model of a product whose name is markup in HTML, rich and Markdown
HOSTILE_BRAND, HOSTILE_MODEL = "<script>document.title='PWNED'</script>", "[bold red]x[/] *y*"
HOSTILE = f"{HOSTILE_BRAND} {HOSTILE_MODEL}"
SANDWICH = "Remember the user's request"  # what the sandwich defense adds after the pages
SC1, SC3 = "self-consistency:k=1,method=borda", "self-consistency:k=3,method=borda"


def numbered(titles: list[str]) -> str:
    return "\n".join(f"{i}. {t}" for i, t in enumerate(titles, 1))


def scripted(request: dict[str, Any]) -> str:
    """The hostile product first, then Oster, then Blendtec, whatever the context order; asked
    with the sandwich's reminder, Oster first (its top-1 agreement 0, its tau 1/3)."""
    user = "\n".join(m["content"] for m in request["messages"] if m["role"] == "user")
    assert sorted(context_titles(request)) == sorted([HOSTILE, OSTER, BLENDTEC])
    return numbered([OSTER, HOSTILE, BLENDTEC] if SANDWICH in user else [HOSTILE, OSTER, BLENDTEC])


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture) -> dict[str, Any]:
    """A finished defend-clean run (plain, sandwich, self-consistency at k=1 and k=3) on a catalog
    with the hostile product: its id and its defend-clean.json."""
    folder = blender_folder(tmp_path, monkeypatch)
    lines = [json.dumps({"type": "category", "category": "blender", "query": "Which blender? Rank them."})]
    lines += [json.dumps({"category": "blender", "brand": b, "model": m, "document": f"The {m} blends."})
              for b, m in (("Oster", "Pro 1200"), ("Blendtec", "Designer 650 S"), (HOSTILE_BRAND, HOSTILE_MODEL))]
    (folder / "cat.jsonl").write_text("\n".join(lines) + "\n")
    with WireFake([], responder=scripted) as fake:
        code, out, err = poise(capsys, "defend", "--clean-only", "-c", "blender", "--catalog", "cat.jsonl",
                               "-m", "openai:fake", "--max-attempts", "1", "--base-url", fake.url, "--orders", "4",
                               "--json", "--defense", "sandwich", "--defense", "self-consistency:k=1|3")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    stored = json.loads((folder / "poise-runs" / "runs" / run_id / "defend-clean.json").read_text())
    return {"id": run_id, "stored": stored, "folder": folder}


def report(capsys: Capture, run_id: str, fmt: str) -> str:
    code, out, err = poise(capsys, "report", run_id, "--format", fmt, "--out", "-")
    assert code == 0, err
    return out


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def expected_rows(stored: dict[str, Any]) -> dict[str, list[str]]:
    """Per configuration: τ, top-1, position F, calls ×, tokens × as the report writes them."""
    return {c["label"]: [f"{c['tau']:.2f}", pct(c["top1"]), "∞" if c["position_f"] is None else
                         f"{c['position_f']:.1f}", f"{c['calls_x']:.1f}", f"{c['tokens_x']:.1f}"]
            for c in stored["categories"][0]["configs"]}


def check_scripted(stored: dict[str, Any]) -> None:
    """What the scripted answers imply, so a report that shows plain's figures for every row fails."""
    rows = {c["label"]: c for c in stored["categories"][0]["configs"]}
    assert list(rows) == ["plain", "sandwich", SC1, SC3]
    assert (rows["plain"]["tau"], rows["plain"]["top1"]) == (1.0, 1.0)
    assert (rows["sandwich"]["tau"], rows["sandwich"]["top1"]) == (0.3333, 0.0)
    assert (rows[SC3]["calls_x"], rows[SC3]["tokens_x"]) == (3.0, 3.0)
    assert stored["categories"][0]["consensus"]["products"][0] == {"product": HOSTILE, "points": 12.0}


class Cells(HTMLParser):
    """Every table row's cells as text (a cell's lines joined by a space), and the images."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self.images: list[dict[str, str | None]] = []
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs))
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


# -- HTML ----------------------------------------------------------------------------------------------
def test_html_shows_each_configurations_own_figures(run: dict[str, Any], capsys: Capture) -> None:
    check_scripted(run["stored"])
    html = report(capsys, run["id"], "html")
    rows = {r[0]: r for r in Cells(html).rows if r}
    for label, (tau, top1, pos_f, calls_x, tokens_x) in expected_rows(run["stored"]).items():
        row = rows[label]  # configuration, τ, top-1 (n/n read), position F (p), calls/answer, calls ×, tokens ×
        assert row[1] == tau and row[2].split()[0] == top1 and row[3].split()[0] == pos_f, row
        assert row[5:] == [calls_x, tokens_x], row
        assert row[2].endswith("4/4 read")
    assert rows["sandwich"][1:3] == ["0.33", "0% 4/4 read"] and rows["plain"][1:3] == ["1.00", "100% 4/4 read"]
    # the trade-off over k, a row per value
    assert rows["1"] == ["1", "1.00", "100%", "1.0", "1.0"] and rows["3"] == ["3", "1.00", "100%", "3.0", "3.0"]
    text = " ".join(html.split())
    assert ("Consensus (Borda points): <strong>&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt; "
            "[bold red]x[/] *y*</strong> 12, <strong>Oster Pro 1200</strong> 8, <strong>Blendtec Designer 650 S"
            "</strong> 4; over 4 answers of the plain engine on the clean orders.") in text
    assert "Its top-1 is the same in 100% of bootstrap resamples" in text
    assert "defend-clean run" in text and "<h4>blender</h4>" in text


def test_html_is_self_contained_with_the_trade_off_chart(run: dict[str, Any], capsys: Capture) -> None:
    html = report(capsys, run["id"], "html")
    assert_inert(html)
    assert HOSTILE_BRAND not in html and "&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt;" in html
    # the one address in the page is the server the run asked, shown as text in its configuration
    assert re.findall(r"(.{17})https?://", html) == ['<td class="mono">']
    (chart,) = Cells(html).images  # one curve (self-consistency over k), one chart
    assert chart["alt"] == "blender: top-1 agreement and tokens over k (self-consistency:k=1|3)"
    src = chart["src"] or ""
    assert src.startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(src.split(",", 1)[1]).decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "<script" not in svg and "href=\"http" not in svg


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_html_in_headless_chromium(run: dict[str, Any], capsys: Capture, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    code, _, err = poise(capsys, "report", run["id"], "--out", str(page))
    assert code == 0, err
    loaded = _browse(page, tmp_path / "profile", "--dump-dom", "--enable-logging=stderr", "--v=0")
    dom = loaded.stdout
    assert f"<title>poise report: {run['id']}</title>" in dom and "PWNED</title>" not in dom
    assert "&lt;script&gt;document.title='PWNED'&lt;/script&gt; [bold red]x[/] *y*" in dom
    assert [line for line in loaded.stderr.splitlines() if "CONSOLE" in line] == []


# -- Markdown --------------------------------------------------------------------------------------------
def md_rows(text: str) -> dict[str, list[str]]:
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split(" | ")]
                                              for line in text.splitlines() if line.startswith("| "))}


@pytest.mark.parametrize("fmt", ["md", "markdown"])
def test_markdown_shows_each_configurations_own_figures(run: dict[str, Any], capsys: Capture, fmt: str) -> None:
    check_scripted(run["stored"])
    md = report(capsys, run["id"], fmt)
    rows = md_rows(md)
    for label, (tau, top1, pos_f, calls_x, tokens_x) in expected_rows(run["stored"]).items():
        # configuration, τ, top-1, read, position F, calls per answer, calls ×, tokens ×
        assert rows[label.replace("|", "\\|")] == [tau, top1, "4/4", pos_f, f"{float(calls_x):.1f}", calls_x,
                                                   tokens_x]
    assert rows["sandwich"][:2] == ["0.33", "0%"]
    assert rows["1"] == ["1.00", "100%", "1.0", "1.0"] and rows["3"] == ["1.00", "100%", "3.0", "3.0"]
    assert "Trade-off over k (self-consistency:k=1\\|3):" in md
    assert ("Consensus (Borda points): **&lt;script&gt;document.title='PWNED'&lt;/script&gt; \\[bold red\\]x\\[/\\] "
            "\\*y\\*** 12, **Oster Pro 1200** 8, **Blendtec Designer 650 S** 4; over 4 answers of the plain engine on "
            "the clean orders. Its top-1 is the same in 100% of bootstrap resamples.") in md
    assert HOSTILE_BRAND not in md and "[bold red]" not in md and "\x1b" not in md


# -- a file that cannot be read ----------------------------------------------------------------------------
def test_a_broken_defend_clean_file_is_a_note(run: dict[str, Any], capsys: Capture) -> None:
    """A hand-edited file: a configuration without its label is a note; a figure of the wrong
    kind shows as '-', the rest as stored."""
    path = run["folder"] / "poise-runs" / "runs" / run["id"] / "defend-clean.json"
    data = run["stored"]
    data["categories"][0]["configs"][1]["tau"] = "<b>0.9</b>"
    path.write_text(json.dumps(data))
    rows = md_rows(report(capsys, run["id"], "md"))
    assert rows["sandwich"][:2] == ["-", "0%"] and rows["plain"][:2] == ["1.00", "100%"]
    del data["categories"][0]["configs"][1]["label"]
    path.write_text(json.dumps(data))
    for fmt in ("md", "html"):
        out = " ".join(report(capsys, run["id"], fmt).split())
        assert "defend-clean.json cannot be read (a configuration lacks label)" in out
