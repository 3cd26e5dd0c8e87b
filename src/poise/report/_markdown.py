"""The report as Markdown, for terminals and CI logs: the same tables, no figures.

Run text is untrusted. Everything written from a run goes through ``md_text`` or
``md_block``: terminal escape sequences and control characters are dropped, ``& < >`` become
entities (no HTML passes through), and the characters Markdown acts on are backslash-escaped
(brackets, emphasis, code, table pipes, headings, math; list markers at the start of a line), so
an answer cannot open a link, an image, a table cell, a list, a formula or a heading of its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from .._text import ESCAPE_SEQUENCES, UNSAFE_CHARS, reveal_hidden
from ..experiments import FACTORS, POOLED
from ._data import CallView, ReportData, RunView
from ._html import fmt_ci, fmt_num, fmt_p, fmt_secs, stars

_ESCAPES = ESCAPE_SEQUENCES
_CONTROLS = UNSAFE_CHARS  # controls, bidi, zero-width: one definition for every view
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")  # '&' that would start an entity reference
_SPECIAL = re.compile(r"[\\`*_\[\]#|~$]")  # '$': GitHub reads $...$ as math
_LINE_START = re.compile(r"^(\s*)(\d+)([.)])")


def md_text(text: Any) -> str:
    """Untrusted text for one line of Markdown (a table cell, a heading, a list item)."""
    text = _CONTROLS.sub("", _ESCAPES.sub("", reveal_hidden(str(text))))
    text = " ".join(text.split())
    text = _ENTITY.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def md_line(text: str) -> str:
    """Escaped text (``md_text``) that begins a line: what would open a list ("1.", "-", "+") or
    underline a heading ("=") is escaped too."""
    line = _LINE_START.sub(r"\1\2\\\3", text)
    return "\\" + line if line.startswith(("=", "-", "+")) else line


def md_block(text: str, width: int = 0) -> str:
    """Untrusted multi-line text as a block quote that shows every line literally."""
    lines = [md_line(md_text(raw)) for raw in str(text).splitlines() or [""]]
    out = []
    for k, line in enumerate(lines):
        last = k == len(lines) - 1 or not lines[k + 1]
        out.append("> " + line + ("" if last or not line else "\\") if line else ">")
    return "\n".join(out)


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """A pipe table; cells must already be escaped (numbers, or ``md_text``)."""
    align = ["---:" if k in right else "---" for k in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(data: ReportData) -> str:
    """The report of ``data`` (see ``gather_report``) as Markdown."""
    parts = [f"# {md_text(data.title)}", "",
             f"poise {md_text(data.version)}, generated {md_text(data.generated)}, store {md_text(data.store)}", ""]
    if data.attacks:
        parts += _attacks_summary(data.attacks)
    for run in data.runs:
        parts += _run(run)
    return "\n".join(parts).rstrip() + "\n"


def _run(run: RunView) -> list[str]:
    r, c = run.record, run.cost
    out = [f"## {md_text(run.kind)} run {md_text(run.id)} ({md_text(r.status)})", ""]
    out += [f"*Note: {md_text(n)}*\n" for n in run.notes]
    out += ["### Configuration", "", table(["setting", "value"], [["started", md_text(r.created)]]
                                            + [[md_text(k), md_text(v)] for k, v in run.config]), ""]
    out += ["### Cost", "", table(
        ["calls", "cached", "failed", "unparseable", "ambiguous", "prompt tokens", "completion tokens", "model time",
         "wall time"],
        [[fmt_num(c.calls), fmt_num(c.cached), fmt_num(c.failed), fmt_num(c.unparsed), fmt_num(c.ambiguous),
          fmt_num(c.prompt_tokens), fmt_num(c.completion_tokens), fmt_secs(c.model_time_s), fmt_secs(c.wall_time_s)]],
        right=range(9)), ""]
    if run.rankings:
        out += ["### Rankings per category", "",
                "Mean score over the run's parseable answers (n - rank + 1; unlisted 0), best first.", ""]
        for cat in run.rankings:
            out += [f"**{md_text(cat.category)}** ({cat.calls} answer{'' if cat.calls == 1 else 's'})", "", table(
                ["#", "product", "mean score", "mean rank", "listed", "first"],
                [[str(k), md_text(row["product"]), fmt_num(row["mean_score"]), fmt_num(row["mean_rank"]),
                  str(row["listed"]), str(row["first"])] for k, row in enumerate(cat.rows, start=1)],
                right=(0, 2, 3, 4, 5)), ""]
    if run.natural is not None:
        out += _natural(run)
    if run.attack is not None:
        out += _attack(run.attack)
    if run.transfer is not None:
        out += _transfer(run.transfer)
    if run.defend is not None:
        out += _defend(run.defend)
    if run.defend_clean is not None:
        out += _defend_clean(run.defend_clean)
    if run.compete is not None:
        out += _compete(run.compete)
    if run.calls:
        out += ["### Calls", ""]
        for call in run.calls:
            out += _call(call)
        if run.calls_hidden:
            out += [f"{run.calls_hidden} more calls are in the store.", ""]
    return out


def _call(call: CallView) -> list[str]:
    state = "failed" if call.error else "ambiguous" if call.ambiguous else "unparseable" if call.parseable is False \
        else "parsed"
    out = [f"#### {md_text(call.category)}: {md_text(call.query)}", "",
           f"call {call.id}, {md_text(call.model)}, seed {fmt_num(call.seed)}, "
           f"{call.prompt_tokens}+{call.completion_tokens} tokens, {fmt_secs(call.latency_s)}"
           f"{', cached' if call.cached else ''}, {state}", ""]
    if call.error:
        out += [f"Error: {md_text(call.error)}", ""]
    if call.ambiguous:
        out += ["The answer can be read more than one way, so it is not scored: "
                f"{md_text((call.reason or '')[11:])}", ""]
    elif call.parseable is False:
        out += [f"No ranking could be read: {md_text(call.reason or '')}", ""]
    if call.ranking:
        out += [table(["rank", "product", "score", "context position"],
                      [[fmt_num(p.rank), md_text(p.product), str(p.score), fmt_num(p.position)] for p in call.ranking],
                      right=(0, 2, 3)), ""]
    if call.response is not None:
        out += ["Response:", "", md_block(call.response), ""]
    return out


def _natural(run: RunView) -> list[str]:
    natural = run.natural
    assert natural is not None  # only natural runs are rendered here
    analyses = natural.analyses
    header = ["category", "trials", "unparsed", "ambiguous", *[f"F {f}" for f in FACTORS],
              *[f"ηp² {f}" for f in FACTORS]]

    def f_cell(test: Any) -> str:
        return f"{fmt_num(test.f)}{md_text(stars(test.p))} (p {fmt_p(test.p)})"

    rows = [[("**pooled**" if name == POOLED else md_text(name)), str(a.trials), str(a.unparseable), str(a.ambiguous)]
            + [f_cell(a.one_way[f]) for f in FACTORS]
            + [f"{fmt_num(a.joint[f].partial_eta_sq)} {fmt_ci(a.joint_eta_ci[f])}" for f in FACTORS]
            for name, a in analyses.items()]
    n = max(len(a.position_curve) for a in analyses.values())
    curve = [[md_text(name), _spark(a.position_curve)] + [fmt_num(v) for v in a.position_curve]
             + [""] * (n - len(a.position_curve)) for name, a in analyses.items()]
    return ["### What drives the rankings", "",
            "One-way F (\\* p<.05, \\*\\* p<.01, \\*\\*\\* p<.001) and the partial eta squared of the joint "
            f"three-factor ANOVA (Type II) with its 95% interval from {md_text(natural.intervals)}.", "",
            table(header, rows, right=range(1, len(header))), "",
            *[f"{md_line(md_text(name))}: answers left out: "
              + "; ".join(f"{md_text(reason)} ({k})" for reason, k in a.unread_reasons.items()) + "\n"
              for name, a in analyses.items() if name != POOLED and a.unread_reasons],
            "### Position bias: mean score by context position", "",
            table(["category", "curve"] + [str(p) for p in range(1, n + 1)], curve, right=range(2, n + 2)), ""]


def _spark(values: Sequence[float]) -> str:
    bars = "▁▂▃▄▅▆▇█"
    finite = [v for v in values if math.isfinite(v)]
    top = max(finite) if finite else 0
    return "".join(" " if not math.isfinite(v) else bars[min(7, int(7 * v / top))] if top > 0 else bars[0]
                   for v in values)


def _attacks_summary(attacks: list[dict[str, Any]]) -> list[str]:
    rows = [[md_text(a["category"]), md_text(a["product_name"]), md_text(a["method"]), fmt_num(a["rank_before"]),
             fmt_num(a["rank_after"]), fmt_num(a["score_before"]), fmt_num(a["score_after"]),
             "yes" if a["success"] else "no", fmt_num(a["recommender_queries"]), *_stealth_cells(a),
             md_text(a["run_id"])]
            for a in sorted(attacks, key=lambda a: str(a["category"]))]
    return ["## Attacks", "",
            "Rank of the promoted product: n + 1 - its mean score (1 = recommended first).", "",
            table(["category", "promoted product", "method", "rank before", "rank after", "score before",
                   "score after", "success", "recommender queries", "perplexity ratio", "flagged by", "run"], rows,
                  right=(3, 4, 5, 6, 8, 9)), "",
            "Perplexity ratio: the promoted page's perplexity with the injection over without it (local model; "
            "`--stealth`); flagged by: the detection defenses that flag the injected page.", ""]


def _stealth_cells(a: dict[str, Any]) -> list[str]:
    s = a.get("stealth")
    if not isinstance(s, dict):
        return ["-", "-"]
    return [fmt_num(s.get("perplexity_ratio")), md_text(", ".join(s.get("flagged_by") or []) or "none")]


def _access_rows(a: dict[str, Any]) -> list[list[str]]:
    """The method's own report and the injection's stealth, a row each (when the run has them)."""
    from ..attacks import METHODS, stealth_summary

    rows = []
    summarize = getattr(METHODS.get(str(a.get("method"))), "summarize", None)
    if isinstance(a.get("method_report"), dict) and summarize is not None:
        rows.append([md_text(a["method"]), md_text(summarize(a["method_report"]))])
    if isinstance(a.get("stealth"), dict):
        rows.append(["stealth", md_text(stealth_summary(a["stealth"]))])
    return rows


def _attack(a: dict[str, Any]) -> list[str]:
    rows = [
        ["method", md_text(a["method"])], ["recommender", md_text(a["model"] or "-")],
        ["mean score before", f"{fmt_num(a['score_before'])} {fmt_ci(a['score_before_ci'])}"],
        ["mean score after", f"{fmt_num(a['score_after'])} {fmt_ci(a['score_after_ci'])}"],
        ["mean rank before, after", f"{fmt_num(a['rank_before'])}, {fmt_num(a['rank_after'])}"],
        ["success", "yes" if a["success"] else "no"],
        ["recommender queries", fmt_num(a["recommender_queries"])],
        ["attacker queries", fmt_num(a["attacker_queries"])],
        ["queries to first success", fmt_num(a["queries_to_first_success"])]]
    if a["stopped_by"]:
        rows.append(["search stopped by", md_text(a["stopped_by"])])
    rows += _access_rows(a)
    out = [f"### Attack on {md_text(a['product_name'])} ({md_text(a['category'])})", "", table(["", ""], rows), "",
           f"The {a.get('text_label') or 'injection'}:", "", md_block(a["injection"]), "",
           f"#### Candidate injections ({len(a['candidates'])})", ""]
    out += _tree(a["tree"], 0)
    return [*out, ""]


def _tree(nodes: list[dict[str, Any]], depth: int) -> list[str]:
    out = []
    for node in nodes:
        c = node["c"]
        mark = (f" (re-asked; search mean {fmt_num(c.get('search_mean_score'))})" if c.get("confirmed") else "") \
            + (" (kept)" if node["final"] else "")
        if c.get("rejection"):  # refused by its method (rewrite), never asked
            mark += f" (rejected: {md_text(c['rejection'])})"
        out.append(f"{'  ' * depth}- \\#{md_text(c['id'])} {md_text(c['strategy'])}, mean score "
                   f"{fmt_num(c['mean_score'])}{mark}: {md_text(c['injection'][:300]) or '(no injection)'}")
        out += _tree(node["children"], depth + 1)
    return out


def _transfer(t: dict[str, Any]) -> list[str]:
    rows = [[md_text(i["category"]), md_text(i["product"]), fmt_num(i["source_before"]), fmt_num(i["source_after"]),
             f"{fmt_num(i['target_before'])} {fmt_ci(i['target_before_ci'])}",
             f"{fmt_num(i['target_after'])} {fmt_ci(i['target_after_ci'])}"] for i in t["items"]]
    sources = ", ".join(md_text(s) for s in t["source_runs"]) or "-"
    return [f"### Transfer to {md_text(t['model'] or 'the target model')}", "",
            f"Source runs: {sources}.", "",
            table(["category", "product", "source before", "source after", "target before", "target after"],
                  rows, right=(2, 3, 4, 5)), ""]


def _pct(x: Any) -> str:
    return "-" if x is None else f"{fmt_num(100 * x, 0)}%"


def _gain(x: Any) -> str:
    return "-" if x is None else ("+" if x > 0 else "") + fmt_num(x, 1)


def _defend(d: dict[str, Any]) -> list[str]:
    out = ["### Defenses compared", "",
           "τ and top-1: agreement with the plain engine's consensus; first: final answers with the promoted "
           "product first under the search run against each engine (✓: success); rank gain under that search and "
           "under the plain engine's injection; cost against the plain engine; TPR / FPR: attacked pages flagged / "
           "clean pages flagged.", ""]
    if len(d["categories"]) > 1 and d["pooled"]:
        out += [table(["configuration", "success", "first", "rank gain", "transfer gain", "τ", "top-1", "tokens ×",
                       "cut in first", "cut in rank gain"],
                      [[md_text(p["label"]), _pct(p["success_rate"]), _pct(p["first_rate"]), _gain(p["rank_gain"]),
                        _gain(p["transfer_gain"]), fmt_num(p["tau"]), _pct(p["top1"]), fmt_num(p["tokens_x"], 1),
                        _pct(p["first_rate_cut"]), _pct(p["rank_gain_cut"])] for p in d["pooled"]],
                      right=range(1, 10)), ""]
    for cat in d["categories"]:
        rows = [[md_text(r["label"]), md_text(r["kinds"]), fmt_num(r["tau"]), _pct(r["top1"]),
                 "∞" if r["position_f"] is None and r["position_p"] == 0 else fmt_num(r["position_f"], 1),
                 _pct(r["first_rate"]) + (" ✓" if r["success"] else ""), _gain(r["rank_gain"]),
                 _gain(r["transfer_gain"]), fmt_num(r["calls_x"], 1), fmt_num(r["tokens_x"], 1),
                 f"{_pct(r['tpr'])} / {_pct(r['fpr'])}" if r["detection"] else "-",
                 fmt_num(r["certified_share"]) if r["certificate"] else "-"] for r in cat["rows"]]
        out += [f"#### {md_text(cat['category'])}: promoting {md_text(cat['product'] or '-')}", "",
                *([f"Consensus: {fmt_num(cat['consensus_orders'], 0)} order{'s' * (cat['consensus_orders'] != 1)} of "
                   "its own." if cat["consensus_orders"]
                   else "Consensus: the plain engine's answers on the clean orders."]
                  + ([f"Its top-1 is the same in {_pct(cat['consensus_stability'])} of bootstrap resamples.", ""]
                     if cat["consensus_stability"] is not None else [""])),
                table(["configuration", "kind", "τ", "top-1", "position F", "first", "rank gain", "transfer gain",
                       "calls ×", "tokens ×", "TPR / FPR", "certified"], rows, right=range(2, 12)), ""]
        for cv in cat["curves"]:
            out += [f"Trade-off over {md_text(cv['param'])} ({md_text(cv['source'])}):", "",
                    table([md_text(cv["param"]), "τ", "top-1", "first", "rank gain", "tokens ×"],
                          [[md_text(p["value"]), fmt_num(p["tau"]), _pct(p["top1"]), _pct(p["first_rate"]),
                            _gain(p["rank_gain"]), fmt_num(p["tokens_x"], 1)] for p in cv["points"]],
                          right=range(1, 6)), ""]
    return out


def _defend_clean(d: dict[str, Any]) -> list[str]:
    out = ["### Defenses compared on clean answers (no attack)", "",
           "τ and top-1: agreement with the plain engine's consensus (Borda count over its answers); position F: "
           "position bias; calls and tokens per answer against the plain engine.", ""]
    if len(d["categories"]) > 1 and d["pooled"]:
        out += [table(["configuration", "categories", "τ", "top-1", "position F", "calls ×", "tokens ×"],
                      [[md_text(p["label"]), fmt_num(p["categories"], 0), fmt_num(p["tau"]), _pct(p["top1"]),
                        fmt_num(p["position_f"], 1), fmt_num(p["calls_x"], 1), fmt_num(p["tokens_x"], 1)]
                       for p in d["pooled"]], right=range(1, 7)), ""]
    for cat in d["categories"]:
        rows = [[md_text(r["label"]), fmt_num(r["tau"]), _pct(r["top1"]),
                 f"{fmt_num(r['readable'], 0)}/{fmt_num(r['answers'], 0)}",
                 "∞" if r["position_f"] is None and r["position_p"] == 0 else fmt_num(r["position_f"], 1),
                 fmt_num(r["calls"], 1), fmt_num(r["calls_x"], 1), fmt_num(r["tokens_x"], 1)] for r in cat["rows"]]
        out += [f"#### {md_text(cat['category'])}", "",
                f"{fmt_num(cat['orders'], 0)} clean orders; model {md_text(cat['model'] or '-')}.", "",
                _consensus_line(cat["consensus"]), "",
                table(["configuration", "τ", "top-1", "read", "position F", "calls per answer", "calls ×",
                       "tokens ×"], rows, right=range(1, 8)), ""]
        for cv in cat["curves"]:
            out += [f"Trade-off over {md_text(cv['param'])} ({md_text(cv['source'])}):", "",
                    table([md_text(cv["param"]), "τ", "top-1", "calls ×", "tokens ×"],
                          [[md_text(p["value"]), fmt_num(p["tau"]), _pct(p["top1"]), fmt_num(p["calls_x"], 1),
                            fmt_num(p["tokens_x"], 1)] for p in cv["points"]], right=range(1, 5)), ""]
    return out


def _consensus_line(c: dict[str, Any]) -> str:
    """The consensus's first products with their Borda points, what it rests on, how settled its top-1 is."""
    top = ", ".join(f"**{md_text(p['product'])}** {fmt_num(p['points'], 0)}" for p in c["top"])
    own = c["own_orders"]
    rests = (f"on {fmt_num(own, 0)} order{'s' * (own != 1)} of its own" if own
             else "of the plain engine on the clean orders")
    more = f" and {c['more']} more" if c["more"] else ""
    line = (f"Consensus (Borda points): {top or '-'}{more}; over "
            f"{fmt_num(c['answers'], 0)} answer{'s' * (c['answers'] != 1)} {rests}.")
    stable = c["stability"]
    return line + ("" if stable is None else f" Its top-1 is the same in {_pct(stable)} of bootstrap resamples.")


