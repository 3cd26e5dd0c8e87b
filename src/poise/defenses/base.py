"""Defended engines: each defense wraps a recommender and is one itself.

A defense is registered by name with typed, bounded parameters (``Param``) that are checked
before any model is asked. ``--defense NAME[:key=value,...]`` on the CLI and
:func:`defend` in Python compose them: the first named wraps the engine, the next wraps
that, and so on. Prompt-level defenses change the messages (:meth:`Defense.build_messages`);
detection defenses change the documents before the prompt is built
(:meth:`Defense.documents`); aggregation defenses ask the engine under them several times
and return their own ranking (:class:`DefendedResult`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .._errors import PoiseError
from .._numbers import ascii_float, ascii_int
from ..catalog import Category, Document
from ..engine import EngineResult, PromptTemplate, Recommender
from ..models import ChatMessage, ChatModel, ChatResponse, GenerateConfig, Usage
from ..ranking import HEURISTIC, Ranking, RankingReader


class DefenseError(PoiseError):
    """A defense spec names no defense, or a parameter is missing, unknown or out of range."""


@dataclass(frozen=True)
class Param:
    """A typed, bounded defense parameter."""

    type: type
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def parse(self, defense: str, name: str, raw: Any) -> Any:
        if isinstance(raw, str) and "|" in raw and self.type is not str:
            raise DefenseError(f"defense {defense!r}: {name}={raw!r} lists several values",
                               "list values (a|b|c) only in `poise defend`, which compares them; give one value here")
        try:
            value: Any = self._convert(raw)
        except (TypeError, ValueError):
            kind = f"{'an' if self.type.__name__[0] in 'aeiou' else 'a'} {self.type.__name__}"
            raise DefenseError(f"defense {defense!r}: {name}={raw!r} is not {kind}",
                               f"give {name} {kind} in ASCII digits: {self.help}") from None
        if self.choices and value not in self.choices:
            raise DefenseError(f"defense {defense!r}: {name}={value!r} is not one of {', '.join(self.choices)}")
        if isinstance(value, float) and value != value:
            raise DefenseError(f"defense {defense!r}: {name} is not a number", f"give {name} a number: {self.help}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise DefenseError(f"defense {defense!r}: {name}={value!r} is out of range [{self.low}, {self.high}]")
        return value

    def _convert(self, raw: Any) -> Any:
        """``raw`` as this parameter's type; text as a number only in ASCII digits (``int('٣')``
        is 3 to Python, not to a person reading the spec)."""
        if isinstance(raw, self.type):
            return raw
        if isinstance(raw, str) and self.type is int:
            return ascii_int(raw)
        if isinstance(raw, str) and self.type is float:
            return ascii_float(raw)
        return self.type(raw)


@dataclass(frozen=True)
class DefendedResult(EngineResult):
    """An answer of a defended engine: when ``ranking`` is set (aggregation defenses) it is the
    ranking, and ``response`` summarises the calls made; ``report`` says what the defense did
    (pages flagged and dropped or sanitised, certificates ...)."""

    ranking: Ranking | None = None
    calls: tuple[EngineResult, ...] = ()
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """What a defense may need besides the engine it wraps."""

    reader: RankingReader = HEURISTIC
    open_model: Callable[[str], ChatModel] | None = None  # for defenses that ask a model of their own


class Defense(Recommender):
    """A recommender that wraps another. Subclasses set ``name``, ``kind`` and ``params`` and
    override :meth:`documents`, :meth:`build_messages` or :meth:`recommend`."""

    name: ClassVar[str]
    kind: ClassVar[str]  # "prompt", "detection", "aggregation" or "mixing"
    params: ClassVar[dict[str, Param]] = {}
    summary: ClassVar[str] = ""

    def __init__(self, inner: Recommender, context: Context | None = None, **values: Any) -> None:
        self.inner = inner
        self.context = context or Context()
        unknown = set(values) - set(self.params)
        if unknown:
            raise DefenseError(f"defense {self.name!r} has no parameter {sorted(unknown)[0]!r}",
                               f"its parameters: {', '.join(self.params) or 'none'}")
        self.values = {k: p.parse(self.name, k, values.get(k, p.default)) for k, p in self.params.items()}

    # what the wrapped engine provides: read-only properties over attributes of Recommender
    # (mypy reports a property over a settable attribute as an override, hence the ignores)
    @property
    def model(self) -> ChatModel:  # type: ignore[override]
        return self.inner.model

    @property
    def template(self) -> PromptTemplate:  # type: ignore[override]
        return self.inner.template

    @property
    def config(self) -> GenerateConfig:  # type: ignore[override]
        return self.inner.config

    def identity(self) -> dict[str, Any]:
        return {**self.inner.identity(), "defenses": [*self.inner.identity().get("defenses", []), self.spec]}

    @property
    def spec(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.values.items())
        return f"{self.name}:{args}" if args else self.name

    def documents(self, category: Category, query: str, documents: Sequence[Document]) -> list[Document]:
        """The documents the wrapped engine sees (detection defenses drop or sanitise here)."""
        return list(documents)

    def build_messages(self, category: Category, query: str, order: Sequence[int],
                       documents: Sequence[Document] | None = None) -> list[ChatMessage]:
        docs = list(documents) if documents is not None else [p.document for p in category.products]
        return self.inner.build_messages(category, query, order, self.documents(category, query, docs))


def combined_response(results: Sequence[EngineResult], text: str) -> ChatResponse:
    """One response standing for several calls: their summed tokens and time; cached only
    when every call was."""
    usage = Usage(prompt_tokens=sum(r.response.usage.prompt_tokens for r in results),
                  completion_tokens=sum(r.response.usage.completion_tokens for r in results))
    first = results[0].response if results else None
    return ChatResponse(text=text, model=first.model if first else "", usage=usage,
                        latency_s=sum(r.response.latency_s for r in results),
                        cached=bool(results) and all(r.response.cached for r in results))


DEFENSES: dict[str, type[Defense]] = {}


def register_defense(cls: type[Defense]) -> type[Defense]:
    DEFENSES[cls.name] = cls
    return cls


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``NAME[:key=value,...]`` -> (name, raw values)."""
    name, _, rest = spec.strip().partition(":")
    values: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DefenseError(f"defense spec {spec!r}: {item!r} is not key=value", "write NAME:key=value,key=value")
        if key.strip() in values:
            raise DefenseError(f"defense spec {spec!r}: {key.strip()} is given twice", "give each parameter once")
        values[key.strip()] = value.strip()
    return name.strip(), values


