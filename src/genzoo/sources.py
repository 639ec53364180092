"""Which package source files a stage's result depends on.

Snakemake does not notice edits to imported modules, so every rule lists the package files its
command imports, found by following genzoo's own relative imports from the stage's entry module.
Editing ``models/made.py`` then reruns only MADE's stages; editing ``train.py`` reruns training.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _module_file(dotted: str) -> Path | None:
    base = PACKAGE_DIR.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


@functools.lru_cache(maxsize=None)
def _imports_of(path: Path, mtime_ns: int) -> frozenset[str]:
    return frozenset(_parse_imports(path))


def _imports(path: Path) -> set[str]:
    """genzoo modules imported by ``path`` (parsed once per version of the file)."""
    return set(_imports_of(path, path.stat().st_mtime_ns))


def _parse_imports(path: Path) -> set[str]:
    """genzoo modules imported by ``path``, as dotted names relative to the package."""
    package = path.relative_to(PACKAGE_DIR).parent.parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            parent = package[:len(package) - (node.level - 1)]
            stem = [*parent, *(node.module.split(".") if node.module else [])]
            found.add(".".join(stem))
            found.update(".".join([*stem, alias.name]) for alias in node.names)
    return {name for name in found if name and _module_file(name)}


def module_sources(*entry_modules: str, skip: tuple[str, ...] = ("models",)) -> list[Path]:
    """The files of ``entry_modules`` and of every genzoo module they import, transitively.

    The ``models`` registry (models/__init__.py) is skipped: it imports every model, and adding a
    model to the zoo must not rerun the others. A stage that needs a model names it explicitly.
    """
    seen: dict[str, Path] = {}
    todo = list(entry_modules)
    while todo:
        name = todo.pop()
        if name in seen or name in skip:
            continue
        path = _module_file(name)
        if path is None:
            raise ValueError(f"no genzoo module {name!r}")
        seen[name] = path
        todo.extend(_imports(path))
    return sorted(seen.values())
