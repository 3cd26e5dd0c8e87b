"""The plug-in kind for attack methods: a base class and a registry.

A method proposes injections and asks the :class:`~poise.attacks.Evaluator` to score
them; the evaluator owns the budget, the context orders, the store and the stopping rule,
so every method is measured the same way.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from .._errors import PoiseError

if TYPE_CHECKING:
    from ._evaluate import Evaluator
    from ._strategies import Target


class AttackMethod(ABC):
    """One way of searching for an injection."""

    name: ClassVar[str]
    needs_attacker: ClassVar[bool] = False
    description: ClassVar[str] = ""

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.defaults())
        if unknown:
            raise PoiseError(f"method {self.name!r} has no parameter {sorted(unknown)[0]!r}",
                             f"its parameters are {', '.join(sorted(self.defaults())) or 'none'}")
        self.params = {**self.defaults(), **params}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {}

    @abstractmethod
    def search(self, evaluator: "Evaluator", target: "Target", rng: random.Random) -> None:
        """Propose and score candidates until the evaluator stops it (budget, success)."""


METHODS: dict[str, type[AttackMethod]] = {}


def register_method(cls: type[AttackMethod]) -> type[AttackMethod]:
    METHODS[cls.name] = cls
    return cls


def get_method(name: str, **params: Any) -> AttackMethod:
    if name not in METHODS:
        raise PoiseError(f"unknown attack method {name!r}", f"choose one of {', '.join(METHODS)}")
    return METHODS[name](**params)
