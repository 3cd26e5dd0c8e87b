"""When an answer can stop early: once it loops, what the reader reads from it is settled.

A small model decoding greedily often falls into a loop, repeating lines it already wrote until
max_tokens. The heuristic reader reads the whole answer (a final ranking, a verdict or an
'Avoid:' line later on can change what an earlier list meant), so no rule that looks at a
prefix can be proved to give the full answer's reading for every text; this one is checked
instead: over every labelled answer in ``tests/data/reader`` (web engines and the bundled model
alike) and over the bundled model's own answers in ``benchmarks/bench_throughput.py``, wherever
it fires, every product's score read from the prefix equals its score read from the full answer
(``tests/test_early_stop.py``). Two repeated lines were not enough (JSON answers repeat closing
brackets); three are.

It is opt-in (``Evaluator(early_stop=True)``), for the plain engine with the heuristic reader
only: a defense that aggregates sub-answers, or a model reader, was never checked against it.
"""

from __future__ import annotations

from ..models import StopRule

#: The last this many complete, non-empty lines must each repeat an earlier line.
LOOP_LINES = 3


def answer_loops(text: str, lines: int = LOOP_LINES) -> bool:
    """Whether the last ``lines`` complete non-empty lines of ``text`` each repeat an earlier
    line (a line is complete once a newline follows it)."""
    done = [line.strip() for line in text.split("\n")[:-1]]
    done = [line for line in done if line]
    if len(done) <= lines:
        return False
    earlier = set(done[:-lines])
    return all(line in earlier for line in done[-lines:])


#: Stop decoding once the answer loops (see the module's docstring for the evidence).
LOOP_STOP = StopRule(key=f"loop{LOOP_LINES}", decided=answer_loops)
