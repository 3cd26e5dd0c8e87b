"""The catalog: the bundled sample, the JSONL / CSV / HTML-folder loaders, and their errors.

Every loader error must name the file, the line (or page) and the field at fault, so the
tests assert on ``PoiseError.one_line()``, the text a user actually sees.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from poise import CatalogError, PoiseError, UnknownCategoryError
from poise.catalog import (
    SAMPLE_CATALOG_NAME,
    Catalog,
    iter_products,
    load_catalog,
    load_csv,
    load_html_folder,
    load_jsonl,
    sample_catalog,
)

LINKS_CSV = Path("/work/shared/data/catalog-links/products.csv")


def write_jsonl(path: Path, *rows: dict | str) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def product(category: str, brand: str, model: str, document: str = "A fine product page.", **extra) -> dict:
    return {"category": category, "brand": brand, "model": model, "document": document, **extra}


def error_line(excinfo: pytest.ExceptionInfo) -> str:
    assert isinstance(excinfo.value, PoiseError)
    line = excinfo.value.one_line()
    assert "\n" not in line
    return line


# -- the bundled sample catalog ----------------------------------------------------------------
@pytest.fixture(scope="module")
def sample() -> Catalog:
    return sample_catalog()


def test_sample_has_ten_or_more_categories_including_blender(sample):
    assert len(sample) >= 10
    assert len(sample.categories) == len(sample)
    assert "blender" in sample.categories
    assert sample.category("blender").name == "blender"


def test_sample_categories_have_eight_products_from_distinct_brands(sample):
    for name, category in sample.categories.items():
        assert len(category.products) == 8, name
        brands = [p.brand.lower() for p in category.products]
        assert len(set(brands)) == 8, f"{name}: repeated brand in {brands}"


def test_sample_documents_are_600_to_1200_characters(sample):
    lengths = {p.name: len(p.document.text) for _, p in iter_products(sample)}
    assert len(lengths) == 8 * len(sample)
    bad = {name: n for name, n in lengths.items() if not 600 <= n <= 1200}
    assert not bad


def test_sample_categories_have_their_own_query_and_source_urls(sample):
    for name, category in sample.categories.items():
        assert category.query, name
        assert category.default_query == category.query
        for p in category.products:
            assert p.document.source_url and p.document.source_url.startswith("https://"), p.name


def test_sample_is_what_load_catalog_gives_for_none_and_sample(sample):
    for spec in (None, SAMPLE_CATALOG_NAME):
        other = load_catalog(spec)
        assert other.source == "the bundled sample catalog"
        assert list(other.categories) == list(sample.categories)
        assert other.categories["blender"].products == sample.categories["blender"].products


def _alnum(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _url_key(url: str) -> tuple[str, str]:
    parts = urlsplit(url.strip())
    return parts.netloc.lower(), parts.path.rstrip("/")


@pytest.mark.skipif(not LINKS_CSV.is_file(), reason=f"{LINKS_CSV} not present in this checkout")
def test_sample_names_are_drawn_from_the_ragdoll_product_list(sample):
    """Every sample product is a row of the RAGDOLL list: same category, brand, page URL, and a
    model name shortened from the list's entry (each of its words appears there)."""
    with LINKS_CSV.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    categories = {r["Product"].strip() for r in rows}
    by_url = {(r["Product"].strip(), _url_key(r["URL"])): r for r in rows}
    problems = []
    for name, p in iter_products(sample):
        if name not in categories:
            problems.append(f"category {name!r} not in the list")
            continue
        row = by_url.get((name, _url_key(p.document.source_url or "")))
        if row is None:
            problems.append(f"{p.name}: URL {p.document.source_url} not listed under {name!r}")
            continue
        brand, listed_brand = _alnum(p.brand), _alnum(row["Brand"])
        if brand not in listed_brand and listed_brand not in brand:
            problems.append(f"{p.name}: brand differs from the list's {row['Brand']!r}")
        listed_model = _alnum(row["Model"])
        missing = [w for w in p.model.split() if _alnum(w) not in listed_model]
        if missing:
            problems.append(f"{p.name}: words {missing} not in the list's model {row['Model']!r}")
    assert not problems, "\n".join(problems)


