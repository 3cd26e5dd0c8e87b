"""A hostile user against what poise reads before a model is called: catalogs (JSONL, CSV, HTML
folders), their page files, templates, sweep files and report targets. Each test failed before
its fix; nothing here loads a model or reaches a server."""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import pytest

from poise import CatalogError
from poise.catalog import MAX_CATALOG_BYTES, load_catalog
from poise.sweep import MAX_SWEEP_JOBS, load_sweep

from .cliutil import blender_folder, error_line, poise

DEEP = "[" * 100_000 + "]" * 100_000  # deeper than any parser's recursion limit
HUGE_INT = "9" * 5000  # longer than Python's int-from-text limit (4,300 digits)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("POISE_MAX_DOCUMENT_CHARS", raising=False)
    return blender_folder(tmp_path, monkeypatch)


def product(category: str = "blender", brand: str = "Oster", model: str = "Pro", **more: str) -> dict[str, str]:
    return {"category": category, "brand": brand, "model": model, "document": "A page.", **more}


def jsonl(folder: Path, rows: list[dict[str, str]], name: str = "c.jsonl") -> Path:
    path = folder / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def catalog_error(path: Path | str, **kwargs: object) -> str:
    with pytest.raises(CatalogError) as info:
        load_catalog(path, **kwargs)  # type: ignore[arg-type]
    line = info.value.one_line()
    assert "\n" not in line
    return line


# -- 1. parsers that recurse or convert without bound -------------------------------------------------
@pytest.mark.parametrize("line", [DEEP, '{"category": "blender", "brand": "A", "model": "B", "document": ' + DEEP + "}",
                                  '{"category": "blender", "brand": "A", "model": "B", "document": ' + HUGE_INT + "}"],
                         ids=["deep array", "deep value", "huge number"])
def test_a_jsonl_line_nested_too_deeply_or_with_a_huge_number_is_one_line(folder, capsys, line):
    (folder / "c.jsonl").write_text(line + "\n")
    code, out, err = poise(capsys, "catalog", "validate", "c.jsonl")
    assert code == 1 and out == ""
    assert "c.jsonl:1: not valid JSON" in error_line(err)


def test_a_pages_json_ld_nested_too_deeply_is_ignored_like_any_broken_block(tmp_path):
    (tmp_path / "pages" / "blender").mkdir(parents=True)
    for name in ("a", "b"):
        (tmp_path / "pages" / "blender" / f"{name}.html").write_text(
            f'<html><head><script type="application/ld+json">{DEEP}</script></head>'
            f"<body><article><p>The {name} blender crushes ice and makes smoothies every day.</p></article>"
            "</body></html>")
    assert "a.html: cannot tell the product's brand and model" in catalog_error(tmp_path / "pages")


@pytest.mark.parametrize("value", [DEEP, HUGE_INT], ids=["deep array", "huge number"])
def test_a_sweep_file_or_template_nested_too_deeply_or_with_a_huge_number_is_one_line(folder, capsys, value):
    (folder / "s.toml").write_text(f'kind = "natural"\ncategories = ["blender"]\nseeds = [{value}]\n')
    code, out, err = poise(capsys, "sweep", "s.toml", "--dry-run")
    assert code == 1 and out == "" and "is not valid TOML" in error_line(err)
    (folder / "t.toml").write_text(f'system = "x"\nuser = "{{documents}}"\nextra = {value}\n')
    code, out, err = poise(capsys, "recommend", "-c", "blender", "--catalog", "cat.jsonl", "--template", "t.toml",
                           "-m", "openai:x", "--base-url", "http://127.0.0.1:9/v1")
    assert code == 1 and out == "" and "t.toml: not valid TOML" in error_line(err)
    assert not (folder / "poise-runs").exists()


