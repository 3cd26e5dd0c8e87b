"""Shared context orders (Evaluator(shared_orders=True)): the candidates of a round are asked on
the same orders, confirmation on one block common to all; the default is a fresh order per query."""

from __future__ import annotations

from poise.attacks import Evaluator
from poise.catalog import sample_catalog
from poise.engine import SearchEngine
from poise.models import get_model
from poise.store import Store


def _evaluator(tmp_path, shared: bool) -> Evaluator:
    category = sample_catalog().category("blender")
    engine = SearchEngine(get_model("openai:fake", base_url="http://127.0.0.1:9/v1", api_key="sk-test"))
    store = Store(tmp_path / "runs")
    return Evaluator(engine, category, store=store, run_id="r", shared_orders=shared)


def test_a_round_shares_its_orders_and_confirmation_shares_one_block(tmp_path):
    ev = _evaluator(tmp_path, shared=True)
    a, b = ev.new_candidate("x", "s", depth=0), ev.new_candidate("y", "s", depth=0)
    c = ev.new_candidate("z", "s", depth=1)
    assert [ev.order_for(a, r) for r in range(2)] == [ev.order_for(b, r) for r in range(2)]
    assert ev.order_for(a, 0) != ev.order_for(a, 1)
    assert {ev.order_for(c, r) for r in range(2)}.isdisjoint({ev.order_for(a, r) for r in range(2)})
    assert [ev.order_for(a, r) for r in range(2, 6)] == [ev.order_for(c, r) for r in range(2, 6)]
    assert all(o in ev.search_orders for o in (ev.order_for(c, 5), ev.order_for(a, 0)))


def test_by_default_every_query_takes_the_next_order(tmp_path):
    ev = _evaluator(tmp_path, shared=False)
    a, b = ev.new_candidate("x", "s"), ev.new_candidate("y", "s")
    got = [ev.order_for(a, 0), ev.order_for(a, 1), ev.order_for(b, 0), ev.order_for(b, 1)]
    assert got == ev.search_orders[:4]


def _search_orders_asked(tmp_path, *flags: str) -> tuple[set[tuple[str, ...]], dict]:
    """``poise attack`` from the command line against a wire fake that ranks by name (the promoted Oster last): the
    distinct context orders of the search's six queries, and the run's recorded configuration."""
    from .test_attacks import immune
    from .test_cli import poise
    from .wirefake import WireFake, context_documents

    with WireFake([], responder=immune) as fake:
        out = poise("attack", "-c", "blender", "--product", "Oster Pro 1200", "--model", "openai:fake",
                    "--base-url", fake.url, "--budget", "6", "--final-orders", "1", "--confirm", "0", "--json",
                    *flags, store=tmp_path, env={"OPENAI_API_KEY": "sk-test"})
        requests = list(fake.requests)
    assert out.returncode == 0, out.stderr
    search = requests[:6]  # --product: no selection; then the search's budget; then the final orders
    orders = {tuple(title for title, _ in context_documents(r)) for r in search}
    with Store(tmp_path) as store:
        config = store.runs()[0].config
    return orders, config


def test_the_cli_flags_reach_the_search_and_the_runs_configuration(tmp_path):
    shared, config = _search_orders_asked(tmp_path / "shared", "--shared-orders", "--early-stop")
    plain, plain_config = _search_orders_asked(tmp_path / "plain")
    assert config["shared_orders"] is True and config["early_stop"] is True
    assert "shared_orders" not in plain_config and "early_stop" not in plain_config  # older runs resume as before
    assert len(plain) == 6  # a fresh order per query
    assert len(shared) < len(plain)  # the round's candidates were asked on common orders
