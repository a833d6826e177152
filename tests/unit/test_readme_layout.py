"""The README's layout table names every module of the packages, so a module added without a word there
fails here."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "models", "monitoring", "rollout", "serving", "components", "pipelines")


def test_the_layout_table_names_every_module() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| path | what |") :]
    table = table[: table.index("\n\n")]
    named = set(re.findall(r"[a-z0-9_]+", table))
    modules = [p for package in PACKAGES for p in (ROOT / package).glob("*.py") if p.stem != "__init__"]
    unnamed = sorted(str(p.relative_to(ROOT)) for p in modules if p.stem not in named)
    assert not unnamed, f"modules the README's layout table does not name: {unnamed}"
