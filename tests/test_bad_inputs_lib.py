"""Bad inputs at the library level: hostile and careless catalogs, templates and attack
parameters. Each case asserts the exact error class and one line naming what is wrong."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from poise import CatalogError, PoiseError, TemplateError
from poise.attacks import AttackParameterError, Budget, get_method, run_attack
from poise.catalog import load_catalog
from poise.engine import PromptTemplate

OUTSIDE_TEXT = "root:x:0:0:the file outside the catalog"
BIG = 200_001


def assert_one_line(error: PoiseError, *fragments: str) -> None:
    line = error.one_line()
    assert "\n" not in line and "\r" not in line and "Traceback" not in line
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or 0x202A <= ord(c) <= 0x202E for c in line), repr(line)
    for fragment in fragments:
        assert fragment in line, line
    assert OUTSIDE_TEXT not in line


# -- catalogs ------------------------------------------------------------------------------------
def csv_file(folder: Path, document_file: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.txt").write_text("A fine blender with a glass jar.")
    path = folder / "c.csv"
    path.write_text(f"category,brand,model,document_file\nblender,Oster,Pro,a.txt\nblender,Ninja,Foodi,{document_file}\n"
                    + extra)
    return path


def outside(tmp: Path) -> Path:
    out = tmp / "outside"
    out.mkdir(exist_ok=True)
    (out / "secret.txt").write_text(OUTSIDE_TEXT)
    return out


def jsonl(tmp: Path, *rows: dict) -> Path:
    base = [{"category": "blender", "brand": "Oster", "model": "Pro", "document": "A glass jar."},
            {"category": "blender", "brand": "Ninja", "model": "Foodi", "document": "Crushes ice."}]
    path = tmp / "c.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [*base, *rows]) + "\n")
    return path


def product(**fields: str) -> dict:
    return {"category": "blender", "brand": "Vitamix", "model": "E310", "document": "Strong.", **fields}


def traversal(tmp: Path) -> Path:
    outside(tmp)
    return csv_file(tmp / "cat", "../outside/secret.txt")


def traversal_nested(tmp: Path) -> Path:
    outside(tmp)
    (tmp / "cat" / "sub").mkdir(parents=True)
    return csv_file(tmp / "cat", "sub/../../outside/secret.txt")


def absolute_outside(tmp: Path) -> Path:
    return csv_file(tmp / "cat", str(outside(tmp) / "secret.txt"))


def absolute_etc(tmp: Path) -> Path:
    return csv_file(tmp / "cat", "/etc/passwd")


def absolute_inside(tmp: Path) -> Path:
    return csv_file(tmp / "cat", str(tmp / "cat" / "a.txt"))


def symlink_file(tmp: Path) -> Path:
    (tmp / "cat").mkdir()
    os.symlink(outside(tmp) / "secret.txt", tmp / "cat" / "link.txt")
    return csv_file(tmp / "cat", "link.txt")


def symlink_folder(tmp: Path) -> Path:
    (tmp / "cat").mkdir()
    os.symlink(outside(tmp), tmp / "cat" / "docs")
    return csv_file(tmp / "cat", "docs/secret.txt")


def html_page_symlink(tmp: Path) -> Path:
    folder = tmp / "pages" / "blender"
    folder.mkdir(parents=True)
    (outside(tmp) / "page.html").write_text(f"<html><body><p>{OUTSIDE_TEXT}</p></body></html>")
    os.symlink(tmp / "outside" / "page.html", folder / "a.html")
    (folder / "index.csv").write_text("file,brand,model\na.html,Oster,Pro\n")
    return tmp / "pages"


def html_category_symlink(tmp: Path) -> Path:
    (tmp / "pages").mkdir()
    os.symlink(outside(tmp), tmp / "pages" / "blender")
    return tmp / "pages"


def document_is_a_folder(tmp: Path) -> Path:
    (tmp / "cat" / "docs").mkdir(parents=True)
    return csv_file(tmp / "cat", "docs")


def huge_jsonl(tmp: Path) -> Path:
    return jsonl(tmp, product(document="w" * BIG))


def huge_csv_inline(size: int) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        path = tmp / "c.csv"
        path.write_text(f"category,brand,model,document\nblender,Oster,Pro,ok\nblender,Ninja,Foodi,{'w' * size}\n")
        return path
    return build


def huge_document_file(tmp: Path) -> Path:
    path = csv_file(tmp / "cat", "big.txt")
    (tmp / "cat" / "big.txt").write_text("w" * (4 * BIG))
    return path


def huge_html_page(tmp: Path) -> Path:
    folder = tmp / "pages" / "blender"
    folder.mkdir(parents=True)
    (folder / "a.html").write_text("<html><body>" + "<p>w</p>" * (2 * BIG) + "</body></html>")
    (folder / "index.csv").write_text("file,brand,model\na.html,Oster,Pro\n")
    return tmp / "pages"


def names_with(field: str, char: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        return jsonl(tmp, product(**{field: f"Vita{char}mix"}))
    return build


def csv_name_with(char: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        path = tmp / "c.csv"
        path.write_text(f"category,brand,model,document\nblender,Oster,Pro,ok\nblender,Nin{char}ja,Foodi,ok\n")
        return path
    return build


def query_with_bidi(tmp: Path) -> Path:
    return jsonl(tmp, {"type": "category", "category": "blender", "query": "Best \u202eblender?"})


def url_with_control(tmp: Path) -> Path:
    return jsonl(tmp, product(url="https://shop.example/\x1b[31mred"))


def unclosed_quote(tmp: Path) -> Path:
    path = tmp / "c.csv"
    path.write_text('category,brand,model,document\nblender,Oster,Pro,ok\nblender,Ninja,Foodi,"never closed\n'
                    "blender,Vitamix,E310,more\n")
    return path


def unclosed_quote_after_multiline(tmp: Path) -> Path:
    path = tmp / "c.csv"
    path.write_text('category,brand,model,document\nblender,Oster,Pro,"two\nlines ""quoted"""\n'
                    'blender,Ninja,Foodi,ok\nblender,Vitamix,E310,"open\nand open\n')
    return path


