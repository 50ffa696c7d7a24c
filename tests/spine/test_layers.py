"""The three source roots are layers: flows (orchestration, CLI, dashboard) over workers
(everything that runs inside Ray) over platform (spec, storage, dataset, metric
definitions). No module imports upward, not even inside a function or under
TYPE_CHECKING; the core stays free of Ray, Prefect and torch, the workers of Prefect.
Inside the core, the spec is the base the rest builds on."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "synthfactory": ROOT / "platform" / "synthfactory",
    "synthfactory_workers": ROOT / "workers" / "synthfactory_workers",
    "synthfactory_flows": ROOT / "flows" / "synthfactory_flows",
}
LEVEL = {"synthfactory": 0, "synthfactory_workers": 1, "synthfactory_flows": 2}
#: third-party packages a layer must never import (lazily or not)
FORBIDDEN = {
    "synthfactory": {"ray", "prefect", "torch", "transformers", "diffusers", "vllm", "uvicorn"},
    "synthfactory_workers": {"prefect", "uvicorn"},
    "synthfactory_flows": set(),
}
#: inside the core: these sub-packages are the base; they import nothing above them
CORE_BASE = {
    "spec": {"errors", "registry", "spec"},
    "registry": {"errors"},
    "errors": set(),
}


def imports(path: Path) -> list[tuple[int, str]]:
    """Every module an import statement names, anywhere in the file."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def modules() -> list[tuple[str, Path]]:
    return [(pkg, p) for pkg, folder in PACKAGES.items() for p in sorted(folder.rglob("*.py"))]


def test_the_walk_sees_every_module() -> None:
    assert len(modules()) > 80
    cli = PACKAGES["synthfactory_flows"] / "cli.py"
    assert any(name.startswith("synthfactory_flows.") for _, name in imports(cli))


@pytest.mark.parametrize("package", list(PACKAGES))
def test_no_upward_or_forbidden_import(package: str) -> None:
    problems = []
    for pkg, path in modules():
        if pkg != package:
            continue
        rel = path.relative_to(ROOT)
        for line, name in imports(path):
            top = name.split(".")[0]
            if top in LEVEL and LEVEL[top] > LEVEL[pkg]:
                problems.append(f"{rel}:{line} imports {name} (a layer above {pkg})")
            if top in FORBIDDEN[pkg]:
                problems.append(f"{rel}:{line} imports {name} ({pkg} must not use {top})")
    assert not problems, "\n".join(problems)


def test_core_spec_is_the_base_layer() -> None:
    problems = []
    base = PACKAGES["synthfactory"]
    for pkg, path in modules():
        if pkg != "synthfactory":
            continue
        part = path.relative_to(base).parts[0].removesuffix(".py")
        allowed = CORE_BASE.get(part)
        if allowed is None:
            continue
        for line, name in imports(path):
            parts = name.split(".")
            if parts[0] == "synthfactory" and len(parts) > 1 and parts[1] not in allowed:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not problems, "\n".join(problems)


def test_the_walk_catches_a_planted_upward_import(tmp_path: Path) -> None:
    planted = tmp_path / "bad.py"
    planted.write_text("def f():\n    from synthfactory_flows.generate import run_job\n")
    assert imports(planted) == [(2, "synthfactory_flows.generate")]
