"""The plug-in kind for attack methods: a base class and a registry.

A method proposes injections and asks the :class:`~poise.attacks.Evaluator` to score
them; the evaluator owns the budget, the context orders, the store and the stopping rule,
so every method is measured the same way.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .._errors import PoiseError
from .._numbers import MAX_COUNT

if TYPE_CHECKING:
    from ._evaluate import Evaluator
    from ._strategies import Target


class AttackParameterError(PoiseError):
    """An attack parameter is unknown, of the wrong type or out of bounds (found before any query)."""


@dataclass(frozen=True)
class Param:
    """A method parameter: a whole number (int default) or a number (float default), with bounds."""

    default: int | float
    minimum: int | float
    maximum: int | float
    help: str = ""

    def describe(self, name: str) -> str:
        return f"{name} {self.minimum:g}-{self.maximum:g} (default {self.default:g})"

    def check(self, method: str, name: str, value: Any) -> int | float:
        """``value`` if it is of this parameter's type and within its bounds; else one clear error."""
        whole = isinstance(self.default, int)
        kind = "a whole number" if whole else "a number"
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or (whole and not isinstance(value, int)) or not math.isfinite(value):
            raise AttackParameterError(f"method {method!r}: parameter {name!r} must be {kind}, not {value!r}",
                                       f"pass it as {self.describe(name)}")
        if not self.minimum <= value <= self.maximum:
            raise AttackParameterError(
                f"method {method!r}: parameter {name!r} must be between {self.minimum:g} and {self.maximum:g}, "
                f"not {value!r}", f"pass it as {self.describe(name)}")
        return value if whole else float(value)


def check_count(name: str, value: Any, minimum: int, optional: bool = False, maximum: int = MAX_COUNT) -> None:
    """Refuse a run setting (a budget, a number of answers or orders) that is not a whole
    number from ``minimum`` to ``maximum``; None passes when ``optional``."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AttackParameterError(f"{name} must be a whole number of at least {minimum}, not {value!r}")
    if value > maximum:
        why = ("a run past it could not finish (its orders and trials are drawn before the first call)"
               if maximum == MAX_COUNT else "the results store keeps no larger whole number")
        raise AttackParameterError(f"{name} must be at most {maximum:,}, not {value}", why)


def check_attack_counts(*, responses: Any, final_orders: Any, selection_orders: Any, confirm: Any,
                        verify_stop: Any = 0) -> None:
    """Refuse an attack's counts (one line naming the CLI option) before any query."""
    for name, value, minimum in (("--responses", responses, 1), ("--final-orders", final_orders, 1),
                                 ("--selection-orders", selection_orders, 1), ("--confirm", confirm, 0),
                                 ("--verify-stop", verify_stop, 0)):
        check_count(name, value, minimum)


class AttackMethod(ABC):
    """One way of searching for an injection.

    A method declares its parameters in ``parameters`` (name -> :class:`Param`); they are
    checked (type and bounds) when the method is made, so a bad one fails before any query.
    """

    name: ClassVar[str]
    needs_attacker: ClassVar[bool] = False
    # its candidates are whole pages that replace the promoted page (rewrite), not text prepended to it
    replaces_page: ClassVar[bool] = False
    description: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Param]] = {}

    def __init__(self, **params: Any) -> None:
        defaults = self.defaults()
        unknown = set(params) - set(defaults)
        if unknown:
            listed = ", ".join(self.parameters[k].describe(k) if k in self.parameters else k for k in sorted(defaults))
            raise AttackParameterError(f"method {self.name!r} has no parameter {sorted(unknown)[0]!r}",
                                       f"its parameters are {listed or 'none'}")
        checked = {k: self.parameters[k].check(self.name, k, v) if k in self.parameters else v
                   for k, v in params.items()}
        self.params = {**defaults, **checked}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {name: param.default for name, param in cls.parameters.items()}

    @abstractmethod
    def search(self, evaluator: Evaluator, target: Target, rng: random.Random) -> None:
        """Propose and score candidates until the evaluator stops it (budget, success)."""


METHODS: dict[str, type[AttackMethod]] = {}


def register_method(cls: type[AttackMethod]) -> type[AttackMethod]:
    METHODS[cls.name] = cls
    return cls


def method_class(name: str) -> type[AttackMethod]:
    """The registered method called ``name``; one clear error naming the others."""
    if name not in METHODS:
        raise PoiseError(f"unknown attack method {name!r}", f"choose one of {', '.join(METHODS)}")
    return METHODS[name]


def replaces_page(name: str | None) -> bool:
    """Whether the method called ``name`` writes whole pages (a stored run's method: False when
    it is not registered here)."""
    cls = METHODS.get(name or "")
    return cls is not None and cls.replaces_page


def check_method(name: str, params: dict[str, Any], *, attacker: bool = False,
                 method_flag: str = "--method") -> type[AttackMethod]:
    """Everything about a method checked before any model is built or asked: its name, its
    parameters (type and bounds), and whether an attacker model may be given (``attacker``).
    ``method_flag``: the option that chooses the method (``poise defend`` calls it --attack)."""
    cls = method_class(name)
    cls(**params)
    if attacker and not cls.needs_attacker:
        users = " or ".join(m for m, c in METHODS.items() if c.needs_attacker)
        raise AttackParameterError(f"--attacker is used only by methods that ask an attacker model, not by {name!r}",
                                   f"drop --attacker, or choose {method_flag} {users}")
    return cls


def describe_methods() -> str:
    """The methods and their parameters, from the registry (what ``--help`` shows)."""
    parts = []
    for name, cls in METHODS.items():
        params = ", ".join(p.describe(k) for k, p in cls.parameters.items())
        parts.append(f"{name}{' (asks an attacker model)' if cls.needs_attacker else ''}"
                     + (f": {params}" if params else ""))
    return "; ".join(parts)


def get_method(name: str, **params: Any) -> AttackMethod:
    """The method called ``name``, its parameters checked (AttackParameterError when one is bad)."""
    return method_class(name)(**params)
