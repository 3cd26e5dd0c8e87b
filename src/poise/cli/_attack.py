"""``poise attack`` and ``poise transfer``: promote a product, then carry the injection over."""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer

from .._errors import PoiseError
from ..engine import DEFAULT_GENERATE_CONFIG
from ..models import DEFAULT_MODEL_SPEC
from ._open import say_started
from ._options import (
    AllowOutsideOpt,
    BaseUrlOpt,
    CatalogOpt,
    DefenseOpt,
    JsonOpt,
    MaxAttemptsOpt,
    MaxTokensOpt,
    ModelOpt,
    ReaderOpt,
    SeedOpt,
    StoreOpt,
    TemplateOpt,
    TimeoutOpt,
    parse_params,
)
from ._render import emit_json, make_console, out, progress_bar, safe


def _methods() -> tuple[str, str]:
    """The registered methods, for --method's and --param's help."""
    from ..attacks import METHODS, describe_methods

    return ", ".join(METHODS), describe_methods()


_METHOD_NAMES, _METHOD_PARAMS = _methods()


def attack(
    category: Annotated[str, typer.Option("--category", "-c", help="The category to attack.")],
    product: Annotated[list[str] | None, typer.Option(
        "--product", "-p", help="The product to promote (default: the one ranked lowest without injection); "
                                "with --compete, repeat it to name the K products.")] = None,
    method: Annotated[str, typer.Option("--method", help=f"One of: {_METHOD_NAMES}.")] = "strategies",
    model: ModelOpt = DEFAULT_MODEL_SPEC,
    attacker: Annotated[str | None, typer.Option(
        "--attacker", help="The attacker model spec for --method tap, or the rewrite model for --method rewrite "
                           "(default: the --model).")] = None,
    budget: Annotated[int, typer.Option("--budget", min=1, help="Recommender queries the search may spend.")] = 46,
    attacker_budget: Annotated[int, typer.Option("--attacker-budget", min=1,
                                                 help="Attacker queries (tap, rewrite).")] = 100,
    token_budget: Annotated[int | None, typer.Option("--token-budget", min=1,
                                                        help="Tokens the search may spend (all models).")] = None,
    responses: Annotated[int, typer.Option("--responses", min=1, help="Answers per candidate.")] = 2,
    final_orders: Annotated[int, typer.Option("--final-orders", min=1,
                                              help="Fresh context orders for the final figures.")] = 10,
    selection_orders: Annotated[int, typer.Option("--selection-orders", min=1,
                                                  help="Orders to find the lowest-ranked product.")] = 4,
    confirm: Annotated[int, typer.Option(
        "--confirm", min=0, help="Re-ask the best K candidates (up to 3 x --responses answers, within --budget) "
                                 "before choosing the best; 0 turns it off.")] = 3,
    param: Annotated[list[str] | None, typer.Option(
        "--param", help=f"A method parameter KEY=VALUE; {_METHOD_PARAMS}.")] = None,
    seed: SeedOpt = 0,
    catalog: CatalogOpt = None,
    allow_outside_files: AllowOutsideOpt = False,
    template: TemplateOpt = None,
    max_tokens: MaxTokensOpt = DEFAULT_GENERATE_CONFIG.max_tokens,
    base_url: BaseUrlOpt = None,
    store: StoreOpt = None,
    max_attempts: MaxAttemptsOpt = 5,
    timeout: TimeoutOpt = 60.0,
    reader: ReaderOpt = "heuristic",
    defense: DefenseOpt = None,
    stealth: Annotated[bool, typer.Option(
        "--stealth", help="Measure the best injection's stealth under the local model: the page's perplexity "
                          "ratio with and without it, its length, which --stealth-detectors flag it.")] = False,
    stealth_detectors: Annotated[str | None, typer.Option(
        "--stealth-detectors", help="Detection defenses asked for --stealth, comma-separated, or none "
                                    "(default: perplexity,detector,known-answer); implies --stealth.")] = None,
    max_perplexity_ratio: Annotated[float | None, typer.Option(
        "--max-perplexity-ratio", help="Refuse, before any query, every candidate whose page's perplexity ratio "
                                       "(with / without it, local model) is above R; implies --stealth.")] = None,
    compete: Annotated[int | None, typer.Option(
        "--compete", help="Attack K products at once, each with its own search and --budget (default: the K ranked "
                          "lowest without injection); then measure each with no injection, its own alone and all K "
                          "together on the same fresh orders.", metavar="K")] = None,
    rounds: Annotated[int | None, typer.Option(
        "--rounds", help="With --compete: in rounds 2..R each product searches again (same --budget) with the "
                         "others' injections of the round before in place (a best response); 1-10, default 1.",
                   metavar="R")] = None,
    shared_orders: Annotated[bool, typer.Option(
        "--shared-orders", help="Ask the candidates of a search round on the same context orders (paired "
                                "comparisons; the local model reuses the prompt up to the promoted page). Changes "
                                "which orders a search sees, so decisions differ from a run without it.")] = False,
    early_stop: Annotated[bool, typer.Option(
        "--early-stop", help="Stop decoding once an answer loops (three complete lines repeating earlier ones); "
                             "the answer is stored as that prefix, flagged 'decided'.")] = False,
    verify_stop: Annotated[int, typer.Option(
        "--verify-stop", help="Re-ask a candidate that reaches the stop score up to N more times (within --budget) "
                              "and stop only if it stays there; otherwise the search goes on. 0: stop at once.",
        metavar="N")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Search for a text that, prepended to one product's page (with --method rewrite: the page
    rewritten), makes the engine rank it first (with --compete K: K products at once, each with
    its own search)."""
    from ..attacks import DEFAULT_DETECTORS, Stealth, check_detectors, check_max_ratio
    from ..catalog import load_catalog
    from ..experiments import attach_cache, attack_setup, compete_setup, load_template, model_opener
    from ..store import Store

    one = _one_product(product, compete)
    if rounds is not None and compete is None:
        raise PoiseError("--rounds is for competitions: each product searches again against the others' injections",
                         "add --compete K, or drop --rounds")
    cat = load_catalog(catalog, allow_outside_files=allow_outside_files).category(category)
    if stealth_detectors is not None and not stealth_detectors.strip():  # an unset shell variable: never 'none'
        raise PoiseError("--stealth-detectors is empty (it implies --stealth, scored by the local model)",
                         "name detection defenses, comma-separated, or none for no detectors, or drop "
                         "--stealth-detectors")
    named = DEFAULT_DETECTORS if stealth_detectors is None else stealth_detectors.split(",")
    detectors = check_detectors([d.strip() for d in named if d.strip() not in ("", "none")])
    # naming detectors or a maximum ratio asks for the stealth measurement they are part of
    stealth = stealth or stealth_detectors is not None or check_max_ratio(max_perplexity_ratio) is not None
    err = make_console(stderr=True)
    open_model = model_opener(base_url, max_attempts=max_attempts, timeout=timeout)
    # stealth is scored by a model of its own (a second local model): the engine's stays as it is
    watch = (lambda: Stealth(open_model("local"), max_ratio=max_perplexity_ratio, detectors=detectors,
                             open_model=lambda spec: open_model(spec))) if stealth else None
    # every input checked and every model built (spec, file, URL, key) before anything is created
    options: dict[str, Any] = dict(
        model=model, open_model=open_model, template=load_template(template), method=method,
        params=parse_params(param), attacker=attacker, budget=budget, attacker_budget=attacker_budget,
        token_budget=token_budget, responses=responses, final_orders=final_orders, selection_orders=selection_orders,
        confirm=confirm, seed=seed, catalog=catalog, max_tokens=max_tokens, reader=reader, defenses=defense,
        stealth=watch, shared_orders=shared_orders, early_stop=early_stop, verify_stop=verify_stop)
    setup = (attack_setup(cat, product=one, **options) if compete is None
             else compete_setup(cat, compete=compete, products=product, rounds=1 if rounds is None else rounds,
                                **options))
    with Store(store) as db:
        attach_cache(db, *setup.models)
        with db.open_run(setup.command, setup.config, close=setup.closing) as run:
            say_started(err, run)
            most = (0 if product else selection_orders) + budget + 2 * final_orders
            with progress_bar(err, transient=as_json) as progress:
                task = progress.add_task(f"{method} on {cat.name}", total=most if compete is None
                                         else setup.most_queries)
                stored = setup.run(db, run.id, lambda: progress.advance(task))
                progress.update(task, total=progress.tasks[0].completed)
            data = stored.model_dump(mode="json")
    if compete is not None:
        from ._compete import brief, show_compete

        if as_json:
            emit_json(brief(data))
        else:
            show_compete(data)
        return
    if as_json:
        emit_json(_brief(data))
        return
    show_attack(data)


def _one_product(products: list[str] | None, compete: int | None) -> str | None:
    """The one --product of an ordinary attack (several need --compete)."""
    if compete is None and products and len(products) > 1:
        raise PoiseError(f"--product is given {len(products)} times but one product is promoted at a time",
                         f"name one, or add --compete {len(products)} to attack them at once")
    return products[0] if products and compete is None else None


def _brief(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON a terminal gets: everything but the candidates' full answers."""
    return {**data, "candidates": [{k: v for k, v in c.items() if k != "responses"} for c in data["candidates"]]}


def _num(x: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def show_attack(d: dict[str, Any]) -> None:
    from rich.panel import Panel
    from rich.table import Table

    product = f"{d['product']['brand']} {d['product']['model']}"
    table = Table(title=safe(f"{d['category']}: promoting {product} ({d['method']}, {d['final_orders']} fresh orders)"),
                  title_justify="left", header_style="bold")
    for col in ("", "mean score (95% CI)", "mean rank", "ranked first", "unparsed", "ambiguous"):
        table.add_column(col, justify="right" if col else "left")
    for side in ("before", "after"):
        lo, hi = d[f"score_{side}_ci"]
        table.add_row(side, f"{_num(d[f'score_{side}'])} ({_num(lo)}-{_num(hi)})", _num(d[f"rank_{side}"]),
                      f"{d[f'first_rate_{side}']:.0%}", str(d[f"unparseable_{side}"]),
                      str(d.get(f"ambiguous_{side}") or 0))
    out.print(table)
    from ..attacks import replaces_page

    whole = replaces_page(d.get("method"))  # rewrite: the injection is the whole rewritten page
    out.print(Panel(safe(d["injection"] or ("(no rewrite: the catalog page)" if whole else "(no injection)")),
                    title="rewritten page" if whole else "best injection", title_align="left"))
    first = d["queries_to_first_success"]
    out.print(safe(
        f"{'success' if d['success'] else 'no success'}: {d['recommender_queries']} recommender queries "
        f"({d['search_queries']} in the search and confirmation; stop score first reached after "
        f"{first if first is not None else '-'}), {d['attacker_queries']} attacker queries, "
        f"{len(d['candidates'])} candidates; stopped: {d['stopped_by']}."))
    for line in access_lines(d):
        out.print(safe(line))
    out.print(safe(f"run {d['run_id']}", "dim"))


def access_lines(d: dict[str, Any]) -> list[str]:
    """What a method adds (its own report) and the injection's stealth, a line each."""
    from ..attacks import METHODS, stealth_summary

    lines = []
    summarize = getattr(METHODS.get(str(d.get("method"))), "summarize", None)
    if d.get("method_report") and summarize is not None:
        lines.append(summarize(d["method_report"]))
    if d.get("stealth"):
        lines.append(f"stealth: {stealth_summary(d['stealth'])}")
    # refused by the stealth filter (a method's own refusals, with a reason, are in its line)
    refused = sum(bool(c.get("rejected")) and not c.get("rejection") for c in d["candidates"])
    if refused:
        lines.append(f"{refused} candidates refused by --max-perplexity-ratio (never asked)")
    return lines


# -- transfer -----------------------------------------------------------------------------------
def transfer(
    run_ids: Annotated[list[str], typer.Argument(help="Attack runs whose best injections to carry over.")],
    model: ModelOpt = DEFAULT_MODEL_SPEC,
    template: TemplateOpt = None,
    final_orders: Annotated[int, typer.Option("--final-orders", min=1)] = 10,
    max_tokens: MaxTokensOpt = DEFAULT_GENERATE_CONFIG.max_tokens,
    base_url: BaseUrlOpt = None,
    store: StoreOpt = None,
    max_attempts: MaxAttemptsOpt = 5,
    timeout: TimeoutOpt = 60.0,
    allow_outside_files: AllowOutsideOpt = False,
    reader: ReaderOpt = "heuristic",
    defense: DefenseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-score attack runs' best injections on another model, prompt template or defended
    engine, without searching."""
    from ..attacks import load_sources
    from ..experiments import attach_cache, load_template, model_opener, transfer_setup
    from ..store import Store

    err = make_console(stderr=True)
    tmpl = load_template(template)
    with Store(store, read_only=True) as sources_db:  # the reading side: the attack runs, never written
        sources = load_sources(sources_db, run_ids, allow_outside_files)
    setup = transfer_setup(sources, run_ids=run_ids, model=model, template=tmpl, final_orders=final_orders,
                           open_model=model_opener(base_url, max_attempts=max_attempts, timeout=timeout),
                           max_tokens=max_tokens, reader=reader, defenses=defense)
    with Store(store, create=False) as db:
        attach_cache(db, *setup.models)
        with db.open_run(setup.command, setup.config, close=setup.closing) as run:
            say_started(err, run)
            with progress_bar(err, transient=as_json) as progress:
                task = progress.add_task(f"transfer to {model}", total=setup.most_queries)
                result = setup.run(db, run.id, on_query=lambda: progress.advance(task))
    data = result.model_dump(mode="json")
    if as_json:
        emit_json(data)
        return
    show_transfer(data)


def show_transfer(data: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=safe(f"Transfer to {data['model']} ({data['template']} template)"), title_justify="left",
                  header_style="bold")
    for col in ("category", "product", "source before→after", "target before→after", "target first"):
        table.add_column(col)
    for it in data["items"]:
        table.add_row(safe(it["category"]), safe(it["product"]),
                      f"{_num(it['source_before'])} → {_num(it['source_after'])}",
                      f"{_num(it['target_before'])} → {_num(it['target_after'])}",
                      f"{it['target_first_rate_after']:.0%}")
    out.print(table)
    out.print(safe(f"run {data['run_id']}", "dim"))
