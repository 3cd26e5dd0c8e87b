"""``poise attack`` and ``poise transfer``: promote a product, then carry the injection over."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.panel import Panel
from rich.table import Table

from .._errors import CatalogError, PoiseError, StoreError
from ..attacks import METHODS, Budget, find_product, get_method, run_attack, write_attack_json
from ..attacks._evaluate import Evaluator
from ..attacks._run import Figures
from ..catalog import load_catalog
from ..engine import DEFAULT_GENERATE_CONFIG, Recommender, SearchEngine
from ..models import DEFAULT_MODEL_SPEC
from ..store import Store
from ._app import (BaseUrlOpt, CatalogOpt, JsonOpt, MaxAttemptsOpt, MaxTokensOpt, ModelOpt, StoreOpt, TemplateOpt, app,
                   attach_cache, catalog_ref, claim_or_start, inputs_hash, load_template, open_model, out, run_config)
from ._app import (AllowOutsideOpt, DefenseOpt, ReaderOpt, TimeoutOpt, defended, defense_identity, open_reader,
                   reader_models)
from ._render import emit_json, make_console, note, progress_bar, safe

def _params(items: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--param")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


@app.command()
def attack(
    category: Annotated[str, typer.Option("--category", "-c", help="The category to attack.")],
    product: Annotated[Optional[str], typer.Option(
        "--product", "-p", help="The product to promote (default: the one ranked lowest without injection).")] = None,
    method: Annotated[str, typer.Option("--method", help=f"One of: {', '.join(METHODS)}.")] = "strategies",
    model: ModelOpt = DEFAULT_MODEL_SPEC,
    attacker: Annotated[Optional[str], typer.Option(
        "--attacker", help="The attacker model spec for --method tap (default: the --model).")] = None,
    budget: Annotated[int, typer.Option("--budget", min=1, help="Recommender queries the search may spend.")] = 46,
    attacker_budget: Annotated[int, typer.Option("--attacker-budget", min=1, help="Attacker queries (tap).")] = 100,
    token_budget: Annotated[Optional[int], typer.Option("--token-budget", min=1,
                                                        help="Tokens the search may spend (all models).")] = None,
    responses: Annotated[int, typer.Option("--responses", min=1, help="Answers per candidate.")] = 2,
    final_orders: Annotated[int, typer.Option("--final-orders", min=1,
                                              help="Fresh context orders for the final figures.")] = 10,
    selection_orders: Annotated[int, typer.Option("--selection-orders", min=1,
                                                  help="Orders to find the lowest-ranked product.")] = 4,
    confirm: Annotated[int, typer.Option(
        "--confirm", min=0, help="Re-ask the best K candidates (up to 3 x --responses answers, within --budget) "
                                 "before choosing the best; 0 turns it off.")] = 3,
    param: Annotated[Optional[list[str]], typer.Option("--param", help="A method parameter KEY=VALUE.")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
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
    as_json: JsonOpt = False,
) -> None:
    """Search for a text that, prepended to one product's page, makes the engine rank it first."""
    cat = load_catalog(catalog, allow_outside_files=allow_outside_files).category(category)
    params = _params(param)
    if method not in METHODS:
        raise PoiseError(f"unknown attack method {method!r}", f"choose one of {', '.join(METHODS)}")
    get_method(method, **params)  # validates the parameters before any model loads
    if attacker is not None and not METHODS[method].needs_attacker:
        raise PoiseError(f"--attacker is used only by methods that ask an attacker model, not by {method!r}",
                         f"drop --attacker, or choose --method {' or '.join(m for m in METHODS if METHODS[m].needs_attacker)}")
    if product is not None:
        find_product(cat, product)
    tmpl = load_template(template)
    err = make_console(stderr=True)
    # every model is built (spec, file, URL, key checked) before anything is created
    llm = open_model(model, base_url, None, max_attempts=max_attempts, timeout=timeout)
    attacker_llm = None
    if METHODS[method].needs_attacker:
        attacker_llm = llm if (attacker or model) == model else open_model(attacker, base_url, None,
                                                                           max_attempts=max_attempts, timeout=timeout)
        params["attacker"] = attacker_llm
    read = open_reader(reader, base_url, max_attempts, timeout)
    config = DEFAULT_GENERATE_CONFIG.model_copy(update={"max_tokens": max_tokens})
    # the search runs against the defended engine itself (adaptive evaluation)
    engine, defense_models = defended(SearchEngine(llm, template=tmpl, config=config), defense, read, base_url,
                                      max_attempts, timeout)
    with Store(store) as db:
        attach_cache(db, llm, attacker_llm, *reader_models(read), *defense_models)
        the_budget = Budget(recommender_queries=budget, attacker_queries=attacker_budget, tokens=token_budget)
        run_cfg = run_config(
            category=cat.name, product=product, method=method, params=_params(param), model=model,
            attacker=(attacker or model) if attacker_llm else None, budget=budget, attacker_budget=attacker_budget,
            token_budget=token_budget, responses=responses, final_orders=final_orders,
            selection_orders=selection_orders, confirm=confirm, seed=seed, catalog=catalog_ref(catalog),
            template=tmpl.name, reader=read.name, defenses=engine.identity().get("defenses", []),
            generate=config.model_dump(mode="json"), base_url=llm.identity().get("base_url"),
            inputs=inputs_hash(cat, tmpl, llm.identity(), config,
                               attacker_llm.identity() if attacker_llm is not None else None, *defense_identity(engine)))
        run_id, resumed = claim_or_start(db, "attack", run_cfg, err)
        if resumed:
            note(err, f"resuming run {run_id}: {len(db.done_tasks(run_id))} queries already made")
        most = (0 if product else selection_orders) + budget + 2 * final_orders
        try:
            with progress_bar(err, transient=as_json) as progress:
                task = progress.add_task(f"{method} on {cat.name}", total=most)
                result = run_attack(engine, cat, get_method(method, **params), store=db, run_id=run_id,
                                    product=product, seed=seed, budget=the_budget, responses_per_candidate=responses,
                                    selection_orders=selection_orders, final_orders=final_orders,
                                    confirm=confirm, on_query=lambda: progress.advance(task), reader=read)
                progress.update(task, total=progress.tasks[0].completed)
        except BaseException as exc:
            db.finish_run(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                          exc.one_line() if isinstance(exc, PoiseError) else type(exc).__name__)
            raise
        data = write_attack_json(result, db, seed)
        db.finish_run(run_id)
        llm.close()
        read.close()
    if as_json:
        emit_json(_brief(data))
        return
    show_attack(data)