def split_chain(spec: str) -> list[str]:
    """``a:x=1+b`` -> [``a:x=1``, ``b``]: ``+`` composes defenses. A ``+`` inside a value (before
    a piece that names no registered defense, after one with a value) stays in the value; an
    empty part (``+``, ``a++b``, ``+a``, ``a+``) is an error, as is a piece that is not
    ``NAME[:key=value,...]``: here, before any call."""
    pieces: list[str] = []
    for part in spec.split("+"):
        head = part.partition(":")[0]
        if pieces and "=" in pieces[-1] and head.strip() not in DEFENSES and "=" not in head:
            pieces[-1] += "+" + part
        elif not part.strip():
            raise DefenseError(f"defense spec {spec!r} has an empty part",
                               "'+' joins two defenses: write a+b, e.g. spotlight+sandwich")
        else:
            pieces.append(part.strip())
    pieces = [piece.strip() for piece in pieces]
    for piece in pieces:
        parse_spec(piece)
    return pieces


def _defense_class(name: str) -> type[Defense]:
    cls = DEFENSES.get(name)
    if cls is None:
        raise DefenseError(f"unknown defense {name!r}", f"choose one of {', '.join(sorted(DEFENSES))}")
    return cls


def get_defense(spec: str, inner: Recommender, context: Context | None = None) -> Defense:
    name, values = parse_spec(spec)
    return _defense_class(name)(inner, context, **values)


def asks_itself(cls: type[Defense]) -> bool:
    """Whether a defense asks the engine under it itself (detection, aggregation, mixing: it
    overrides ``recommend``) rather than only changing the prompt of the engine's one call."""
    return cls.recommend is not Recommender.recommend


def defend(engine: Recommender, specs: Sequence[str], context: Context | None = None) -> Recommender:
    """``engine`` wrapped by each defense in turn (the first spec is the innermost; ``a+b`` is
    ``a`` then ``b``). A defense that only changes the prompt applies to every call the engine
    is asked, so it goes under the defenses that ask the engine themselves wherever it is named
    (``self-consistency+sandwich`` is ``sandwich+self-consistency``): over them, its one call
    would replace theirs. The engine's ``identity()`` lists the defenses in the order applied."""
    pieces = [piece for spec in specs for piece in split_chain(spec)]
    asks = {piece: asks_itself(_defense_class(parse_spec(piece)[0])) for piece in pieces}
    for spec in sorted(pieces, key=lambda piece: asks[piece]):  # stable: each group in the order named
        engine = get_defense(spec, engine, context)
    return engine
