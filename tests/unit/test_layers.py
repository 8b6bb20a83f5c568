"""DESIGN.md's layer rules as a test: data flows down, never up.

policy <- decisions <- suites <- integrations <- shell (hooks, operators, sensors, triggers,
notifications, links, pipeline). A module may import its own layer and the layers below it; hooks,
operators, sensors and triggers never import each other's private (``_``-prefixed) names. Imports
inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "provider" / "llm_release"

RANK = {
    "inputs": 0,  # the bounded file reader every layer uses
    "policy": 1,
    "decisions": 2,
    "data": 3,  # shipped data sets and their generators
    "suites": 3,
    "integrations": 4,
    "hooks": 5,
    "operators": 5,
    "sensors": 5,
    "triggers": 5,
    "notifications": 5,
    "links": 5,
    "pipeline": 5,
    "get_provider_info": 5,
    "reporting": 5,
    # Outside the layered core: the local serving environment and the commands that start things.
    "sandbox": 6,
    "localstack": 7,
    "cli": 7,
}
SHELL = {"hooks", "operators", "sensors", "triggers"}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "llm_release" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names]
    return found


def _violations() -> list[str]:
    problems: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        own = rel.parts[0].removesuffix(".py")
        if own == "__init__" or own not in RANK:
            continue
        for line, module, names in _imports(path):
            target = _layer(module)
            if target is None or target == own:
                continue
            if target not in RANK:
                problems.append(f"{rel}:{line}: imports {module}, a layer the rules do not know")
                continue
            if RANK[target] > RANK[own]:
                problems.append(f"{rel}:{line}: {own} imports {module} (layer {target} is above it)")
            if own in SHELL and target in SHELL:
                private = [n for n in names if n.startswith("_")]
                if private:
                    problems.append(f"{rel}:{line}: {own} imports private {private} from {module}")
    return problems


def test_layers_import_only_downwards():
    assert _violations() == []


def test_every_top_level_module_has_a_layer():
    modules = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    unknown = sorted(m for m in modules - set(RANK) - {"__init__", "__pycache__"})
    assert unknown == [], f"give these modules a layer in RANK: {unknown}"
