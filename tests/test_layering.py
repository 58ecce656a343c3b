"""The package's layers: imports point down only, and no module imports itself back through others.

Every import counts, at module level or inside a function (a lazy import hides a dependency, it
does not remove it).  The layer of a module is the layer of its subpackage; see "How the code is
laid out" in the README.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "swinir"

#: subpackage -> layer; a module may import its own subpackage and any lower layer
LAYERS: dict[str, int] = {
    "core": 0, "assets": 0,
    "image": 1,
    "models": 2,
    "inference": 3, "degradations": 3,
    "eval": 4, "video": 4,
    "train": 5, "serve": 5, "distributed": 5,
    "cli": 6,
    "": 7,  # the public facade: swinir/__init__.py, __main__.py, metrics.py
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> tuple[str, int]:
    parts = module.split(".")
    group = parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else ""
    if group not in LAYERS:
        raise AssertionError(f"{module}: subpackage {group!r} has no layer; add it to LAYERS and the README")
    return group, LAYERS[group]


def imports_of(path: Path) -> set[str]:
    """Every swinir module ``path`` imports, resolved to absolute names."""
    return imports_in(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")


def imports_in(source: str, name: str, is_package: bool) -> set[str]:
    """Every swinir module the code ``source`` of module ``name`` imports, at any depth."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "swinir")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "swinir":
                continue
            for alias in node.names:  # ``from swinir.models import zoo`` imports swinir.models.zoo
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _exists(candidate) else target)
    found.discard(name)
    return found


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_subpackage_has_a_layer() -> None:
    for module in graph():
        layer_of(module)


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    """``importer imports target`` lines for every import that does not point down."""
    wrong = []
    for module, targets in edges.items():
        group, rank = layer_of(module)
        for target in sorted(targets):
            target_group, target_rank = layer_of(target)
            if target_group != group and target_rank >= rank:
                wrong.append(f"{module} (layer {rank}) imports {target} (layer {target_rank})")
    return wrong


def test_imports_point_down() -> None:
    wrong = upward_imports(graph())
    assert not wrong, "upward or sideways imports:\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    edges = {m: {t for t in ts if not _is_package(t)} for m, ts in graph().items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def _is_package(module: str) -> bool:
    return (PACKAGE / Path(*module.split(".")[1:]) / "__init__.py").is_file()


@pytest.mark.parametrize("source, caught", [
    ("from swinir.cli import main\n", True),
    ("def lazy():\n    from swinir.serve import app\n", True),
    ("from swinir.eval import metrics\n", True),          # sideways-up: eval is above inference
    ("from swinir.degradations import protocol\n", True),  # same layer, other package
    ("from swinir.models import zoo\nfrom . import tiling\n", False),
])
def test_the_check_catches_upward_imports(source: str, caught: bool) -> None:
    """The checker itself, on a made-up module of the inference layer."""
    edges = {"swinir.inference.probe": imports_in(source, "swinir.inference.probe", False)}
    assert bool(upward_imports(edges)) is caught
