"""Detection defenses on the bundled model: how the perplexity filter's thresholds sit against
clean pages and injected ones, and the detection rates of the model-based detectors.

    python benchmarks/bench_detection.py perplexity          # every clean page of the sample catalog,
                                                             # and every seed injection on 3 categories
    python benchmarks/bench_detection.py rates known-answer  # blender and coffee maker: 16 clean, 16 injected pages
    python benchmarks/bench_detection.py rates detector:model=engine
    python benchmarks/bench_detection.py pages instruction-filter            # the sample catalog's clean pages and
                                                             # every seed injection on every category
    python benchmarks/bench_detection.py pages instruction-filter --files SET.jsonl   # a labelled page set

Slow on a CPU: scoring a page takes about 3 s, a detector or known-answer check 5-12 s.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import time

from poise.attacks._strategies import FAMILIES, Target, seed_proposals
from poise.catalog import Document, sample_catalog
from poise.defenses import get_defense
from poise.defenses._detect import detection_rates, sentence_spans, window_means
from poise.engine import SearchEngine
from poise.models import get_model


def _target(c, i: int) -> Target:
    names = [p.name for p in c.products]
    return Target(names[i], c.name, c.default_query, tuple(n for n in names if n != names[i]))


def perplexity() -> None:
    model, cat = get_model("local"), sample_catalog()
    clean = [[x.logprob for x in model.text_logprobs(p.document.text)]
             for c in cat.categories.values() for p in c.products]
    injected = []
    for name in list(cat.categories)[:3]:
        c = cat.categories[name]
        for i, p in enumerate(c.products):
            for prop in seed_proposals(_target(c, i)):
                lps = [x.logprob for x in model.text_logprobs(f"{prop.text}\n\n{p.document.text}")]
                injected.append((prop.strategy, lps))

    def stats(lps: list[float], window: int) -> tuple[float, float]:
        nll = [-x for x in lps[1:]]
        return max(window_means(nll, window)), math.exp(sum(nll) / len(nll))

    print(f"{len(clean)} clean pages, {len(injected)} injected pages")
    for window in (8, 16, 32, 64):
        cmax = max(stats(lps, window)[0] for lps in clean)
        pmax = max(stats(lps, window)[1] for lps in clean)
        for margin in (0.0, 0.25, 0.5):
            flagged = collections.Counter(s for s, lps in injected if stats(lps, window)[0] > cmax + margin)
            print(f"window {window:2d}  threshold {cmax + margin:.2f} (clean max {cmax:.2f}):  injected flagged "
                  f"{sum(flagged.values())}/{len(injected)} {dict(flagged)}")
        over = sum(stats(lps, window)[1] > pmax for _, lps in injected)
        print(f"           page perplexity: clean max {pmax:.1f}; injected above it {over}/{len(injected)}")


def rates(spec: str) -> None:
    cat = sample_catalog()
    clean, attacked = [], []
    for name in ("blender", "coffee maker"):
        c = cat.category(name)
        for i, p in enumerate(c.products):
            clean.append(p.document)
            family = ("direct", "authority", "opening")[i % 3]
            attacked.append(Document(text=f"{FAMILIES[family](_target(c, i), 0)}\n\n{p.document.text}"))
    start = time.time()
    defense = get_defense(spec, SearchEngine(get_model("local")))
    tpr, fpr, details = detection_rates(defense, clean, attacked)
    print(json.dumps({"spec": defense.spec, "tpr": tpr, "fpr": fpr, "clean": len(clean), "injected": len(attacked),
                      "cost": details["cost"], "seconds": round(time.time() - start)}))


def _labelled(path: str) -> list[dict]:
    """A labelled page set: JSONL with kind ("injection" or "clean"), family, text, spans."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _catalog_cases() -> list[dict]:
    """The sample catalog's clean pages, and each seed injection put before each page."""
    cat, cases = sample_catalog(), []
    for c in cat.categories.values():
        for i, p in enumerate(c.products):
            cases.append({"kind": "clean", "family": "sample-catalog", "text": p.document.text, "spans": []})
            for prop in seed_proposals(_target(c, i)):
                cases.append({"kind": "injection", "family": prop.strategy, "spans": [prop.text],
                              "text": f"{prop.text}\n\n{p.document.text}"})
    return cases


def _gone(span: str, kept: str) -> bool:
    """Whether none of the span's sentences (8 characters or more) is left in the page."""
    parts = [span[a:b].strip() for a, b in sentence_spans(span)]
    return all(part not in kept for part in parts if len(part) >= 8)


def pages(spec: str, files: list[str]) -> None:
    """Per family: pages flagged, and for injected pages how many injected spans a sanitising
    defense takes out entirely (no sentence of the span left in the page)."""
    cases = [c for f in files for c in _labelled(f)] if files else _catalog_cases()
    defense = get_defense(spec, SearchEngine(get_model("local")))
    start = time.time()
    rows: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
    for case in cases:
        found, _ = defense.verdict(case["text"])
        kept, _ = defense.inspect([Document(text=case["text"])])
        row = rows[(case["kind"], case["family"])]
        row[0] += 1
        row[1] += found.flagged
        row[2] += len(case["spans"])
        row[3] += sum(1 for span in case["spans"] if _gone(span, kept[0].text))
    for kind in ("injection", "clean"):
        total = [sum(r[k] for (kd, _), r in rows.items() if kd == kind) for k in range(4)]
        if not total[0]:
            continue
        what = "flagged (TPR)" if kind == "injection" else "flagged (FPR)"
        print(f"{kind}: {total[1]}/{total[0]} {what} = {total[1] / total[0]:.1%}"
              + (f"; injected spans gone after {defense.spec}: {total[3]}/{total[2]}" if total[2] else ""))
        for (kd, family), r in sorted(rows.items()):
            if kd == kind:
                print(f"  {family:32s} {r[1]:3d}/{r[0]:3d}" + (f"   spans gone {r[3]}/{r[2]}" if r[2] else ""))
    print(f"{len(cases)} pages in {time.time() - start:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    sub.add_parser("perplexity")
    r = sub.add_parser("rates")
    r.add_argument("spec")
    pg = sub.add_parser("pages")
    pg.add_argument("spec")
    pg.add_argument("--files", nargs="*", default=[])
    args = ap.parse_args()
    if args.what == "perplexity":
        perplexity()
    elif args.what == "rates":
        rates(args.spec)
    else:
        pages(args.spec, args.files)


if __name__ == "__main__":
    main()
