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