def _compete(d: dict[str, Any]) -> list[str]:
    def name(p: dict[str, Any]) -> str:
        return md_text(f"{p.get('brand') or ''} {p.get('model') or ''}".strip())

    rows = [[name(p), fmt_num(p["baseline"]["rank"]), fmt_num(p["alone"]["rank"]), fmt_num(p["together"]["rank"]),
             _gain(p["gain_alone"]), _gain(p["gain_together"]), _pct(p["alone"]["first_rate"]),
             _pct(p["together"]["first_rate"]), fmt_num(p["search_queries"])] for p in d["products"]]
    rounds = d.get("rounds") or 1
    sight = ("the others' injections out of sight" if rounds == 1 else
             f"the others' injections out of sight in round 1, in place (the round before's) in rounds 2-{rounds}")
    out = [f"### Competition: {fmt_num(d['k'])} products of {md_text(d['category'])} attacked at once", "",
           f"Each with its own {md_text(d['method'])} search, {sight}; then measured on "
           f"the same {fmt_num(d['final_orders'])} fresh orders with no injection, its own alone and all together. "
           "Rank: n + 1 - mean score (1 = first); gain: ranks gained over no injection; first: share of answers "
           "naming it first.", "",
           table(["product", "rank: none", "alone", "together", "gain alone", "gain together", "first alone",
                  "first together", "search queries"], rows, right=range(1, 9)), "",
           f"Named first most often together: {md_text(d['winner'] or 'none of them')}; a product not competing "
           f"first in {_pct(d['first_other'])} of the together answers, unreadable {_pct(d['unread_together'])}.", ""]
    if rounds > 1:
        out += ["Gain together with the round-1 injections: " + ", ".join(
            f"{name(p)} {_gain(p.get('gain_together_round1'))}" for p in d["products"]) + ".", ""]
        out += _compete_rounds(d["products"], rounds, name)
    for p in d["products"]:
        out += [f"{md_line(name(p))}'s injection:", "", md_block(p["injection"] or "(no injection found)"), ""]
    return out


def _compete_rounds(products: list[dict[str, Any]], rounds: int, name: Callable[[dict[str, Any]], str]) -> list[str]:
    """Each product's best search score per round, as the terminal and the HTML report show it."""
    def cell(r: dict[str, Any]) -> str:
        return fmt_num(r.get("best_search_score")) + ("" if r.get("injection") else " (none found)")

    rows = [[name(p), *[cell(r) for r in (p.get("rounds") or [])[:rounds]]] for p in products]
    rows = [row + ["-"] * (rounds + 1 - len(row)) for row in rows]
    return ["Best search score per round (mean score on the search orders): round 1 alone, then against the others' "
            "injections of the round before; a round that found nothing keeps the injection it had.", "",
            table(["product", *[f"round {r}" for r in range(1, rounds + 1)]], rows, right=range(1, rounds + 1)), ""]
