"""Property test: mutate valid example specs (delete, retype and misspell fields, swap column
names) and run `synthfactory validate` on each. Every run ends in success or in exit 2 with
an error naming what is wrong; an uncaught exception (a traceback) fails the test."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthfactory.spec.load import _read_file, resolve_paths
from synthfactory_flows.cli import main

ROOT = Path(__file__).resolve().parents[2]
#: every example that needs nothing beyond this machine (image_augment reads from S3)
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.yaml") if p.name != "image_augment.yaml")
BASES = [resolve_paths(_read_file(p), p.parent) for p in EXAMPLES]
COLUMNS = ["species", "island", "sex", "body_mass_g", "no_such_column", "label", ""]
VALUES: list[Any] = [None, 0, -1, 1.5, "x", "", [], {}, [1, "a"], {"kind": "nope"}, True, 10**12]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a nested dict/list spec."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += paths(value, (*prefix, i))
    return found


def parent(spec: dict[str, Any], path: tuple[Any, ...]) -> Any:
    node: Any = spec
    for part in path[:-1]:
        node = node[part]
    return node


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    spec = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        options = paths(spec)
        if not options:
            break
        path = draw(st.sampled_from(options))
        node, key = parent(spec, path), path[-1]
        action = draw(st.sampled_from(["delete", "retype", "misspell", "column"]))
        if action == "delete":
            del node[key]
        elif action == "retype":
            node[key] = copy.deepcopy(draw(st.sampled_from(VALUES)))
        elif action == "misspell" and isinstance(key, str) and key:
            node[key[:-1] + draw(st.sampled_from(["x", "_", "s"]))] = node.pop(key)
        elif action == "column":  # a string value anywhere: column names, paths, templates
            strings = [p for p in options if isinstance(parent(spec, p)[p[-1]], str)]
            if strings:
                chosen = draw(st.sampled_from(strings))
                parent(spec, chosen)[chosen[-1]] = draw(st.sampled_from(COLUMNS))
    return spec


def test_the_example_specs_are_valid() -> None:
    assert len(BASES) >= 4
    with tempfile.TemporaryDirectory() as tmp:
        for i, spec in enumerate(BASES):
            path = Path(tmp) / f"spec{i}.yaml"
            path.write_text(yaml.safe_dump(spec))
            result = CliRunner().invoke(main, ["validate", str(path)])
            assert result.exit_code == 0, result.output


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated())
def test_a_mutated_spec_is_valid_or_a_named_error(spec: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_text(yaml.safe_dump(json.loads(json.dumps(spec, default=str))))
        result = CliRunner().invoke(main, ["validate", str(path)])
    if result.exit_code == 0:
        assert result.output.startswith("ok: ")
        return
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {type(result.exception).__name__}: {result.exception}\n{spec}"
    )
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output}"
    assert "error:" in result.output and len(result.output.strip()) > len("error: "), result.output


BAD_EDITS: list[tuple[str, str, str, str]] = [
    # (example, text to replace, replacement, what the error must say)
    ("tabular_penguins.yaml", "data/penguins.csv", "data/nope.csv", "does not exist"),
    ("tabular_balance.yaml", "column: body_mass_g", "column: body_mass", "body_mass"),
    ("tabular_balance.yaml", "balance: species", "balance: specie", "augment.balance"),
    ("tabular_balance.yaml", "target_column: species", "target_column: specis", "'species'?"),
    ("tabular_sequential.yaml", "sequence_key: firm", "sequence_key: company", "'company'"),
    ("tabular_sequential.yaml", "sequence_index: year", "sequence_index: firm", "both 'firm'"),
    ("text_reviews.yaml", "{{ tone }}", "{{ tone ", "template"),
    ("text_reviews.yaml", "{{ product }}", "{{ prodct }}", "prodct"),
    ("text_reviews.yaml", "builtin:smollm2", "./no-such-model", "no-such-model"),
]


def test_mistakes_validate_used_to_pass_are_named() -> None:
    for example, old, new, expected in BAD_EDITS:
        text = (ROOT / "examples" / example).read_text()
        assert old in text, (example, old)
        with tempfile.TemporaryDirectory() as tmp:
            spec = resolve_paths(yaml.safe_load(text.replace(old, new)), ROOT / "examples")
            path = Path(tmp) / example
            path.write_text(yaml.safe_dump(spec))
            result = CliRunner().invoke(main, ["validate", str(path)])
        assert result.exit_code == 2, (example, new, result.output, result.exception)
        assert expected in result.output, (example, new, result.output)
