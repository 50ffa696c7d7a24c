"""Print the house map: every module of the three source roots with the first sentence of
its docstring. The README's "The house" section holds this output (a test checks that every
module is in it): `.venv/bin/python scripts/house_map.py`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROOTS = {
    "flows/synthfactory_flows": "orchestration and the application (Prefect; uses all below)",
    "workers/synthfactory_workers": "everything that runs inside Ray (no Prefect)",
    "platform/synthfactory": "the core both use (no Ray, Prefect or torch, even lazily)",
}
WIDTH = 34


def summary(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    text = " ".join(doc.split())
    for short in ("et al.", "e.g.", "i.e.", "vs."):
        text = text.replace(short, short.replace(".", "\0"))
    first = re.split(r"(?<=[a-z0-9)`'])\. ", text, maxsplit=1)[0].rstrip(".")
    first = first.replace("\0", ".")
    return first if len(first) <= 100 else first[:97].rstrip() + "..."


def lines() -> list[str]:
    out: list[str] = []
    for root, what in ROOTS.items():
        out.append(f"{root + '/':<{WIDTH}}{what}")
        base = ROOT / root
        for path in sorted(base.rglob("*.py"), key=lambda p: (p.parent.parts, p.name)):
            rel = path.relative_to(base)
            if rel.name == "__init__.py" and rel.parent == Path("."):
                continue
            depth = len(rel.parts) - 1
            if rel.name == "__init__.py":
                name = "  " * depth + str(rel.parent.name) + "/"
            else:
                name = "  " * (depth + 1) + rel.name
            out.append(f"{name:<{WIDTH}}{summary(path)}")
    return out


if __name__ == "__main__":
    print("\n".join(lines()))
