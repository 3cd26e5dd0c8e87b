"""The sweep file: a grid of ordinary runs, written as TOML and expanded into jobs.

```toml
kind = "attack"                      # natural | attack | defend
categories = ["blender", "laptop"]   # axes: every combination is one job
models = ["local"]
templates = ["default"]              # "default" or a template TOML file
methods = ["strategies", "random"]   # attack and defend sweeps
defenses = ["none", "paraphrase"]    # attack and natural: one engine each ("a+b" composes);
                                     # defend: the configurations one run compares
seeds = [0, 1]

[params.strategies]                  # method parameters; a list is an axis
families = [2, 4]

[options]                            # fixed options, as on the command line
budget = 20
```

A job is one ``poise natural`` / ``poise attack`` / ``poise defend`` run, keyed in the store
like any run of that command, so rerunning a sweep skips, resumes or retries its runs by the
store's own rules. Relative paths (catalog, templates) are read from the sweep file's folder.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._errors import PoiseError
from ..models import MAX_TIMEOUT_S

Kind = Literal["natural", "attack", "defend"]
Scalar = bool | int | float | str
NO_DEFENSE = "none"
MAX_SWEEP_BYTES = 1_000_000  # a sweep file is a few lines; anything larger is the wrong file
MAX_SWEEP_JOBS = 10_000  # each job is a whole run: a grid larger than this is a typo or several sweeps


class SweepError(PoiseError):
    """A sweep file that cannot be read: not TOML, an unknown key, a wrong type, an empty axis."""


class Options(BaseModel):
    """What every job of a sweep shares (the commands' options of the same names)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    catalog: str | None = Field(None, min_length=1)
    allow_outside_files: bool = False
    product: str | None = None
    attacker: str | None = None
    budget: int = Field(46, ge=1)
    attacker_budget: int = Field(100, ge=1)
    token_budget: int | None = Field(None, ge=1)
    responses: int = Field(2, ge=1)
    final_orders: int = Field(10, ge=1)
    selection_orders: int = Field(4, ge=1)
    confirm: int = Field(3, ge=0)
    verify_stop: int = Field(0, ge=0)
    shared_orders: bool = False
    early_stop: bool = False
    orders: int = Field(10, ge=2)
    consensus_orders: int = Field(0, ge=0)
    trials: int = Field(20, ge=2)
    bootstrap: int = Field(1000, ge=0)
    concurrency: int = Field(4, ge=1, le=64)
    rewrite_model: str | None = None
    max_tokens: int = Field(384, ge=1)
    reader: str = "heuristic"
    max_attempts: int = Field(5, ge=1, le=20)
    timeout: float = Field(60.0, ge=0.1, le=MAX_TIMEOUT_S)


class SweepFile(BaseModel):
    """A sweep file's content, checked: every axis a non-empty list of the right type."""

    model_config = ConfigDict(extra="forbid", strict=True)

    kind: Kind
    categories: list[str] = Field(min_length=1)
    models: list[str] = Field(["local"], min_length=1)
    templates: list[str] = Field(["default"], min_length=1)
    methods: list[str] = Field(["strategies"], min_length=1)
    defenses: list[str] = Field([NO_DEFENSE], min_length=1)
    seeds: list[int] = Field([0], min_length=1)
    params: dict[str, dict[str, Scalar | list[Scalar]]] = Field(default_factory=dict)
    options: Options = Field(default_factory=Options)

    @model_validator(mode="after")
    def _fits_kind(self) -> SweepFile:
        given = self.model_fields_set
        if self.kind == "natural":
            for key in ("methods", "params"):
                if key in given:
                    raise ValueError(f"{key}: a natural sweep runs no attack; remove it")
        for name, values in self.params.items():
            if name not in self.methods:
                raise ValueError(f"params.{name}: not one of the sweep's methods ({', '.join(self.methods)})")
            for key, value in values.items():
                if isinstance(value, list) and not value:
                    raise ValueError(f"params.{name}.{key}: an axis needs at least one value")
        if any(not t.strip() for t in self.templates):  # as a path it would read as the sweep file's folder
            raise ValueError("templates: an empty value; write 'default' or a template TOML file's path")
        if self.kind == "defend" and "defenses" in given and NO_DEFENSE in self.defenses:
            raise ValueError("defenses: a defend run always compares with the plain engine; drop 'none'")
        return self


@dataclass(frozen=True, eq=False)
class Job:
    """One run of the grid: its command, its axes' values and the sweep's fixed options."""

    kind: Kind
    category: str
    model: str
    template: str  # "default" or an absolute path
    seed: int
    options: Options
    method: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    defenses: tuple[str, ...] = ()  # attack/natural: composed onto the engine; defend: compared

    @property
    def label(self) -> str:
        """A short name: the axes' values, in the order of the file."""
        parts = [self.kind, self.category, self.model]
        if self.template != "default":
            parts.append(Path(self.template).stem)
        if self.method:
            parts.append(self.method + "".join(f",{k}={v}" for k, v in sorted(self.params.items())))
        if self.kind != "defend":
            parts.append("+".join(self.defenses) or NO_DEFENSE)
        parts.append(f"seed {self.seed}")
        return " / ".join(parts)

    def argv(self) -> list[str]:
        """The ``poise`` command line that makes the same run (what ``--dry-run`` shows)."""
        o = self.options
        args = [self.kind, "--category", self.category, "--model", self.model, "--seed", str(self.seed)]
        if self.template != "default":
            args += ["--template", self.template]
        if self.method is not None:
            args += ["--attack" if self.kind == "defend" else "--method", self.method]
        for key, value in sorted(self.params.items()):
            args += ["--param", f"{key}={_param_text(value)}"]
        for spec in self.defenses:
            args += ["--defense", spec]
        wanted = _OPTIONS[self.kind]
        defaults = Options()
        for name in wanted:
            value = getattr(o, name)
            if value == getattr(defaults, name):
                continue
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                args.append(flag)
            elif value is not None:
                args += [flag, str(value)]
        return args


_COMMON = ("catalog", "allow_outside_files", "max_tokens", "reader", "max_attempts", "timeout")
_ATTACK = ("product", "attacker", "budget", "responses", "final_orders", "selection_orders", "confirm")
_OPTIONS: dict[str, tuple[str, ...]] = {
    "natural": ("trials", "bootstrap", "concurrency", "rewrite_model", *_COMMON),
    "attack": (*_ATTACK, "attacker_budget", "token_budget", "verify_stop", "shared_orders", "early_stop", *_COMMON),
    "defend": (*_ATTACK, "orders", "consensus_orders", *_COMMON),
}


def _param_text(value: Any) -> str:
    import json

    if isinstance(value, str):
        try:  # text that reads as JSON ("3", "true") is quoted, so --param keeps it text
            json.loads(value)
        except json.JSONDecodeError:
            return value
    return json.dumps(value)


@dataclass(frozen=True)
class Sweep:
    """A checked sweep file and where it came from (relative paths are read from its folder)."""

    file: SweepFile
    path: Path

    @property
    def folder(self) -> Path:
        return self.path.parent

    def axes(self) -> dict[str, int]:
        """How many values each axis holds (a method's parameter axes as params.METHOD.KEY);
        the grid holds at most the product of them (summed over methods, whose axes differ)."""
        f = self.file
        sizes = {"categories": len(f.categories), "models": len(f.models), "templates": len(f.templates),
                 "defenses": 1 if f.kind == "defend" else len(f.defenses), "seeds": len(f.seeds)}
        if f.kind != "natural":
            sizes["methods"] = len(f.methods)
        for method, values in f.params.items():
            for key, value in sorted(values.items()):
                sizes[f"params.{method}.{key}"] = len(value) if isinstance(value, list) else 1
        return sizes

    def most_jobs(self) -> int:
        """The number of jobs before duplicates are merged, counted without making them."""
        f = self.file
        per_method = sum(math.prod(len(v) if isinstance(v, list) else 1 for v in f.params.get(m, {}).values())
                         for m in (f.methods if f.kind != "natural" else [""]))
        shared = {k: n for k, n in self.axes().items() if k != "methods" and not k.startswith("params.")}
        return math.prod(shared.values()) * per_method

    def jobs(self) -> list[Job]:
        """Every combination of the axes, in the order of the file, each once."""
        return list({tuple(job.argv()): job for job in self._expand()}.values())

    def _expand(self) -> Iterator[Job]:
        f = self.file
        options = f.options.model_copy(update={"catalog": self._path(f.options.catalog)})
        methods: list[str | None] = list(f.methods) if f.kind != "natural" else [None]
        if f.kind == "defend":  # one run compares them all (default: every registered defense)
            engines = [tuple(f.defenses) if "defenses" in f.model_fields_set else ()]
        else:
            engines = [_engine(d) for d in f.defenses]
        for category, model, template, method, defenses, seed in itertools.product(
                f.categories, f.models, f.templates, methods, engines, f.seeds):
            for params in _param_grid(f.params.get(method or "", {})):
                yield Job(kind=f.kind, category=category, model=model,
                          template=template if template == "default" else self._path(template) or template,
                          seed=seed, options=options, method=method, params=params, defenses=defenses)

    def _path(self, value: str | None) -> str | None:
        if value is None or value == "sample":
            return value
        return str((self.folder / Path(value).expanduser()).resolve())


def _engine(spec: str) -> tuple[str, ...]:
    """A defenses axis value: 'none', one spec, or specs composed with '+' (an empty part is an error)."""
    from ..defenses import split_chain

    return () if spec.strip() == NO_DEFENSE else tuple(split_chain(spec))


def _param_grid(params: dict[str, Scalar | list[Scalar]]) -> Iterator[dict[str, Any]]:
    keys = sorted(params)
    axes = [v if isinstance(v, list) else [v] for v in (params[k] for k in keys)]
    for values in itertools.product(*axes):
        yield dict(zip(keys, values, strict=True))


# -- reading ----------------------------------------------------------------------------------------
def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file; SweepError (one line) when it cannot be used."""
    path = Path(path).expanduser()
    where = f"sweep file {path}"
    try:
        data = tomllib.loads(_read(path, where))
    except FileNotFoundError:
        raise SweepError(f"no {where}", "check the path") from None
    except UnicodeDecodeError as exc:
        raise SweepError(f"{where} is not UTF-8 text (byte {exc.start})", "save it as UTF-8") from None
    except OSError as exc:
        raise SweepError(f"cannot read {where}: {exc.strerror or exc}", "check the path and its permissions") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{where} is not valid TOML: {exc}") from None
    except (RecursionError, ValueError):  # nested without end, or an integer of thousands of digits
        raise SweepError(f"{where} is not valid TOML: nested too deeply, or a number too long",
                         "a sweep file lists axes and options") from None
    try:
        sweep = Sweep(SweepFile.model_validate(data), path.resolve())
    except ValidationError as exc:
        raise SweepError(f"{where}: {_problem(exc)}", _hint(exc)) from None
    if (count := sweep.most_jobs()) > MAX_SWEEP_JOBS:
        grid = " × ".join(f"{k} {n:,}" for k, n in sweep.axes().items() if n > 1)
        raise SweepError(f"{where}: {count:,} jobs ({grid}), over the limit of {MAX_SWEEP_JOBS:,} jobs a sweep "
                         "may hold", "each job is a whole run: split the grid into several sweep files")
    return sweep


def _read(path: Path, where: str) -> str:
    """The file's text; a folder, a device or a pipe (which may never end) and a file over
    MAX_SWEEP_BYTES are refused before anything is read."""
    if path.is_dir():
        raise SweepError(f"{where} is a folder", "pass the sweep file (TOML) itself")
    if path.exists() and not path.is_file():
        raise SweepError(f"{where} is not a regular file (a device or a pipe)", "pass a sweep file (TOML) on disk")
    size = path.stat().st_size
    if size > MAX_SWEEP_BYTES:
        raise SweepError(f"{where} is {size:,} bytes, too large for a sweep file (limit {MAX_SWEEP_BYTES:,})",
                         "a sweep file lists axes and options; pass the right file")
    return path.read_text(encoding="utf-8")


_TYPE_TAGS = {"bool", "int", "float", "str", "list", "dict"}
#: flags of ``poise sweep`` itself, which a sweep file cannot set
_COMMAND_FLAGS = {k: "--" + k.replace("_", "-") for k in
                  ("store", "dry_run", "jobs", "retries", "executor", "address", "report", "base_url",
                   "endpoint_limit", "json")}
_SINGULAR = {"category": "categories", "model": "models", "template": "templates", "method": "methods",
             "defense": "defenses", "seed": "seeds", "param": "params"}


_FLAG = re.compile(r"(?<![\w-])--([a-z][a-z-]*)")
_AXIS_FLAGS = {"method": "methods", "attack": "methods", "template": "templates", "defense": "defenses",
               "model": "models", "category": "categories", "seed": "seeds", "param": "[params.METHOD]"}


def in_file_terms(text: str) -> str:
    """A command's message told in a sweep file's terms: ``--template`` is the templates axis,
    ``--attacker`` the attacker key under [options]; the flags of ``poise sweep`` itself stay."""
    def term(match: re.Match[str]) -> str:
        name = match.group(1).replace("-", "_")
        if name in _AXIS_FLAGS:
            return _AXIS_FLAGS[name]
        if name in Options.model_fields:
            return f"{name}{' = true' if name == 'allow_outside_files' else ''} (under [options])"
        return match.group(0)

    return _FLAG.sub(term, text.replace(" (allow_outside_files=True)", ""))


def _hint(exc: ValidationError) -> str:
    err = exc.errors()[0]
    if err["type"] != "extra_forbidden":
        return "see the README's sweep file section"
    return _unknown_key_hint([str(p) for p in err["loc"]])


def _unknown_key_hint(loc: list[str]) -> str:
    """What to write instead of an unknown key: its right spelling or place, or the command's flag."""
    raw = loc[-1]
    name = raw.replace("-", "_").lower()
    in_options = loc[0] == "options" and len(loc) == 2
    top, options = list(SweepFile.model_fields), list(Options.model_fields)
    allowed = options if in_options else top
    axis = name if name in top else _SINGULAR.get(name)
    if name in _COMMAND_FLAGS:
        return f"{_COMMAND_FLAGS[name]} is a flag of the command, not a key of the file; give it on the command line"
    if name != raw and name in allowed:
        return f"did you mean {name!r}?"
    if in_options and axis is not None:
        return f"{axis!r} is an axis: write {axis} = [...] at the top of the file, before [options]"
    if not in_options and name in options:
        return f"{name!r} is a fixed option: put it under [options]"
    close = [axis] if axis else difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"the keys {'under [options]' if in_options else 'of a sweep file'} are {', '.join(allowed)}"


def _problem(exc: ValidationError) -> str:
    """The first error as 'where: what', in the file's own terms."""
    err = exc.errors()[0]
    loc, union = "", False
    for part in err["loc"]:
        if isinstance(part, int):
            loc += f"[{part}]"
        elif part in _TYPE_TAGS or "[" in part:  # which member of a union pydantic tried
            union = True
            break
        else:
            loc += f".{part}" if loc else part
    kind, msg, inp = err["type"], err["msg"], _shown(err.get("input"))
    loc = _cut(loc)  # a key, like a value, may be any length: the line shows its start
    if kind == "extra_forbidden":
        return f"unknown key {loc!r}"
    if kind == "missing":
        return f"{loc} is missing"
    if kind == "too_short":
        return f"{loc}: an axis needs at least one value"
    if kind == "literal_error":
        return f"{loc}: {inp} is not one of natural, attack, defend"
    if kind == "value_error":
        return _cut(str(msg).removeprefix("Value error, "), 300)
    if union:
        return f"{loc}: a parameter is a number, text, true/false or a list of them, not {inp}"
    return f"{loc}: {msg.lower().removeprefix('input ')}, not {inp}" if loc else msg.lower()


def _cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _shown(value: Any) -> str:
    """A value from the file as its repr, cut short: an error line never echoes a huge one whole."""
    return _cut(repr(value))