def stray_quote(tmp: Path) -> Path:
    path = tmp / "c.csv"
    path.write_text('category,brand,model,document\nblender,Oster,Pro,"quoted" then not\nblender,Ninja,Foodi,ok\n')
    return path


def index_unclosed_quote(tmp: Path) -> Path:
    folder = tmp / "pages" / "blender"
    folder.mkdir(parents=True)
    (folder / "index.csv").write_text('file,brand,model\na.html,"Oster,Pro\n')
    return tmp / "pages"


CATALOG_CASES = {
    "traversal": (traversal, ["c.csv:3", "field 'document_file'", "'../outside/secret.txt'", "outside the catalog"]),
    "traversal through a subfolder": (traversal_nested, ["c.csv:3", "resolves outside the catalog's folder"]),
    "absolute path outside": (absolute_outside, ["c.csv:3", "field 'document_file'", "is an absolute path"]),
    "absolute /etc/passwd": (absolute_etc, ["c.csv:3", "'/etc/passwd' is an absolute path", "--allow-outside-files"]),
    "absolute path inside": (absolute_inside, ["c.csv:3", "is an absolute path"]),
    "symlink to a file outside": (symlink_file, ["c.csv:3", "'link.txt' resolves outside"]),
    "symlink to a folder outside": (symlink_folder, ["c.csv:3", "'docs/secret.txt' resolves outside"]),
    "html page symlinked outside": (html_page_symlink, ["a.html", "resolves outside the catalog's folder"]),
    "html category symlinked outside": (html_category_symlink, ["'blender' resolves outside"]),
    "document file is a folder": (document_is_a_folder, ["c.csv:3", "field 'document_file'", "is a folder"]),
    "huge jsonl document": (huge_jsonl, ["c.jsonl:3", "field 'document' of Vitamix E310", "200,001 characters",
                                         "limit of 200,000", "POISE_MAX_DOCUMENT_CHARS"]),
    "huge inline csv document": (huge_csv_inline(BIG), ["c.csv:3", "field 'document' of Ninja Foodi",
                                                        "over the limit of 200,000"]),
    "huge inline csv field": (huge_csv_inline(3 * BIG), ["c.csv:3", "longer than the document limit of 200,000"]),
    "huge document file": (huge_document_file, ["c.csv:3", "big.txt is 800,004 bytes", "limit 200,000"]),
    "huge html page": (huge_html_page, ["a.html", "bytes, too large for a document"]),
    "NUL in a category": (names_with("category", "\x00"), ["c.jsonl:3", "field 'category' contains a NUL byte"]),
    "zero-width space in a brand": (names_with("brand", "\u200b"),
                                    ["field 'brand' contains a zero-width space (U+200B)"]),
    "zero-width non-joiner": (names_with("model", "\u200c"), ["field 'model'", "U+200C"]),
    "zero-width joiner": (names_with("model", "\u200d"), ["field 'model'", "U+200D"]),
    "word joiner": (names_with("brand", "\u2060"), ["field 'brand'", "word joiner (U+2060)"]),
    "BOM in a name": (names_with("brand", "\ufeff"), ["field 'brand'", "U+FEFF"]),
    "right-to-left override": (names_with("model", "\u202e"), ["field 'model' contains a bidi control (U+202E)"]),
    "bidi isolate": (names_with("brand", "\u2066"), ["field 'brand' contains a bidi control (U+2066)"]),
    "escape character": (names_with("brand", "\x1b"), ["field 'brand'", "escape character (ESC) (U+001B)"]),
    "DEL": (names_with("model", "\x7f"), ["field 'model'", "U+007F"]),
    "C1 control": (names_with("category", "\x9b"), ["field 'category'", "control character (U+009B)"]),
    "soft hyphen": (names_with("model", "\u00ad"), ["field 'model'", "soft hyphen (U+00AD)"]),
    "private-use character": (names_with("brand", "\ue000"), ["field 'brand'", "private-use character (U+E000)"]),
    "NUL in a csv brand": (csv_name_with("\x00"), ["c.csv:3", "field 'brand' contains a NUL byte"]),
    "zero-width in a csv brand": (csv_name_with("\u200b"), ["c.csv:3", "field 'brand'", "U+200B"]),
    "bidi in a query": (query_with_bidi, ["c.jsonl:3", "field 'query' contains a bidi control (U+202E)"]),
    "control in a url": (url_with_control, ["c.jsonl:3", "field 'url'", "U+001B"]),
    "unclosed quote": (unclosed_quote, ["c.csv:3: unclosed quote starting on line 3"]),
    "unclosed quote after a quoted multiline field": (unclosed_quote_after_multiline,
                                                      ["c.csv:5: unclosed quote starting on line 5"]),
    "stray quote": (stray_quote, ["c.csv:2", "malformed CSV"]),
    "unclosed quote in an html index": (index_unclosed_quote, ["index.csv:2: unclosed quote starting on line 2"]),
}


