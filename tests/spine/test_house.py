"""The house rules of issue #26, checked on every module of the three source roots:
no module over 500 lines, no function over 60 (docstring included), no import cycle
between modules (imports inside functions count), no ``isinstance`` on a column config
outside the column kinds' own modules, and every module named in the README's house map.

What is left over is listed in ``KNOWN`` with its size today: the list may only shrink.
A listed offender that grows fails, a new one fails, and one that is fixed fails until it
is taken off the list (so the list stays the truth)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "platform": "synthfactory",
    "flows": "synthfactory_flows",
    "workers": "synthfactory_workers",
}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60

# offender -> its size today ("path" for a module, "path:function" for a function)
KNOWN: dict[str, int] = {}
KNOWN_CYCLES: list[frozenset[str]] = []


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root, package in PACKAGES.items():
        for path in sorted((ROOT / root / package).rglob("*.py")):
            parts = path.relative_to(ROOT / root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def sizes() -> Iterator[tuple[str, int, int]]:
    """(offender, size, limit) for every module and function of the three roots."""
    for path in modules().values():
        text = path.read_text()
        yield rel(path), len(text.splitlines()), MAX_MODULE_LINES
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                yield f"{rel(path)}:{node.name}", length, MAX_FUNCTION_LINES


def test_modules_and_functions_stay_small() -> None:
    over = {name: size for name, size, limit in sizes() if size > limit}
    new = {n: s for n, s in over.items() if n not in KNOWN}
    grown = {n: (KNOWN[n], s) for n, s in over.items() if n in KNOWN and s > KNOWN[n]}
    fixed = sorted(set(KNOWN) - set(over))
    limits = f"{MAX_MODULE_LINES} per module, {MAX_FUNCTION_LINES} per function"
    assert not new, f"over the limit ({limits}): {new}"
    assert not grown, f"known offenders that grew (was, now): {grown}"
    assert not fixed, f"fixed: take these off KNOWN in {__file__}: {fixed}"


def imports_of(path: Path, names: set[str]) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        out.update(t for t in targets if t in names)
    return out


def cycles() -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan). A package's
    ``__init__`` importing its own submodules is not counted as a cycle with them."""
    mods = modules()
    names = set(mods)
    graph = {
        m: {t for t in imports_of(p, names) if t != m and not m.startswith(t + ".")}
        for m, p in mods.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    found = cycles()
    new = [sorted(c) for c in found if c not in KNOWN_CYCLES]
    fixed = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert not new, f"import cycles: {new}"
    assert not fixed, f"fixed: take these off KNOWN_CYCLES: {fixed}"


#: where column kinds live: their configs (spec) and their worker classes (text/kinds)
COLUMN_KIND_MODULES = (
    "platform/synthfactory/spec/column_kinds.py",
    "platform/synthfactory/spec/sampler_columns.py",
    "platform/synthfactory/spec/llm_columns.py",
    "platform/synthfactory/spec/columns.py",
    "workers/synthfactory_workers/text/kinds/",
)


def column_config_names() -> set[str]:
    from synthfactory.spec.column_kinds import ColumnBase
    from synthfactory.spec.columns import COLUMNS

    found: set[str] = set()
    todo: list[type] = [ColumnBase]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    assert len(found) > 10 and COLUMNS.kinds(), "the column kinds did not register"
    return found


def isinstance_on(tree: ast.AST, names: set[str]) -> list[int]:
    """Lines of ``isinstance(x, C)`` / ``isinstance(x, (C, D))`` naming one of ``names``."""
    lines = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "isinstance"
            and len(node.args) == 2
        ):
            continue
        kinds = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
        named = {k.id if isinstance(k, ast.Name) else getattr(k, "attr", "") for k in kinds}
        if named & names:
            lines.append(node.lineno)
    return lines


def test_no_isinstance_on_column_configs_outside_the_column_kinds() -> None:
    names = column_config_names()
    found = {
        f"{rel(path)}:{line}"
        for path in modules().values()
        if not rel(path).startswith(COLUMN_KIND_MODULES)
        for line in isinstance_on(ast.parse(path.read_text()), names)
    }
    assert not found, f"switches on column kinds outside the kinds: {sorted(found)}"


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """The walkers see what they are meant to see (a too-long function, a cycle)."""
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    tree = ast.parse(f"def f() -> None:\n{body}\n")
    (fn,) = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    assert (fn.end_lineno or 0) - fn.lineno + 1 > MAX_FUNCTION_LINES
    a = tmp_path / "a.py"
    a.write_text("def g() -> None:\n    from pkg.b import y\n")
    assert imports_of(a, {"pkg.b"}) == {"pkg.b"}  # a lazy import counts
    switch = ast.parse("if isinstance(c, (LLMTextColumn, int)):\n    pass\n")
    assert isinstance_on(switch, column_config_names()) == [1]


def test_the_readme_house_map_lists_every_module() -> None:
    """The README's map is ``scripts/house_map.py``'s output (rerun it and paste after a
    module is added, moved or its docstring's first sentence changes)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("house_map", ROOT / "scripts" / "house_map.py")
    assert spec is not None and spec.loader is not None
    house_map = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(house_map)
    readme = (ROOT / "README.md").read_text()
    missing = [line for line in house_map.lines() if line not in readme.splitlines()]
    assert not missing, "README's house map is out of date (scripts/house_map.py): " + str(
        missing[:5]
    )
