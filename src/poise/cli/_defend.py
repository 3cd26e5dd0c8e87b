"""``poise defend``: which defense to deploy, what it stops and what it costs."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from ..engine import DEFAULT_GENERATE_CONFIG
from ..models import DEFAULT_MODEL_SPEC
from ._open import say_started
from ._options import (
    AllowOutsideOpt,
    BaseUrlOpt,
    CatalogOpt,
    JsonOpt,
    MaxAttemptsOpt,
    MaxTokensOpt,
    ModelOpt,
    ParamOpt,
    ReaderOpt,
    SeedOpt,
    StoreOpt,
    TemplateOpt,
    TimeoutOpt,
    parse_params,
)
from ._render import emit_json, make_console, out, progress_bar, safe

if TYPE_CHECKING:  # annotations only: the CLI imports these where it uses them
    from collections.abc import Callable
    from pathlib import Path

    from ..catalog import Category
    from ..experiments import DefendCleanSetup, DefendSetup


def _method_names() -> str:
    from ..attacks import METHODS

    return ", ".join(METHODS)


def defend(
    category: Annotated[list[str] | None, typer.Option(
        "--category", "-c", help="A category to measure on (repeat for several).")] = None,
    defense: Annotated[list[str] | None, typer.Option(
        "--defense", help="A configuration to compare with the plain engine: NAME[:key=value,...]; a+b composes; "
                          "one parameter may list values (k=1|3|5) for a trade-off curve. Repeat for several "
                          "(default: every registered defense).")] = None,
    method: Annotated[str, typer.Option("--attack", help=f"The attack: one of {_method_names()}.")] = "strategies",
    budget: Annotated[int, typer.Option("--budget", min=1, help="Recommender queries each search may spend.")] = 46,
    orders: Annotated[int, typer.Option("--orders", min=2, help="Fresh context orders for clean utility.")] = 10,
    consensus_orders: Annotated[int, typer.Option(
        "--consensus-orders", min=0, metavar="M",
        help="Build the plain engine's consensus from its answers on M further orders of its own (0: from its "
             "answers on the --orders orders, which it is then measured against).")] = 0,
    final_orders: Annotated[int, typer.Option("--final-orders", min=1,
                                              help="Fresh context orders for the attacks' final figures.")] = 10,
    selection_orders: Annotated[int, typer.Option("--selection-orders", min=1)] = 4,
    responses: Annotated[int, typer.Option("--responses", min=1, help="Answers per candidate.")] = 2,
    confirm: Annotated[int, typer.Option("--confirm", min=0, help="Candidates re-asked before the best is kept.")] = 3,
    param: ParamOpt = None,
    attacker: Annotated[str | None, typer.Option("--attacker", help="The attacker model spec (tap).")] = None,
    product: Annotated[str | None, typer.Option(
        "--product", "-p", help="The product to promote (default: the plain engine's lowest-ranked).")] = None,
    seed: SeedOpt = 0,
    list_defenses: Annotated[bool, typer.Option("--list", help="List the registered defenses and exit.")] = False,
    model: ModelOpt = DEFAULT_MODEL_SPEC,
    catalog: CatalogOpt = None,
    allow_outside_files: AllowOutsideOpt = False,
    template: TemplateOpt = None,
    max_tokens: MaxTokensOpt = DEFAULT_GENERATE_CONFIG.max_tokens,
    base_url: BaseUrlOpt = None,
    store: StoreOpt = None,
    max_attempts: MaxAttemptsOpt = 5,
    timeout: TimeoutOpt = 60.0,
    reader: ReaderOpt = "heuristic",
    clean_only: Annotated[bool, typer.Option(
        "--clean-only", help="Clean utility and cost only, no attack: each configuration's agreement with the "
                             "plain engine's consensus, position bias and tokens, on the same --orders (and "
                             "--consensus-orders), at a fraction of the calls; its own run, resumable. The "
                             "attack's options (--attack, --param, --attacker, --budget, --final-orders, "
                             "--selection-orders, --responses, --confirm, --product) are ignored.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare the plain engine with defended engines: clean utility, the adaptive attack and
    the plain engine's injection replayed, cost, detection and certificates (with --clean-only:
    clean utility and cost alone). Resumable."""
    from ..catalog import load_catalog
    from ..experiments import defend_clean_setup, defend_setup, load_template, model_opener

    if list_defenses:
        show_defenses(as_json)
        return
    if not category:
        raise typer.BadParameter("name at least one category", param_hint="--category")
    cat = load_catalog(catalog, allow_outside_files=allow_outside_files)
    categories = [cat.category(c) for c in dict.fromkeys(category)]
    # every spec, parameter and count checked, every model built, before the store is opened
    common: dict[str, Any] = dict(
        model=model, open_model=model_opener(base_url, max_attempts=max_attempts, timeout=timeout),
        template=load_template(template), defenses=defense, orders=orders, consensus_orders=consensus_orders,
        seed=seed, catalog=catalog, max_tokens=max_tokens, reader=reader)
    setup = defend_clean_setup(categories, **common) if clean_only else defend_setup(
        categories, **common, method=method, params=parse_params(param), attacker=attacker, budget=budget,
        final_orders=final_orders, selection_orders=selection_orders, responses=responses, confirm=confirm,
        product=product)
    data, run_id = _run(setup, store, as_json)
    if as_json:
        emit_json(data)
        return
    for result in data["categories"]:
        out.print(defend_clean_table(result) if clean_only else defend_table(result))
    out.print(safe(f"run {run_id}", "dim"))