def _brief(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON a terminal gets: everything but the candidates' full answers."""
    return {**data, "candidates": [{k: v for k, v in c.items() if k != "responses"} for c in data["candidates"]]}


def _finite(value: Any) -> Any:
    """NaN (no parseable answer) as null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _num(x: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def show_attack(d: dict[str, Any]) -> None:
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
    out.print(Panel(safe(d["injection"] or "(no injection)"), title="best injection", title_align="left"))
    first = d["queries_to_first_success"]
    out.print(safe(
        f"{'success' if d['success'] else 'no success'}: {d['recommender_queries']} recommender queries "
        f"({d['search_queries']} in the search and confirmation; stop score first reached after "
        f"{first if first is not None else '-'}), {d['attacker_queries']} attacker queries, "
        f"{len(d['candidates'])} candidates; stopped: {d['stopped_by']}."))
    out.print(safe(f"run {d['run_id']}", "dim"))


# -- transfer -----------------------------------------------------------------------------------
@app.command()
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
    tmpl = load_template(template)
    err = make_console(stderr=True)
    with Store(store, read_only=True) as sources_db:  # the reading side: the attack runs, never written
        sources = [_source(sources_db, rid, allow_outside_files) for rid in run_ids]
    llm = open_model(model, base_url, None, max_attempts=max_attempts, timeout=timeout)
    config = DEFAULT_GENERATE_CONFIG.model_copy(update={"max_tokens": max_tokens})
    read = open_reader(reader, base_url, max_attempts, timeout)
    engine, defense_models = defended(SearchEngine(llm, template=tmpl, config=config), defense, read, base_url,
                                      max_attempts, timeout)
    with Store(store, create=False) as db:
        attach_cache(db, llm, *reader_models(read), *defense_models)
        run_cfg = run_config(source_runs=list(run_ids), model=model, template=tmpl.name, final_orders=final_orders,
                             generate=config.model_dump(mode="json"), base_url=llm.identity().get("base_url"),
                             reader=read.name, defenses=engine.identity().get("defenses", []),
                             inputs=inputs_hash([(src, cat) for _, src, cat in sources], tmpl, llm.identity(), config,
                                                *defense_identity(engine)))
        run_id, _ = claim_or_start(db, "transfer", run_cfg, err)
        items = []
        try:
            with progress_bar(err, transient=as_json) as progress:
                task = progress.add_task(f"transfer to {model}", total=2 * final_orders * len(sources))
                for record, src, cat in sources:
                    items.append(_transfer_one(engine, db, run_id, record, src, cat, final_orders,
                                               lambda: progress.advance(task), read))
        except BaseException as exc:
            db.finish_run(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                          exc.one_line() if isinstance(exc, PoiseError) else type(exc).__name__)
            raise
        data = {"run_id": run_id, "source_runs": list(run_ids), "model": model, "template": tmpl.name, "items": items}
        (db.run_dir(run_id) / "transfer.json").write_text(json.dumps(data, ensure_ascii=False, indent=1))
        db.finish_run(run_id)
        llm.close()
    if as_json:
        emit_json(data)
        return
    table = Table(title=safe(f"Transfer to {model} ({tmpl.name} template)"), title_justify="left", header_style="bold")
    for col in ("category", "product", "source before→after", "target before→after", "target first"):
        table.add_column(col)
    for it in items:
        table.add_row(safe(it["category"]), safe(it["product"]),
                      f"{_num(it['source_before'])} → {_num(it['source_after'])}",
                      f"{_num(it['target_before'])} → {_num(it['target_after'])}",
                      f"{it['target_first_rate_after']:.0%}")
    out.print(table)
    out.print(safe(f"run {run_id}", "dim"))


def _source(db: Store, rid: str, allow_outside_files: bool = False) -> tuple[Any, dict[str, Any], Any]:
    """An attack run to carry over: its record, its attack.json and its category, read back
    from the catalog the attack ran on."""
    record = db.run(rid)
    path = db.run_dir(rid) / "attack.json"
    if record.command != "attack" or not path.is_file():
        raise StoreError(f"run {rid} is not a finished attack run", "pass the id of a run of `poise attack`")
    src = json.loads(path.read_text(encoding="utf-8"))
    cat = load_catalog(attack_catalog(record, db.dir), allow_outside_files=allow_outside_files)
    return record, src, cat.category(src["category"])


def attack_catalog(record, store_dir: Path) -> str | None:
    """The catalog an attack ran on: the bundled one (None), or its path. Runs since this
    version record an absolute path; an older run's relative path is tried against the folder
    the store lives in (where the attack most likely ran), the store itself, then here."""
    ref = record.config.get("catalog")
    if ref in (None, "sample"):
        return None
    path = Path(ref).expanduser()
    tried = [path] if path.is_absolute() else list(dict.fromkeys(
        p.resolve() for p in (store_dir.parent / path, store_dir / path, Path.cwd() / path)))
    for candidate in tried:
        if candidate.exists():
            return str(candidate)
    raise CatalogError(
        f"the catalog of attack run {record.id} is not found: {ref!r} (looked at "
        + ", ".join(str(p) for p in tried) + ")",
        "put the catalog back where the attack read it, or run `poise transfer` from the folder the attack ran in")


def _transfer_one(engine: Recommender, db: Store, run_id: str, record, src: dict[str, Any], cat, final_orders: int,
                  tick, reader=None) -> dict[str, Any]:
    index = src["product"]["index"]
    p = cat.products[index]
    if (p.brand, p.model) != (src["product"]["brand"], src["product"]["model"]):
        raise PoiseError(f"the catalog of run {src['run_id']} has changed: product {index} is now {p.name!r}")
    ev = Evaluator(engine, cat, store=db, run_id=run_id, query=src.get("query"), seed=record.config.get("seed", 0),
                   reader=reader)
    ev.target = index
    before, after, unp = [], [], {"before": 0, "after": 0}
    for k, order in enumerate(ev.fresh_orders("final", final_orders)):
        for side, text, scores in (("before", None, before), ("after", src["injection"] or None, after)):
            ranking, _ = ev.ask(f"{src['run_id']}/{side}/order={k}", order, text, f"transfer_{side}",
                                {"source_run": src["run_id"]})
            tick()
            s = ev.score(ranking)
            if s is None:
                unp[side] += 1
            else:
                scores.append(s)
    fb, fa = Figures(before, unp["before"], ev.n), Figures(after, unp["after"], ev.n)
    return {k: _finite(v) for k, v in {"category": cat.name, "product": p.name, "source_run": src["run_id"], "injection": src["injection"],
            "source_before": src["score_before"], "source_after": src["score_after"],
            "target_before": fb.mean_score, "target_after": fa.mean_score,
            "target_before_ci": fb.ci(0), "target_after_ci": fa.ci(1),
            "target_rank_before": fb.mean_rank, "target_rank_after": fa.mean_rank,
            "target_first_rate_after": fa.first_rate,
            "target_unparseable_before": unp["before"], "target_unparseable_after": unp["after"]}.items()}
