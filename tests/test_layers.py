"""The library never imports its command line: everything under ``poise`` outside
``poise.cli`` can be used from Python without the CLI (and without typer or rich's views)."""

from __future__ import annotations

import ast
from pathlib import Path

import poise

PACKAGE = Path(poise.__file__).parent


def _imported(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, absolute (relative imports resolved against its package)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.split(".")[:-1]  # a package's __init__ and its modules share their package
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            name = ".".join([*base, *([node.module] if node.module else [])])
            found.append((node.lineno, name))
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def test_the_resolver_sees_relative_and_absolute_imports():
    # the check below is only as good as this resolution: a CLI import written either way is seen
    sweep = PACKAGE / "sweep" / "_jobs.py"
    names = {name for _, name in _imported(sweep)}
    assert "poise.experiments._setup" in names and "poise.store" in names
    init = PACKAGE / "experiments" / "__init__.py"
    assert "poise.experiments._runs" in {name for _, name in _imported(init)}


def test_no_library_module_imports_the_cli():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "cli" or relative.name == "__main__.py":  # `python -m poise` is the CLI
            continue
        offenders += [f"{relative}:{line} imports {name}" for line, name in _imported(path)
                      if name == "poise.cli" or name.startswith("poise.cli.")]
    assert offenders == [], "\n".join(offenders)
