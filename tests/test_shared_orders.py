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