@pytest.mark.parametrize("build, fragments", CATALOG_CASES.values(), ids=CATALOG_CASES.keys())
def test_bad_catalogs(tmp_path, build, fragments, monkeypatch):
    monkeypatch.delenv("POISE_MAX_DOCUMENT_CHARS", raising=False)
    path = build(tmp_path)
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert type(info.value) is CatalogError
    assert_one_line(info.value, *fragments)


@pytest.mark.parametrize("build", [traversal, absolute_outside, symlink_file, symlink_folder])
def test_outside_files_are_read_only_when_allowed(tmp_path, build):
    catalog = load_catalog(build(tmp_path), allow_outside_files=True)
    assert catalog.category("blender").products[1].document.text == OUTSIDE_TEXT


def test_a_path_that_goes_up_and_back_in_stays_allowed(tmp_path):
    (tmp_path / "cat" / "sub").mkdir(parents=True)
    catalog = load_catalog(csv_file(tmp_path / "cat", "sub/../a.txt"))
    assert catalog.category("blender").products[1].document.text.startswith("A fine blender")


def test_the_document_limit_can_be_raised_or_lowered(tmp_path, monkeypatch):
    monkeypatch.delenv("POISE_MAX_DOCUMENT_CHARS", raising=False)
    path = huge_jsonl(tmp_path)
    assert len(load_catalog(path, max_document_chars=BIG).category("blender").products) == 3
    monkeypatch.setenv("POISE_MAX_DOCUMENT_CHARS", str(BIG))
    assert len(load_catalog(path).category("blender").products) == 3
    with pytest.raises(CatalogError) as info:
        load_catalog(jsonl(tmp_path), max_document_chars=5)
    assert_one_line(info.value, "field 'document' of Oster Pro", "12 characters, over the limit of 5")