# -- 2. absurd sizes: refused before reading, not a MemoryError ----------------------------------------------
@pytest.mark.parametrize("name", ["c.jsonl", "c.csv", "pages/blender/index.csv"])
def test_a_catalog_file_over_the_size_limit_is_refused_unread(folder, capsys, name):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.truncate(MAX_CATALOG_BYTES + 1)  # sparse: no disk spent
    target = "pages" if name.startswith("pages") else name
    code, out, err = poise(capsys, "catalog", "validate", target)
    line = error_line(err)
    assert code == 1 and out == ""
    assert f"{name}: {MAX_CATALOG_BYTES + 1:,} bytes, too large for a catalog file" in line
    assert f"limit {MAX_CATALOG_BYTES:,}" in line and "split" in line


def test_ten_thousand_products_load_and_a_duplicate_at_the_end_names_both_lines(tmp_path):
    rows = [product(brand=f"Brand {i}", model=f"M{i}") for i in range(10_000)]
    assert len(load_catalog(jsonl(tmp_path, rows)).category("blender").products) == 10_000
    line = catalog_error(jsonl(tmp_path, [*rows, product(brand="BRAND 17", model="m17")]))
    assert "c.jsonl:10001: product 'BRAND 17 m17' already listed in category 'blender' at" in line
    assert "c.jsonl:18" in line


CSV_HEADERS = {
    "a column twice": ("category,brand,model,document,document\nblender,A,X,first,second\nblender,B,Y,d,e\n",
                       "c.csv:1: column 'document' appears twice (columns 4 and 5)"),
    "a nameless column": ("category,brand,model,document,\nblender,A,X,d,\nblender,B,Y,d,\n",
                          "c.csv:1: column 5 of the header has no name"),
    "semicolons": ("category;brand;model;document\nblender;A;X;d\nblender;B;Y;d\n",
                   "c.csv:1: the header reads as one column 'category;brand;model;document'"),
    "tabs": ("category\tbrand\tmodel\tdocument\nblender\tA\tX\td\nblender\tB\tY\td\n",
             "separate the columns with commas"),
}


@pytest.mark.parametrize("text, fragment", CSV_HEADERS.values(), ids=CSV_HEADERS.keys())
def test_a_csv_header_a_spreadsheet_got_wrong_is_named_for_what_it_is(tmp_path, text, fragment):
    (tmp_path / "c.csv").write_text(text)
    assert fragment in catalog_error(tmp_path / "c.csv")


