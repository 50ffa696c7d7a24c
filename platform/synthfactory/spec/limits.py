"""Limits on what a spec may hold, checked before anything else reads it.

A spec file is read with a YAML loader that refuses duplicate keys, nesting beyond
``MAX_DEPTH``, aliases that refer to their own enclosing node and aliases that together
repeat more than ``MAX_ALIAS_EXPANSION`` values ("billion laughs"). Every loaded document
(a file, a Python ``spec`` or a dict) is then walked once, within a budget: more than
``MAX_SPEC_BYTES`` of content once aliases and shared objects are expanded, or a
non-finite number anywhere, is a named error. Every limit is in the error it raises.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from synthfactory.errors import SpecError

#: the largest spec file read, and the most content a loaded spec may expand to
MAX_SPEC_BYTES = 1024 * 1024
#: values (each scalar, list and mapping, long strings counted per 64 characters) that
#: YAML aliases may repeat in total
MAX_ALIAS_EXPANSION = 10_000
#: nesting of lists and mappings
MAX_DEPTH = 64
#: characters in one template, expression or description
MAX_TEXT_CHARS = 100_000
#: shards one job (or one top-up round) may plan: each is a Prefect task and a manifest entry
MAX_SHARDS = 100_000
#: a version name: one safe path segment
VERSION_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")

_MERGE_TAG = "tag:yaml.org,2002:merge"


def _size_text(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n} bytes"


def check_file_size(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise SpecError(
            f"{path} is {size} bytes; a spec file may hold at most {_size_text(MAX_SPEC_BYTES)}",
            fix="keep long texts (templates, descriptions, choice lists) in a source table or "
            "a file the spec points at, not in the spec itself",
        )


def decode(path: Path, data: bytes) -> str:
    """The file's text; a named error when it is not UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpecError(
            f"{path} is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
            f"(line {line}) cannot be decoded",
            fix="save the spec as UTF-8",
        ) from None
    return text.removeprefix("\ufeff")


def _weight(node: Node, memo: dict[int, int]) -> int:
    """How many values ``node`` stands for once every alias inside it is expanded (memoised:
    linear in the distinct nodes even for a bomb)."""
    found = memo.get(id(node))
    if found is not None:
        return found
    stack: list[tuple[Node, bool]] = [(node, False)]
    while stack:
        current, children_done = stack.pop()
        if id(current) in memo:
            continue
        if isinstance(current, ScalarNode):
            memo[id(current)] = 1 + len(current.value) // 64
            continue
        items: list[Node] = (
            [n for pair in current.value for n in pair]
            if isinstance(current, MappingNode)
            else list(current.value)
        )
        if children_done:
            memo[id(current)] = 1 + sum(memo.get(id(n), 1) for n in items)
            continue
        stack.append((current, True))
        stack.extend((n, False) for n in items if id(n) not in memo)
    return memo[id(node)]


def _line(mark: Any) -> int:
    return int(getattr(mark, "line", -1)) + 1


class SpecLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with the spec's limits (see the module docstring)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.open_nodes: list[str | None] = []  # anchors of the collections being composed
        self.expanded = 0
        self.weights: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            anchor = event.anchor
            line = _line(event.start_mark)
            if anchor in self.open_nodes:
                raise SpecError(
                    f"line {line}: the alias *{anchor} refers to a node that "
                    "contains it (a recursive structure)",
                    fix=f"remove *{anchor} or copy the value it should hold",
                )
            target = self.anchors.get(anchor) if anchor is not None else None
            if target is not None:
                self.expanded += _weight(target, self.weights)
                if self.expanded > MAX_ALIAS_EXPANSION:
                    raise SpecError(
                        f"line {line}: YAML aliases (*{anchor} and those before it) "
                        f"repeat more than {MAX_ALIAS_EXPANSION} values",
                        fix="write the values out, or use fewer and smaller aliases",
                    )
            return super().compose_node(parent, index)
        if isinstance(event, SequenceStartEvent | MappingStartEvent):
            if len(self.open_nodes) >= MAX_DEPTH:
                raise SpecError(
                    f"line {_line(event.start_mark)}: lists and mappings are nested more "
                    f"than {MAX_DEPTH} deep",
                    fix="flatten the spec",
                )
            self.open_nodes.append(event.anchor)
            try:
                return super().compose_node(parent, index)
            finally:
                self.open_nodes.pop()
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
                    continue
                key = self.construct_object(key_node)
                line = _line(key_node.start_mark)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # an unhashable key: the constructor names it
                if first is not None:
                    raise SpecError(
                        f"line {line}: duplicate key {key!r} (first on line {first})",
                        fix="keep one of them: YAML would silently use the last",
                    )
                seen[key] = line
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]


def load_yaml(text: str, path: Path | str = "spec") -> Any:
    """Parse one YAML document with the spec's limits; SpecError naming the file otherwise."""
    loader: SpecLoader | None = None
    try:
        loader = SpecLoader(text)  # the reader checks the characters here already
        return loader.get_single_data()
    except SpecError as exc:
        raise SpecError(f"{path} {exc.message}", fix=exc.fix) from None
    except (yaml.YAMLError, ComposerError, ConstructorError) as exc:
        raise SpecError(f"{path} is not valid YAML: {exc}", fix="fix the syntax") from None
    except RecursionError:
        raise SpecError(f"{path} is nested too deeply to read", fix="flatten the spec") from None
    finally:
        if loader is not None:
            loader.dispose()


def check_document(data: Mapping[str, Any], where: str = "spec") -> None:
    """Walk a loaded spec once (iteratively, shared objects counted each time they occur,
    stopping at the budget): non-finite numbers, nesting and expanded size are named errors."""
    budget = 2 * MAX_SPEC_BYTES
    used = 0
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            raise SpecError(
                f"{where}: {_path(path)} is nested more than {MAX_DEPTH} deep",
                fix="flatten the spec",
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(
                f"{where}: {_path(path)} is {value}, not a finite number",
                fix="give a finite number (no .inf or .nan)",
            )
        if isinstance(value, str | bytes):
            used += len(value) + 3
        elif isinstance(value, Mapping):
            used += 2
            for key, item in value.items():
                used += len(str(key)) + 4
                stack.append((item, (*path, key)))
        elif isinstance(value, list | tuple | set | frozenset):
            used += 2
            stack.extend((item, (*path, i)) for i, item in enumerate(value))
        else:
            used += 8
        if used > budget:
            raise SpecError(
                f"{where}: the spec expands to more than {_size_text(budget)} (at "
                f"{_path(path)}); YAML aliases or shared objects repeat too much",
                fix=f"keep the spec under {_size_text(MAX_SPEC_BYTES)} once written out",
            )


def _path(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def check_version_name(name: str) -> str:
    """A dataset version name: one path segment of letters, digits, '.', '_', '-'."""
    if not VERSION_PATTERN.fullmatch(name) or name in (".", ".."):
        raise SpecError(
            f"version {name!r} is not a safe name",
            fix="use 1 to 128 letters, digits, '.', '_' or '-' (not '.' or '..', no '/')",
        )
    return name
