"""core/ holds only what two or more of the other packages import: code that serves one package lives in
that package (core ships with every registered model, models/packaging.py)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("models", "monitoring", "rollout", "serving", "components", "pipelines")


def imported_modules(path: Path) -> set[str]:
    """The dotted names ``path`` imports (``from a import b`` gives ``a`` and ``a.b``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_every_core_module_is_imported_by_two_packages_or_more() -> None:
    importers: dict[str, set[str]] = {
        path.stem: set() for path in (ROOT / "core").glob("*.py") if path.stem != "__init__"
    }
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for name in imported_modules(path):
                module = name.removeprefix("core.")
                if name.startswith("core.") and module in importers:
                    importers[module].add(package)
    alone = {module: sorted(packages) for module, packages in importers.items() if len(packages) < 2}
    assert not alone, f"core modules that fewer than two packages import (move them there): {alone}"