# -- JSONL ---------------------------------------------------------------------------------------
def test_jsonl_loads_products_in_file_order_with_category_query(tmp_path):
    path = write_jsonl(
        tmp_path / "c.jsonl",
        {"type": "category", "category": "kettle", "query": "Which kettle boils fastest?"},
        product("kettle", "Fellow", "Stagg EKG", "Pour-over kettle.", url="https://fellow.example/ekg"),
        "",
        product("kettle", "  Bodum ", "Bistro   Kettle", "  Boils one litre.  "),
        product("toaster", "Smeg", "TSF01", "Two-slice toaster."),
        {"type": "product", **product("toaster", "Dualit", "Classic", "Four-slice toaster.")},
    )
    catalog = load_jsonl(path)
    assert catalog.source == str(path)
    assert list(catalog.categories) == ["kettle", "toaster"]
    kettle = catalog.category("kettle")
    assert kettle.query == "Which kettle boils fastest?"
    assert kettle.default_query == "Which kettle boils fastest?"
    assert [(p.brand, p.model) for p in kettle.products] == [("Fellow", "Stagg EKG"), ("Bodum", "Bistro Kettle")]
    assert kettle.products[0].document.source_url == "https://fellow.example/ekg"
    assert kettle.products[1].document.source_url is None
    assert kettle.products[1].document.text == "Boils one litre."
    toaster = catalog.category("toaster")
    assert toaster.query is None
    assert "toaster" in toaster.default_query
    assert [p.name for p in toaster.products] == ["Smeg TSF01", "Dualit Classic"]


def test_load_catalog_dispatches_on_suffix(tmp_path):
    rows = [product("kettle", "Fellow", "Stagg"), product("kettle", "Bodum", "Bistro")]
    for name in ("c.jsonl", "c.ndjson"):
        assert load_catalog(write_jsonl(tmp_path / name, *rows)).category("kettle").products[1].brand == "Bodum"


def test_product_name_does_not_repeat_the_brand(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", product("kettle", "Bodum", "Bodum Bistro"),
                       product("kettle", "Fellow", "Stagg"))
    names = [p.name for p in load_jsonl(path).category("kettle").products]
    assert names == ["Bodum Bistro", "Fellow Stagg"]


# -- catalog lookups -----------------------------------------------------------------------------
def test_category_lookup_ignores_case_and_spacing(sample):
    assert sample.category("  Coffee   MAKER ").name == "coffee maker"


def test_unknown_category_suggests_close_names(sample):
    with pytest.raises(UnknownCategoryError) as info:
        sample.category("blendr")
    line = error_line(info)
    assert "unknown category 'blendr'" in line
    assert "the bundled sample catalog" in line
    assert "did you mean 'blender'?" in line


def test_unknown_category_without_close_names_points_to_the_list(sample):
    with pytest.raises(UnknownCategoryError) as info:
        sample.category("submarine")
    line = error_line(info)
    assert "unknown category 'submarine'" in line
    assert "did you mean" not in line
    assert "poise catalog list" in line


# -- CSV -----------------------------------------------------------------------------------------
def test_csv_with_inline_documents(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(
        "\ufeffCategory, Brand ,MODEL,document,url\n"
        'kettle,Fellow,Stagg EKG,"Holds 0.9 l, pours precisely.",https://fellow.example/ekg\n'
        ",,,,\n"
        "kettle,Bodum,Bistro,Boils one litre.,\n",
        encoding="utf-8",
    )
    catalog = load_catalog(path)
    products = catalog.category("kettle").products
    assert [(p.brand, p.model) for p in products] == [("Fellow", "Stagg EKG"), ("Bodum", "Bistro")]
    assert products[0].document.text == "Holds 0.9 l, pours precisely."
    assert products[0].document.source_url == "https://fellow.example/ekg"
    assert products[1].document.source_url is None


def test_csv_with_document_files_txt_and_html(tmp_path):
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "stagg.txt").write_text("The Stagg EKG kettle holds 0.9 litres.\n", encoding="utf-8")
    (tmp_path / "pages" / "bistro.html").write_text(
        "<html><head><title>Bodum Bistro</title><script>var tracking = 'SECRET_SCRIPT';</script></head>"
        "<body><nav>Home | Shop | Cart</nav><main><article><h1>Bodum Bistro</h1>"
        "<p>The Bistro electric kettle boils one litre of water with a 1,800-watt element and "
        "switches itself off when the water boils, so you never have to watch it.</p>"
        "</article></main></body></html>",
        encoding="utf-8",
    )
    path = tmp_path / "c.csv"
    path.write_text(
        "category,brand,model,document_file\n"
        "kettle,Fellow,Stagg EKG,pages/stagg.txt\n"
        "kettle,Bodum,Bistro,pages/bistro.html\n",
        encoding="utf-8",
    )
    products = load_csv(path).category("kettle").products
    assert products[0].document.text == "The Stagg EKG kettle holds 0.9 litres."
    html_text = products[1].document.text
    assert "1,800-watt element" in html_text
    assert "SECRET_SCRIPT" not in html_text
    assert "<p>" not in html_text