def _run(setup: DefendSetup | DefendCleanSetup, store: Path | None, as_json: bool) -> tuple[dict[str, Any], str]:
    """The run started or resumed in the store, with a progress bar per category on stderr:
    its saved result as JSON, and its id."""
    from ..experiments import attach_cache
    from ..store import Store

    err = make_console(stderr=True)
    with Store(store) as db:
        attach_cache(db, *setup.models)
        with db.open_run(setup.command, setup.config, close=setup.closing) as run:
            say_started(err, run)
            with progress_bar(err, transient=as_json) as progress:
                def on_category(c: Category) -> Callable[[], None]:
                    return partial(progress.advance, progress.add_task(f"defenses on {c.name}", total=None))

                stored = setup.run(db, run.id, on_category)
    return stored.model_dump(mode="json"), run.id


def _pct(x: Any) -> str:
    return "-" if x is None else f"{x:.0%}"


def _short(x: Any) -> str:
    """One decimal below 100, none above: at most four characters up to 9999."""
    return "-" if x is None else f"{x:.1f}" if abs(x) < 100 else f"{x:.0f}"


def _f(x: Any, fmt: str = "{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


LABEL_WIDTH = 9  # a longer configuration label is shown as a key (d1, d2 ...) and spelt out below


def _consensus(result: dict[str, Any]) -> str:
    """What the consensus rests on, when it has orders of its own, and how settled its top-1 is."""
    own = result.get("consensus_orders") or 0
    stability = result.get("consensus_stability")
    where = f"; consensus of {own} own order{'s' * (own != 1)}" if own else ""
    return where + ("" if stability is None else f", its top-1 {stability:.0%} stable")


def defend_table(result: dict[str, Any]) -> Table:
    """One category: a row per configuration, readable at 80 columns."""
    table = Table(title=safe(f"{result['category']}: promoting {result['product']} ({result['method']}, budget "
                             f"{result['budget']}; {result['orders']} clean orders{_consensus(result)})"),
                  title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for col in ("defense", "τ", "top1", "posF", "succ", "gain", "xfer", "tok×", "TPR/FPR", "cert"):
        table.add_column(col, justify="left" if col == "defense" else "right", overflow="fold",
                         min_width=LABEL_WIDTH if col == "defense" else None)
    legend: list[str] = []
    for k, c in enumerate(result["configs"]):
        clean, attack, cost = c["clean"], c["attack"], c["cost"]
        det, cert = c.get("detection"), c.get("certificate")
        table.add_row(
            safe(_key(k, c["label"], legend)), _f(clean["tau"]), _pct(clean["top1"]),
            _position_f(clean["position_f"], clean["position_p"]),
            _pct(attack["first_rate"]) + ("*" if attack["success"] else ""), _f(attack["rank_gain"], "{:+.1f}"),
            _f(attack["transfer_gain"], "{:+.1f}"), _short(cost["tokens_x"]),
            f"{_pct(det['tpr'])}/{_pct(det['fpr'])}" if det else "-",
            _f(cert["certified_share"]) if cert else "-")
    table.caption = safe("\n".join([
        *legend,
        "τ, top1: agreement with the plain engine's consensus; posF: position-bias F; succ: final answers with the "
        "product first (* success); gain, xfer: mean rank gain under the adaptive attack and under the plain "
        "engine's injection; tok×: tokens per answer against plain; TPR/FPR: attacked pages flagged / clean pages "
        "flagged; cert: certified share of pairs"]))
    table.caption_justify = "left"
    return table


def _key(k: int, label: str, legend: list[str]) -> str:
    """How row ``k`` names its configuration: the label, or a key (d1, d2 ...) spelt out in
    ``legend`` when the label is longer than LABEL_WIDTH."""
    if len(label) <= LABEL_WIDTH:
        return label
    legend.append(f"d{k} = {label}")
    return f"d{k}"


def _position_f(f: Any, p: Any) -> str:
    """The position-bias F; ∞ where the position decides every score (F has no finite value, p 0)."""
    return "∞" if f is None and p == 0 else _short(f)


def defend_clean_table(result: dict[str, Any]) -> Table:
    """One category of ``--clean-only``: a row per configuration, readable at 80 columns; the
    consensus's first products (untrusted names: shown inert) below."""
    consensus = result["consensus"]
    where = _consensus({"consensus_orders": consensus["own_orders"], "consensus_stability": consensus["stability"]})
    table = Table(title=safe(f"{result['category']}: clean utility and cost, no attack ({result['orders']} clean "
                             f"orders{where})"),
                  title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for col in ("defense", "τ", "top1", "posF", "calls", "tok×"):
        table.add_column(col, justify="left" if col == "defense" else "right", overflow="fold",
                         min_width=LABEL_WIDTH if col == "defense" else None)
    legend: list[str] = []
    for k, c in enumerate(result["configs"]):
        table.add_row(safe(_key(k, c["label"], legend)), _f(c["tau"]), _pct(c["top1"]),
                      _position_f(c["position_f"], c["position_p"]), _short(c["calls"]), _short(c["tokens_x"]))
    top = ", ".join(f"{p['product']} {p['points']:g}" for p in consensus["products"][:3])
    table.caption = safe("\n".join([
        *legend, f"consensus of {consensus['answers']} answers (Borda points): {top}",
        "τ, top1: agreement with the plain engine's consensus; posF: position-bias F; calls: model calls per "
        "answer; tok×: tokens per answer against plain"]))
    table.caption_justify = "left"
    return table


def show_defenses(as_json: bool) -> None:
    from ..defenses import DEFENSES

    rows: list[dict[str, Any]] = []
    for name in sorted(DEFENSES):
        cls = DEFENSES[name]
        params: list[dict[str, Any]] = []
        for key, p in cls.params.items():
            bounds = f" one of {'|'.join(p.choices)}" if p.choices else (
                f" in [{p.low:g}, {p.high:g}]" if p.low is not None and p.high is not None else "")
            params.append({"name": key, "type": p.type.__name__, "default": p.default, "help": p.help,
                           "describe": f"{key}={p.default}{bounds}: {p.help}"})
        rows.append({"name": name, "kind": cls.kind, "summary": cls.summary, "params": params})
    if as_json:
        emit_json([{k: v for k, v in r.items()} | {"params": [{k: v for k, v in p.items() if k != "describe"}
                                                              for p in r["params"]]} for r in rows])
        return
    table = Table(title="Registered defenses (--defense NAME[:key=value,...])", title_justify="left",
                  header_style="bold", box=box.SIMPLE_HEAD)
    for col in ("defense", "kind", "what it does and its parameters"):
        table.add_column(col, overflow="fold")
    for r in rows:
        text = r["summary"] + "".join(f"\n  {p['describe']}" for p in r["params"])
        table.add_row(safe(r["name"]), safe(r["kind"]), safe(text))
    out.print(table)