@pytest.mark.parametrize("value", ["lots", "0", "-3"])
def test_a_bad_document_limit_is_named(tmp_path, monkeypatch, value):
    monkeypatch.setenv("POISE_MAX_DOCUMENT_CHARS", value)
    with pytest.raises(CatalogError) as info:
        load_catalog(jsonl(tmp_path))
    assert_one_line(info.value, repr(value) if value == "lots" else value)


def test_documents_lose_nul_and_control_characters_but_keep_lines(tmp_path):
    path = jsonl(tmp_path, product(document="Line one\x00\x07\r\nline\ttwo\x1b[31m red\x9b"))
    text = load_catalog(path).category("blender").products[2].document.text
    assert text == "Line one\nline\ttwo[31m red"


# -- templates -------------------------------------------------------------------------------------
TEMPLATE_CASES = {
    "huge width": ('system = "x"\nuser = "{documents} {n:>99999999999999999999}"\n',
                   ["'user'", "placeholder {n:>99999999999999999999} has a format spec", "plain {n}"]),
    "int spec on text": ('system = "x"\nuser = "{documents} {query:d}"\n', ["placeholder {query:d} has a format spec"]),
    "conversion": ('system = "{query!r}"\nuser = "{documents}"\n', ["'system'", "{query!r} has a conversion"]),
    "nested spec": ('system = "x"\nuser = "{documents}"\ndocument = "{text:{position}}"\n',
                    ["'document'", "{text:{position}} has a format spec"]),
    "spec that would work": ('system = "x"\nuser = "{documents}"\ndocument = "{position:03d} {text}"\n',
                             ["{position:03d} has a format spec"]),
    "long spec is cut": ('system = "x"\nuser = "{documents:' + ">" * 80 + '}"\n', ["has a format spec", "...}"]),
    "attribute access": ('system = "x"\nuser = "{documents} {query.__class__}"\n',
                         ["unknown placeholder {query.__class__}"]),
    "index access": ('system = "x"\nuser = "{documents[0]}"\n', ["unknown placeholder {documents[0]}"]),
    "positional": ('system = "x"\nuser = "{documents} {}"\n', ["unknown placeholder {}"]),
    "empty file": ("", ["field 'system'", "required"]),
}


@pytest.mark.parametrize("body, fragments", TEMPLATE_CASES.values(), ids=TEMPLATE_CASES.keys())
def test_bad_template_texts(tmp_path, body, fragments):
    path = tmp_path / "t.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        PromptTemplate.from_file(path)
    assert type(info.value) is TemplateError
    assert_one_line(info.value, f"{path}: ", *fragments)


def latin1(tmp: Path) -> Path:
    path = tmp / "latin.toml"
    path.write_bytes('system = "Caf\u00e9 assistant"\nuser = "{documents}"\n'.encode("latin-1"))
    return path


def binary(tmp: Path) -> Path:
    path = tmp / "image.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    return path


def folder(tmp: Path) -> Path:
    (tmp / "templates.toml").mkdir()
    return tmp / "templates.toml"


def huge(tmp: Path) -> Path:
    path = tmp / "huge.toml"
    path.write_text('system = "' + "x" * 1_000_001 + '"\nuser = "{documents}"\n')
    return path


TEMPLATE_FILE_CASES = {
    "latin-1": (latin1, ["not UTF-8 text (byte 13)", "save the template as UTF-8"]),
    "binary": (binary, ["not UTF-8 text (byte 0)"]),
    "folder": (folder, ["is a folder, not a template file", "--template"]),
    "huge": (huge, ["too large for a prompt template"]),
    "missing": (lambda tmp: tmp / "nope.toml", ["no such template file"]),
}


@pytest.mark.parametrize("build, fragments", TEMPLATE_FILE_CASES.values(), ids=TEMPLATE_FILE_CASES.keys())
def test_bad_template_files(tmp_path, build, fragments):
    path = build(tmp_path)
    with pytest.raises(TemplateError) as info:
        PromptTemplate.from_file(path)
    assert type(info.value) is TemplateError
    assert_one_line(info.value, f"{path}: ", *fragments)


def test_templates_are_checked_when_made_in_python_too():
    with pytest.raises(ValueError, match="has a format spec"):
        PromptTemplate(system="x", user="{documents} {n:>99999999999999999999}")


