"""The layout's rules, checked on the source: the layers and `pipeline/`'s subpackages import only
what they may, no subpackage cycle, and the repository explains itself (no pointer to files
outside it)."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("graph", "engines", "tools", "service", "cli")
TRAINER = ("torch", "thresher.trainer")


def _sub(*names: str) -> tuple[str, ...]:
    return tuple(f"thresher.pipeline.{n}" for n in names)


# folder -> what no module below it may import (lazy imports inside functions count too)
FORBIDDEN = {
    "transforms": ("apache_beam", "torch", "thresher.pipeline", "thresher.trainer"),
    "trainer": ("apache_beam", "thresher.pipeline"),
    "pipeline/graph": (*_sub("engines", "tools", "service", "cli"), *TRAINER),
    "pipeline/engines": (*_sub("service", "cli"), *TRAINER),
    "pipeline/tools": ("apache_beam", *_sub("graph", "engines", "service", "cli")),
    "pipeline/service": ("apache_beam", *_sub("graph", "engines", "cli"), *TRAINER),
    "pipeline/cli": TRAINER,
}
# the one module through which pipeline/ reaches the trainer (thresher train, export, ablate)
TRAINER_DOOR = ROOT / "pipeline" / "tools" / "training.py"


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _modules(folder: str):
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_layers_import_only_what_they_may(folder):
    for path in _modules(folder):
        forbidden = FORBIDDEN[folder]
        if path == TRAINER_DOOR:
            forbidden = tuple(f for f in forbidden if f not in TRAINER)
        elif folder == "pipeline/tools":
            forbidden = (*forbidden, *TRAINER)
        for name in imported_modules(path):
            assert not name.startswith(forbidden), f"{path.relative_to(ROOT)} imports {name}"


def test_the_shared_modules_of_pipeline_import_no_subpackage_and_no_beam():
    for path in (ROOT / "pipeline").glob("*.py"):
        if path.name == "__main__.py":  # `python -m thresher.pipeline`: the CLI
            continue
        for name in imported_modules(path):
            assert not name.startswith(("apache_beam", *_sub(*SUBPACKAGES), *TRAINER)), \
                f"{path.relative_to(ROOT)} imports {name}"


def test_no_import_cycle_between_subpackages():
    edges = {s: set() for s in SUBPACKAGES}
    for s in SUBPACKAGES:
        for path in _modules(f"pipeline/{s}"):
            for name in imported_modules(path):
                for t in SUBPACKAGES:
                    if t != s and (name == f"thresher.pipeline.{t}" or name.startswith(f"thresher.pipeline.{t}.")):
                        edges[s].add(t)
    order, state = [], {}

    def visit(node, trail):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", f"import cycle: {' -> '.join([*trail, node])}"
        state[node] = "open"
        for nxt in sorted(edges[node]):
            visit(nxt, [*trail, node])
        state[node] = "done"
        order.append(node)

    for s in SUBPACKAGES:
        visit(s, [])
    assert order.index("graph") < order.index("engines") < order.index("cli")


def test_every_subpackage_says_what_it_holds_and_may_import():
    for s in SUBPACKAGES:
        doc = ast.get_docstring(ast.parse((ROOT / "pipeline" / s / "__init__.py").read_text())) or ""
        assert "import" in doc.lower() and len(doc.splitlines()) >= 3, s


def test_no_module_shares_a_name_across_layers_or_with_the_standard_library():
    import sys

    seen = {}
    for layer in ("pipeline", "transforms", "trainer"):
        for path in (ROOT / layer).rglob("*.py"):
            if path.stem.startswith("__"):
                continue
            assert path.stem not in sys.stdlib_module_names, f"{path.relative_to(ROOT)} shadows the standard library"
            other = seen.setdefault(path.stem, path)
            assert other == path, f"{path.relative_to(ROOT)} and {other.relative_to(ROOT)} share a name"


def test_code_and_docs_point_to_nothing_outside_the_repository():
    docs = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *(ROOT / "docs").rglob("*.md")]
    for path in [*docs, *(p for d in ("pipeline", "transforms", "trainer", "docker")
                          for p in (ROOT / d).rglob("*") if p.is_file() and p.suffix not in (".gz", ".so", ".png"))]:
        text = path.read_text(errors="replace")
        assert "DESIGN.md" not in text, path
        assert not re.search(r"\.\./shared", text), path


def test_benchmarks_import_the_installed_package():
    for path in (ROOT / "benchmarks").glob("*.py"):
        assert "parents[1]))" not in path.read_text(), f"{path.name} puts the repository on sys.path"


def test_the_curation_install_brings_no_torch():
    """`pip install .` is the curation install: torch (a few GB) comes only with [train] (or [dev])."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if re.match(r"(torch|safetensors|transformers)\b", d)]
    assert any(d.startswith("torch") for d in project["optional-dependencies"]["train"])
