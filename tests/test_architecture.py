"""Architecture rules checked on the source text of the production packages.

- A module uses another module's public names only: no ``from x import _y`` and no ``x._y`` on
  an imported module. An underscore name is the owning module's to change; a caller that needs
  it needs a public function instead.
- A production module stays at or under ``MAX_LINES`` lines, so that each one can be read and
  reviewed as a whole.

Scanned: every ``.py`` file under ``gateway/``, ``providers/`` and ``mappings/`` except
migrations and tests. Imports of the project's own modules are checked; private names of the
standard library and third-party packages are outside these rules. Each test lists every
offender at once.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "providers", "mappings")
SKIPPED_DIRS = frozenset({"migrations", "tests", "__pycache__"})
MAX_LINES = 450


def _is_private(name: str) -> bool:
    """``_x`` is private; dunder names (``__version__``, ``__all__``) are not."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_project(module: str) -> bool:
    return module.split(".", 1)[0] in PACKAGES


def production_modules() -> Iterator[tuple[str, Path]]:
    """(dotted module name, path) of every scanned module, in a stable order."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if SKIPPED_DIRS.intersection(relative.parts[:-1]):
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


MODULES: dict[str, Path] = dict(production_modules())


def _is_project_module(dotted: str) -> bool:
    return dotted in MODULES


def _absolute(current: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute module a ``from ... import`` in ``current`` names."""
    if level == 0:
        return module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


@dataclass(frozen=True)
class Offence:
    path: Path
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.what}"


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attribute accesses on a name, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def private_uses(module: str, path: Path) -> list[Offence]:
    """Private names of other project modules that ``module`` imports or reads."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    offences: list[Offence] = []
    # Local name -> the project module it is bound to (``import a.b`` binds ``a`` to ``a``).
    module_names: dict[str, str] = {}

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _is_project(alias.name):
                    continue
                if alias.asname:
                    module_names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".", 1)[0]
                    module_names[top] = top
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, is_package, node.level, node.module)
            if not _is_project(source) or source == module:
                continue
            for alias in node.names:
                if _is_private(alias.name):
                    offences.append(
                        Offence(path, node.lineno, f"from {source} import {alias.name}")
                    )
                target = f"{source}.{alias.name}"
                if _is_project_module(target):
                    module_names[alias.asname or alias.name] = target

    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not _is_private(node.attr):
            continue
        dotted = _dotted(node.value)
        if dotted is None:
            continue
        root, _, rest = dotted.partition(".")
        if root not in module_names:
            continue
        target = ".".join(filter(None, [module_names[root], rest]))
        if _is_project_module(target) and target != module:
            offences.append(Offence(path, node.lineno, f"{target}.{node.attr}"))
    return offences


def test_modules_use_only_public_names_of_other_modules() -> None:
    offences = [o for module, path in MODULES.items() for o in private_uses(module, path)]
    offences.sort(key=lambda o: (str(o.path), o.line, o.what))
    assert not offences, (
        f"{len(offences)} use(s) of another module's private name (make it public, or move the "
        "code that needs it into that module):\n" + "\n".join(map(str, offences))
    )


def test_production_modules_are_at_most_max_lines_long() -> None:
    lengths = {path: len(path.read_text().splitlines()) for path in MODULES.values()}
    too_long = [
        f"{path.relative_to(ROOT)}: {n} lines" for path, n in lengths.items() if n > MAX_LINES
    ]
    assert not too_long, f"modules over {MAX_LINES} lines (split them):\n" + "\n".join(too_long)


def test_the_scan_sees_the_packages() -> None:
    """Guard against a scan that silently finds nothing (a moved root, a wrong filter)."""
    assert {"gateway.settings", "providers.models", "mappings.models"} <= MODULES.keys()
    assert not any(".migrations." in m or ".tests." in m for m in MODULES)