# -- attack parameters ------------------------------------------------------------------------------
ATTACK_CASES = {
    "depth banana": ("tap", {"depth": "banana"}, ["parameter 'depth' must be a whole number, not 'banana'"]),
    "depth -1": ("tap", {"depth": -1}, ["parameter 'depth' must be between 1 and 20, not -1"]),
    "depth 0": ("tap", {"depth": 0}, ["'depth' must be between 1 and 20"]),
    "depth 3.5": ("tap", {"depth": 3.5}, ["'depth' must be a whole number, not 3.5"]),
    "depth true": ("tap", {"depth": True}, ["'depth' must be a whole number, not True"]),
    "depth null": ("tap", {"depth": None}, ["'depth' must be a whole number, not None"]),
    "depth list": ("tap", {"depth": [3]}, ["'depth' must be a whole number, not [3]"]),
    "width huge": ("tap", {"width": 10**9}, ["'width' must be between 1 and 50"]),
    "roots string": ("tap", {"roots": "3"}, ["'roots' must be a whole number, not '3'"]),
    "retries -1": ("tap", {"retries": -1}, ["'retries' must be between 0 and 5"]),
    "temperature hot": ("tap", {"temperature": "hot"}, ["'temperature' must be a number, not 'hot'"]),
    "temperature 2.5": ("tap", {"temperature": 2.5}, ["'temperature' must be between 0 and 2, not 2.5"]),
    "temperature nan": ("tap", {"temperature": float("nan")}, ["'temperature' must be a number, not nan"]),
    "parents 0": ("strategies", {"parents": 0}, ["method 'strategies': parameter 'parents' must be between 1"]),
    "children string": ("strategies", {"children": "many"}, ["'children' must be a whole number"]),
    "unknown for tap": ("tap", {"depht": 3}, ["method 'tap' has no parameter 'depht'", "depth 1-20 (default 5)"]),
    "unknown for none": ("none", {"depth": 3}, ["method 'none' has no parameter 'depth'", "none"]),
}


@pytest.mark.parametrize("method, params, fragments", ATTACK_CASES.values(), ids=ATTACK_CASES.keys())
def test_bad_attack_parameters_fail_when_the_method_is_made(method, params, fragments):
    with pytest.raises(AttackParameterError) as info:
        get_method(method, **params)
    assert_one_line(info.value, *fragments)


@pytest.mark.parametrize("params", [{"depth": 1}, {"temperature": 0}, {"temperature": 2}, {"retries": 0}])
def test_bounds_are_inclusive_and_ints_pass_as_floats(params):
    method = get_method("tap", **params)
    assert method.params[next(iter(params))] == next(iter(params.values()))
    assert isinstance(method.params["temperature"], float)


BUDGET_CASES = {
    "no recommender queries": ({"recommender_queries": 0}, ["recommender query budget", "at least 1, not 0"]),
    "negative attacker queries": ({"attacker_queries": -5}, ["attacker query budget"]),
    "zero tokens": ({"tokens": 0}, ["token budget"]),
    "string budget": ({"recommender_queries": "46"}, ["not '46'"]),
}


@pytest.mark.parametrize("kwargs, fragments", BUDGET_CASES.values(), ids=BUDGET_CASES.keys())
def test_bad_budgets(kwargs, fragments):
    with pytest.raises(AttackParameterError) as info:
        Budget(**kwargs)
    assert_one_line(info.value, *fragments)


RUN_CASES = {
    "no answers per candidate": ({"responses_per_candidate": 0}, ["--responses"]),
    "no final orders": ({"final_orders": 0}, ["--final-orders"]),
    "no selection orders": ({"selection_orders": 0}, ["--selection-orders"]),
    "negative confirm": ({"confirm": -1}, ["--confirm must be a whole number of at least 0"]),
}


@pytest.mark.parametrize("kwargs, fragments", RUN_CASES.values(), ids=RUN_CASES.keys())
def test_bad_run_settings_fail_before_the_first_query(kwargs, fragments):
    from .conftest import tiny_category

    class NoEngine:  # any query would fail loudly
        def __getattr__(self, name):
            raise AssertionError(f"the engine was used ({name}) before the settings were checked")

    with pytest.raises(AttackParameterError) as info:
        run_attack(NoEngine(), tiny_category(), get_method("none"), store=None, run_id="x", **kwargs)
    assert_one_line(info.value, *fragments)
