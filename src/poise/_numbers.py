"""Numbers a person or a server writes as text (a defense parameter, an environment variable,
a port, a header): plain ASCII only.

Python's ``int`` and ``float`` read any Unicode decimal digit (``int('٣') == 3``, fullwidth
``'３'`` too) and ``_`` between digits, so a value that does not look like a number to the
reader of a command line, a log or a run's configuration would be taken as one. These read
an optional sign, the digits 0-9 and (for ``ascii_float``) one decimal point and an exponent:
nothing else, and never ``nan`` or ``inf``.
"""

from __future__ import annotations

import math
import re

from ._errors import PoiseError

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def ascii_int(text: str) -> int:
    """``text`` (spaces around it allowed) as a whole number; ValueError unless it is one
    written in ASCII digits."""
    stripped = text.strip()
    if not _INT.fullmatch(stripped):
        raise ValueError(f"{text!r} is not a whole number in ASCII digits")
    return int(stripped)


def ascii_float(text: str) -> float:
    """``text`` (spaces around it allowed) as a finite number; ValueError unless it is one
    written in ASCII digits."""
    stripped = text.strip()
    if not _FLOAT.fullmatch(stripped):
        raise ValueError(f"{text!r} is not a number in ASCII digits")
    value = float(stripped)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is too large")
    return value


#: The largest whole number SQLite stores (a 64-bit signed integer); a bigger one is refused
#: before it could reach a query or a row.
MAX_STORED_INT = 2**63 - 1
#: Seeds a run takes: 0 to 2**31 - 1. ``random.Random`` seeds with the number's absolute value
#: (-3 draws the orders 3 draws), llama.cpp keeps the low 32 bits and takes 0xFFFFFFFF as "a
#: random seed", and OpenAI-compatible servers differ (int32, uint32, int64): every seed in this
#: range means itself everywhere.
MAX_SEED = 2**31 - 1
#: The most of anything a run counts in model calls or draws up front (trials, context orders,
#: answers per candidate, query budgets, bootstrap resamples): a run past it cannot finish, and
#: its orders or trials are listed before the first call.
MAX_COUNT = 100_000


def check_seed(seed: object, flag: str = "--seed") -> int:
    """``seed`` if it is a whole number from 0 to MAX_SEED; else one line naming ``flag``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise PoiseError(f"{flag} must be a whole number from 0 to {MAX_SEED}, not {seed!r}",
                         "other seeds do not mean the same everywhere (a negative one draws its positive's orders, "
                         "llama.cpp keeps 32 bits)")
    return seed