def test_csv_inline_document_wins_over_document_file(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(
        "category,brand,model,document,document_file\n"
        "kettle,Fellow,Stagg,Inline text.,does-not-exist.txt\n"
        "kettle,Bodum,Bistro,Other text.,\n",
        encoding="utf-8",
    )
    assert load_csv(path).category("kettle").products[0].document.text == "Inline text."


def test_csv_quoted_multiline_document_keeps_its_line_breaks(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(
        "category,brand,model,document\n"
        'kettle,Fellow,Stagg,"First paragraph ends here.\n\nSecond paragraph starts."\n'
        "kettle,Bodum,Bistro,One line.\n",
        encoding="utf-8",
    )
    text = load_csv(path).category("kettle").products[0].document.text
    assert text == "First paragraph ends here.\n\nSecond paragraph starts."


# -- HTML folder ---------------------------------------------------------------------------------
def html_page(title: str, body: str, json_ld: object | None = None) -> str:
    ld = f'<script type="application/ld+json">{json.dumps(json_ld)}</script>' if json_ld is not None else ""
    return (
        f"<html><head><title>{title}</title>{ld}</head><body><nav>Home | Shop | Cart</nav>"
        f"<main><article><h1>{title}</h1><p>{body}</p></article></main>"
        "<footer>Copyright 2024 Example Shop</footer></body></html>"
    )


MIXER_A = ("The Artisan stand mixer has a 325-watt motor, ten speeds and a 5-quart stainless steel "
           "bowl with a comfortable handle. It comes with a flat beater, dough hook and wire whip.")
MIXER_B = ("The Chef stand mixer has a 1000-watt motor, a 4.6-litre bowl and planetary mixing "
           "action. Its fold function lets you gently combine delicate ingredients.")
KETTLE_A = ("The Stagg EKG electric kettle holds 0.9 litres, heats to an exact temperature between "
            "57 and 100 degrees Celsius and has a precision pour spout.")
KETTLE_B = ("The Bistro electric kettle boils 1.0 litre of water quickly with a 1,800-watt element "
            "and switches off automatically when the water boils.")


def test_html_folder_with_index_csv(tmp_path):
    sub = tmp_path / "stand_mixer"
    sub.mkdir()
    (sub / "a.html").write_text(html_page("KitchenAid Artisan", MIXER_A), encoding="utf-8")
    (sub / "b.htm").write_text(html_page("Kenwood Chef", MIXER_B), encoding="utf-8")
    (sub / "index.csv").write_text(
        "file,brand,model,url\na.html,KitchenAid,Artisan,https://example.com/artisan\nb.htm,Kenwood,Chef,\n",
        encoding="utf-8",
    )
    (tmp_path / ".hidden").mkdir()
    catalog = load_catalog(tmp_path)  # a folder goes to the HTML loader
    assert catalog.source == str(tmp_path)
    assert list(catalog.categories) == ["stand mixer"]
    a, b = catalog.category("stand mixer").products
    assert (a.brand, a.model, a.document.source_url) == ("KitchenAid", "Artisan", "https://example.com/artisan")
    assert (b.brand, b.model, b.document.source_url) == ("Kenwood", "Chef", None)
    assert "325-watt motor" in a.document.text and "1000-watt motor" in b.document.text
    assert "Copyright 2024" not in a.document.text


def test_html_folder_with_json_ld_product_markup(tmp_path):
    sub = tmp_path / "kettle"
    sub.mkdir()
    (sub / "x.html").write_text(html_page("Fellow Stagg EKG", KETTLE_A, {
        "@context": "https://schema.org", "@type": "Product", "name": "Stagg EKG",
        "brand": {"@type": "Brand", "name": "Fellow"}, "url": "https://fellow.example/ekg",
    }), encoding="utf-8")
    # a list of JSON-LD items, brand as plain text, the product name already carrying the brand
    (sub / "y.html").write_text(html_page("Bodum Bistro", KETTLE_B, [
        {"@type": "BreadcrumbList", "name": "Kitchen"},
        {"@type": "Product", "name": "Bodum Bistro Kettle", "brand": "Bodum"},
    ]), encoding="utf-8")
    x, y = load_html_folder(tmp_path).category("kettle").products
    assert (x.brand, x.model, x.document.source_url) == ("Fellow", "Stagg EKG", "https://fellow.example/ekg")
    assert x.name == "Fellow Stagg EKG"
    assert (y.brand, y.name, y.document.source_url) == ("Bodum", "Bodum Bistro Kettle", None)
    assert "precision pour spout" in x.document.text


def test_html_page_without_index_or_json_ld_is_an_error(tmp_path):
    sub = tmp_path / "kettle"
    sub.mkdir()
    (sub / "x.html").write_text(html_page("Fellow Stagg EKG", KETTLE_A), encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_html_folder(tmp_path)
    line = error_line(info)
    assert str(sub / "x.html") in line
    assert "brand and model" in line
    assert "index.csv" in line


def test_html_index_row_without_brand_names_file_line_and_field(tmp_path):
    sub = tmp_path / "kettle"
    sub.mkdir()
    (sub / "x.html").write_text(html_page("Fellow Stagg EKG", KETTLE_A), encoding="utf-8")
    (sub / "index.csv").write_text("file,brand,model\nx.html,Fellow,Stagg\ny.html,,Bistro\n", encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_html_folder(tmp_path)
    line = error_line(info)
    assert f"{sub / 'index.csv'}:3" in line
    assert "'brand'" in line


def test_html_folder_without_category_folders(tmp_path):
    (tmp_path / "loose.html").write_text(html_page("Fellow Stagg EKG", KETTLE_A), encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_html_folder(tmp_path)
    line = error_line(info)
    assert str(tmp_path) in line and "no category folders" in line


def test_html_page_with_no_main_text(tmp_path):
    sub = tmp_path / "kettle"
    sub.mkdir()
    (sub / "x.html").write_text(html_page("Fellow Stagg EKG", KETTLE_A), encoding="utf-8")
    (sub / "y.html").write_text("<html><head><title>Empty</title></head><body></body></html>", encoding="utf-8")
    (sub / "index.csv").write_text("file,brand,model\nx.html,Fellow,Stagg\ny.html,Bodum,Bistro\n", encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_html_folder(tmp_path)
    line = error_line(info)
    assert str(sub / "y.html") in line
    assert "no main text" in line


# -- validation errors: file, line and field ---------------------------------------------------------
GOOD = product("kettle", "Fellow", "Stagg")


@pytest.mark.parametrize(
    ("bad_line", "fragments"),
    [
        ('{"category": "kettle", "brand": "Bodum",', ["not valid JSON", "each line must be one JSON object"]),
        ('["kettle", "Bodum", "Bistro"]', ["expected a JSON object", "list"]),
        (json.dumps({"category": "kettle", "model": "Bistro", "document": "text"}),
         ["field 'brand' is missing or empty"]),
        (json.dumps(product("kettle", "   ", "Bistro")), ["field 'brand' is missing or empty"]),
        (json.dumps(product("kettle", "Bodum", "Bistro", document="  \n ")), ["field 'document' is missing or empty"]),
        (json.dumps(product("kettle", "Bodum", "Bistro", document=42)), ["field 'document' must be text, not int"]),
        (json.dumps(product("kettle", "Bodum", "Bistro", price=30)),
         ["unknown field 'price'", "brand, category, document"]),
        (json.dumps(product("kettle", "Bodum", "Bistro", url=7)), ["field 'url' must be text"]),
        (json.dumps({"type": "review", "category": "kettle"}), ["field 'type'", "'review'"]),
        (json.dumps({"type": "category", "category": "kettle"}), ["field 'query' is missing or empty"]),
        (json.dumps({"type": "category", "category": "kettle", "query": "q", "brand": "X"}),
         ["unknown field 'brand'", "a category line has the fields category, query, type"]),
        (json.dumps(product(None, "Bodum", "Bistro")), ["field 'category' is missing or empty"]),
    ],
)
def test_jsonl_errors_name_file_line_and_field(tmp_path, bad_line, fragments):
    # the bad line is line 3: a blank line still counts
    path = write_jsonl(tmp_path / "bad.jsonl", GOOD, "", bad_line, product("kettle", "Zeta", "Z"))
    with pytest.raises(CatalogError) as info:
        load_jsonl(path)
    line = error_line(info)
    assert line.startswith(f"{path}:3: "), line
    for fragment in fragments:
        assert fragment in line, line


def test_duplicate_product_names_both_lines(tmp_path):
    path = write_jsonl(tmp_path / "dup.jsonl", GOOD, product("kettle", "Bodum", "Bistro"),
                       product("kettle", "fellow", "  STAGG "))
    with pytest.raises(CatalogError) as info:
        load_jsonl(path)
    line = error_line(info)
    assert line.startswith(f"{path}:3: ")
    assert f"already listed in category 'kettle' at {path}:1" in line


def test_same_product_in_two_categories_is_fine(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", GOOD, product("kettle", "Bodum", "Bistro"),
                       product("tea kettle", "Fellow", "Stagg"), product("tea kettle", "Bodum", "Bistro"))
    assert len(load_jsonl(path)) == 2


def test_category_with_one_product(tmp_path):
    path = write_jsonl(tmp_path / "one.jsonl", GOOD, product("kettle", "Bodum", "Bistro"),
                       product("toaster", "Smeg", "T1"))
    with pytest.raises(CatalogError) as info:
        load_jsonl(path)
    line = error_line(info)
    assert line.startswith(f"{path}:3: ")
    assert "'toaster' has only one product" in line


def test_category_query_without_products(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", {"type": "category", "category": "toaster", "query": "Best toaster?"},
                       GOOD, product("kettle", "Bodum", "Bistro"))
    with pytest.raises(CatalogError) as info:
        load_jsonl(path)
    line = error_line(info)
    assert str(path) in line and "'toaster' has a query but no products" in line


def test_empty_file_has_no_products(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="no products found"):
        load_jsonl(path)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(CatalogError) as info:
        load_catalog(tmp_path / "nope.jsonl")
    assert "nope.jsonl: no such file" in error_line(info)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(json.dumps(GOOD).encode() + b"\n" + '{"brand": "Caf\u00e9"}'.encode("latin-1"))
    with pytest.raises(CatalogError) as info:
        load_jsonl(latin)
    line = error_line(info)
    assert str(latin) in line and "not UTF-8" in line


def test_unknown_catalog_format(tmp_path):
    path = tmp_path / "c.xlsx"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    line = error_line(info)
    assert str(path) in line and "'.xlsx'" in line


@pytest.mark.parametrize(
    ("text", "line_no", "fragments"),
    [
        ("category,brand,model,document\nkettle,Fellow,Stagg,x\nkettle,,Bistro,y\n", 3,
         ["field 'brand' is missing or empty"]),
        ("category,brand,model,document\nkettle,Fellow,Stagg,x\nkettle,Bodum,Bistro,   \n", 3,
         ["field 'document' is missing or empty"]),
        ("category,brand,model,document\nkettle,Fellow,Stagg,x\nkettle,Bodum,Bistro,a, b\n", 3,
         ["more fields than the header has", "quote fields"]),
        ("category,brand,model,document\nkettle,Fellow,Stagg,x\nkettle,FELLOW,stagg,y\n", 3,
         ["'FELLOW stagg' already listed", "bad.csv:2"]),
        ("category,brand,model,document_file\nkettle,Fellow,Stagg,missing.txt\n", 2,
         ["field 'document_file'", "missing.txt"]),
        ("category,brand,docment\nkettle,Fellow,x\n", 1, ["header lacks column 'model'"]),
        ("category,brand,model,docment\nkettle,Fellow,Stagg,x\n", 1, ["header lacks column 'document'"]),
    ],
)
def test_csv_errors_name_file_line_and_field(tmp_path, text, line_no, fragments):
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_csv(path)
    line = error_line(info)
    assert line.startswith(f"{path}:{line_no}: "), line
    for fragment in fragments:
        assert fragment in line, line


def test_empty_csv_has_no_header(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_csv(path)
    assert "no header row" in error_line(info)


def test_csv_unknown_column_is_named_not_dropped(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("category,brand,model,document,link\nkettle,Bodum,Bistro,Text.,http://x\n", encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_csv(path)
    assert "c.csv:1" in str(err.value) and "'link'" in str(err.value)


def test_html_index_header_is_case_insensitive(tmp_path):
    cat = tmp_path / "kettle"
    cat.mkdir()
    (cat / "index.csv").write_text("File,Brand,Model\na.html,Bodum,Bistro\nb.html,Fellow,Stagg EKG\n",
                                   encoding="utf-8")
    body = "A sturdy electric kettle with a 1.7 litre jug, boil-dry protection and a two year warranty. " * 3
    for name, title in (("a.html", "Bodum Bistro"), ("b.html", "Fellow Stagg EKG")):
        (cat / name).write_text(f"<html><body><article><h1>{title}</h1><p>{body}</p></article></body></html>",
                                encoding="utf-8")
    products = load_catalog(tmp_path).category("kettle").products
    assert [(p.brand, p.model) for p in products] == [("Bodum", "Bistro"), ("Fellow", "Stagg EKG")]
