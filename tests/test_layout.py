"""The layout's rules, checked on the source: the layers import only what they may, and the
repository explains itself (no pointer to files outside it)."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"transforms": ("apache_beam", "torch", "thresher.pipeline", "thresher.trainer"),
             "trainer": ("apache_beam", "thresher.pipeline")}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_what_they_may(layer):
    for path in (ROOT / layer).rglob("*.py"):
        for name in imported_modules(path):
            assert not name.startswith(FORBIDDEN[layer]), f"{path.relative_to(ROOT)} imports {name}"


def test_code_and_readme_point_to_nothing_outside_the_repository():
    for path in [ROOT / "README.md", *(p for d in ("pipeline", "transforms", "trainer", "docker")
                                       for p in (ROOT / d).rglob("*") if p.is_file() and p.suffix != ".gz")]:
        text = path.read_text(errors="replace")
        assert "DESIGN.md" not in text, path
        assert not re.search(r"\.\./shared", text), path


def test_benchmarks_import_the_installed_package():
    for path in (ROOT / "benchmarks").glob("*.py"):
        assert "parents[1]))" not in path.read_text(), f"{path.name} puts the repository on sys.path"