def pages_folder(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "pages" / "blender"
    folder.mkdir(parents=True)
    (folder / "index.csv").write_text("file,brand,model\n" + "".join(f"{n},Brand {n},M\n" for n in names))
    for name in names:
        (folder / name).write_text(f"<html><body><article><p>The {name} blender has a glass jar and seven speeds for "
                                   "every day.</p></article></body></html>")
    return tmp_path / "pages"


def test_html_pages_are_told_by_their_suffix_in_any_case_and_backups_are_not_pages(tmp_path):
    folder = pages_folder(tmp_path, ["a.html", "B.HTML", "c.htm"])
    (folder / "blender" / "a.html~").write_text("<html><body><p>an editor's backup</p></body></html>")
    (folder / "blender" / "notes.htmlx").write_text("not a page")
    products = load_catalog(folder).category("blender").products
    assert [p.brand for p in products] == ["Brand B.HTML", "Brand a.html", "Brand c.htm"]


def test_an_empty_category_folder_is_named_not_dropped(tmp_path):
    folder = pages_folder(tmp_path, ["a.html", "b.html"])
    (folder / "kettle").mkdir()
    assert "kettle: no pages (*.html or *.htm) in the category folder" in catalog_error(folder)


# -- 3. names that differ only by case or Unicode form ---------------------------------------------------------
NFD_CAFE = unicodedata.normalize("NFD", "Café")


@pytest.mark.parametrize("first, second", [("Café", NFD_CAFE), ("Straße", "STRASSE"), ("ＡＢＣ", "ABC")],
                         ids=["NFC and NFD", "sharp s and SS", "full-width"])
def test_products_whose_names_differ_only_by_unicode_form_are_duplicates(tmp_path, first, second):
    line = catalog_error(jsonl(tmp_path, [product(brand=first), product(brand=second), product(brand="Ninja")]))
    assert "c.jsonl:2: product" in line and "already listed in category 'blender' at" in line and "c.jsonl:1" in line


@pytest.mark.parametrize("second", ["BLENDER", "blender".replace("b", "ｂ")], ids=["case", "full-width"])
def test_two_categories_whose_names_differ_only_by_case_or_form_are_refused(tmp_path, second):
    rows = [product(), product(brand="Ninja"), product(second, "Vitamix"), product(second, "Breville")]
    line = catalog_error(jsonl(tmp_path, rows))
    assert f"c.jsonl:3: category {second!r} differs only in case or Unicode form from 'blender' at" in line
    assert "c.jsonl:1" in line and "spell each category the same way" in line


def test_a_category_is_found_by_a_name_in_another_unicode_form(tmp_path):
    path = jsonl(tmp_path, [product(category="Café", brand=b) for b in ("Oster", "Ninja")])
    assert load_catalog(path).category(NFD_CAFE).name == "Café"


# -- 4. special files and empty paths ------------------------------------------------------------------------------
def test_a_pipe_as_a_document_file_or_page_is_named_for_what_it_is(tmp_path):
    (tmp_path / "a.txt").write_text("The Oster Pro blends.")
    os.mkfifo(tmp_path / "pipe.txt")
    path = tmp_path / "c.csv"
    path.write_text("category,brand,model,document_file\nblender,Oster,Pro,a.txt\nblender,Ninja,Foodi,pipe.txt\n")
    assert "field 'document_file': " in (line := catalog_error(path)) and "pipe.txt: not a regular file" in line
    (tmp_path / "pages" / "blender").mkdir(parents=True)
    os.mkfifo(tmp_path / "pages" / "blender" / "a.html")
    assert "a.html: not a regular file" in catalog_error(tmp_path / "pages")


def test_an_empty_catalog_or_report_path_is_refused_not_taken_for_here(folder, capsys):
    (folder / "blender").mkdir()  # the working folder would read as an HTML catalog
    assert "empty" in catalog_error("")
    code, out, err = poise(capsys, "catalog", "list", "--catalog", "")
    assert code == 1 and out == "" and "--catalog" in error_line(err)
    code, out, err = poise(capsys, "report", "--out", "", "--store", str(folder / "none"))
    assert code == 1 and out == "" and "--out" in error_line(err)
    assert not list(folder.glob("poise-report-*"))
    (folder / "s.toml").write_text('kind = "natural"\ncategories = ["blender"]\n[options]\ncatalog = ""\n')
    code, out, err = poise(capsys, "sweep", "s.toml", "--dry-run")
    assert code == 1 and out == "" and "s.toml: options.catalog: " in error_line(err)


# -- 5. sweep files: too many jobs, and keys a user gets wrong ---------------------------------------------------
def test_a_sweep_over_the_job_limit_is_one_line_before_any_job_is_built(folder, capsys):
    seeds = ", ".join(str(i) for i in range(1000))
    children = ", ".join(str(i) for i in range(1, 21))
    (folder / "s.toml").write_text(f'kind = "attack"\ncategories = ["blender"]\nmodels = ["openai:x"]\n'
                                   f"seeds = [{seeds}]\n[params.strategies]\nchildren = [{children}]\n")
    code, out, err = poise(capsys, "sweep", "s.toml", "--dry-run", "--store", str(folder / "store"))
    line = error_line(err)
    assert code == 1 and out == "" and not (folder / "store").exists()
    assert "s.toml: 20,000 jobs" in line and f"limit of {MAX_SWEEP_JOBS:,}" in line
    assert "seeds 1,000" in line and "params.strategies.children 20" in line and "split" in line


def test_the_job_count_checked_is_the_number_of_jobs_the_grid_makes(folder):
    (folder / "s.toml").write_text('kind = "attack"\ncategories = ["blender", "kettle"]\n'
                                   'methods = ["strategies", "single"]\ndefenses = ["none", "sandwich"]\n'
                                   'seeds = [0, 1]\n'
                                   "[params.strategies]\nchildren = [2, 3]\nparents = [1, 2]\n")
    sweep = load_sweep(folder / "s.toml")
    assert sweep.most_jobs() == len(sweep.jobs()) == 2 * 2 * 2 * (2 * 2 + 1)


KEY_HINTS = {
    "singular axis": ('model = ["local"]\n', "unknown key 'model'", "did you mean 'models'"),
    "singular axis in options": ('[options]\nseed = 3\n', "'options.seed'", "'seeds' is an axis"),
    "axis in options": ('[options]\ntemplates = ["t.toml"]\n', "'options.templates'", "'templates' is an axis"),
    "option at the top": ("budget = 3\n", "unknown key 'budget'", "under [options]"),
    "dashes": ("[options]\nallow-outside-files = true\n", "'options.allow-outside-files'",
               "did you mean 'allow_outside_files'"),
    "misspelled option": ("[options]\ntrails = 3\n", "'options.trails'", "did you mean 'trials'"),
    "store": ('[options]\nstore = "runs"\n', "'options.store'", "--store"),
    "base url": ('[options]\nbase_url = "http://x/v1"\n', "'options.base_url'", "--base-url"),
    "dry run": ("[options]\ndry_run = true\n", "'options.dry_run'", "--dry-run"),
    "json": ("[options]\njson = true\n", "'options.json'", "--json"),
}


@pytest.mark.parametrize("body, key, hint", KEY_HINTS.values(), ids=KEY_HINTS.keys())
def test_an_unknown_sweep_key_names_the_file_and_what_to_write(folder, capsys, body, key, hint):
    (folder / "s.toml").write_text('kind = "natural"\ncategories = ["blender"]\n' + body)
    code, out, err = poise(capsys, "sweep", "s.toml", "--dry-run")
    line = error_line(err)
    assert code == 1 and out == "" and "sweep file s.toml" in line and key in line and hint in line, line


SWEEP_HEAD = 'kind = "attack"\ncategories = ["blender"]\nmodels = ["openai:x"]\n'
IN_FILE_TERMS = {
    "catalog outside its folder": ('[options]\ncatalog = "cat/c.csv"\n',
                                   ["resolves outside", "allow_outside_files = true (under [options])"]),
    "missing catalog": ('[options]\ncatalog = "nothere.csv"\n', ["no such file", "catalog (under [options])"]),
    "attacker unused": ('[options]\ncatalog = "cat.jsonl"\nattacker = "local"\n',
                        ["drop attacker (under [options]), or choose methods tap or rewrite"]),
    "missing template": ('templates = ["nothere.toml"]\n[options]\ncatalog = "cat.jsonl"\n',
                         ["no such template file", "check the path given with templates"]),
}


@pytest.mark.parametrize("body, fragments", IN_FILE_TERMS.values(), ids=IN_FILE_TERMS.keys())
def test_a_bad_value_in_a_sweep_file_is_told_in_the_files_terms_not_the_commands_flags(folder, capsys, body,
                                                                                       fragments):
    (folder / "cat").mkdir()
    (folder / "cat" / "c.csv").write_text("category,brand,model,document_file\nblender,A,X,../cat.jsonl\n")
    (folder / "s.toml").write_text(SWEEP_HEAD + body)
    code, out, err = poise(capsys, "sweep", "s.toml", "--dry-run", "--base-url", "http://127.0.0.1:9/v1")
    line = error_line(err)
    assert code == 1 and out == "" and line.startswith("poise: error: sweep file s.toml: job 'attack / blender")
    assert all(f in line for f in fragments) and " --" not in line, line



def test_a_folder_in_the_databases_place_is_one_line_for_every_command(folder, capsys):
    """`poise runs` said "No results store ... yet" and exited 0 when poise.sqlite was a folder:
    the store is there but broken, which is not the same as no store."""
    store = folder / "store"
    (store / "poise.sqlite").mkdir(parents=True)
    for args in (["runs"], ["runs", "--json"], ["report"], ["reread", "some-run"]):
        code, out, err = poise(capsys, *args, "--store", str(store))
        assert code != 0 and out == "", (args, out)
        assert "poise.sqlite is not a regular file" in error_line(err), (args, err)
    code, out, _ = poise(capsys, "runs", "--store", str(folder / "none"))  # no store at all: still an empty list
    assert code == 0 and "No results store" in out
