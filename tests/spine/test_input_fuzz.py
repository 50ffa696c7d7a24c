"""Property test over everything a user feeds in: random byte and YAML mutations of a valid
spec file, and random CSV sources (repeated or blank headers, no rows, one row, all-null
columns, odd encodings, ragged rows). Each goes through the loader and the preflight that
`validate` and `run` share, in process and without a flow run, and must end in success or
a named SynthfactoryError: any other exception fails the test."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthfactory.errors import SynthfactoryError
from synthfactory.spec import load_spec
from synthfactory_flows.preflight import preflight

ROOT = Path(__file__).resolve().parents[2]
PENGUINS = ROOT / "examples" / "data" / "penguins.csv"
#: seconds one spec may take from file to preflight verdict
LIMIT_S = 20

PYTHON_SPEC = """name: demo
modality: tabular
description: A small job.
generator:
  kind: python
  factory: synthfactory_workers.demo:SequenceGenerator
  options: {start: 1, label: x}
rows: 100
shard_rows: 30
seed: 7
output: @OUT@
resources: {actors: 1, num_cpus: 0.5, batch_size: 64}
retries: {shard_retries: 2, retry_delay_seconds: 0.5}
"""
COPULA_SPEC = """name: penguins
modality: tabular
generator:
  kind: gaussian_copula
  source: @SOURCE@
  conditions: {species: Adelie}
  constraints:
    - {kind: range, column: body_mass_g, min: 2000, max: 7000}
rows: 1000
shard_rows: 250
output: @OUT@
metrics: {target_column: species}
"""
TEXT_SPEC = """name: reviews
modality: text
generator:
  kind: llm
  model: builtin:smollm2
  system_prompt: You write short reviews.
  prompt:
    template: "Write a {{ tone }} review of a {{ product }} for ${{ price }}."
    variables:
      tone: {choices: {positive: 0.6, negative: 0.4}}
      product: [mug, tent]
      price: {range: [5, 300], integer: true}
  sampling: {max_new_tokens: 48, temperature: 0.9}
rows: 100
shard_rows: 50
output: @OUT@
"""
BASES = [PYTHON_SPEC, COPULA_SPEC, TEXT_SPEC]

#: YAML fragments that stress the loader: aliases, tags, special scalars, nesting
FRAGMENTS = [
    "&a [1, 2, 3]",
    "*a",
    "*nope",
    "&b {x: &c [*c]}",
    ".inf",
    "-.inf",
    ".nan",
    "yes",
    "~",
    "!!binary aGVsbG8=",
    "!!python/object:os.system {}",
    "!!set {a, b}",
    "!!timestamp 2024-01-01",
    "0x1F",
    "1e400",
    "'\\u0000'",
    "[" * 80,
    "{a: 1, a: 2}",
    "<<: {rows: 5}",
    "---",
    "%YAML 1.1",
    "\t",
    "\ufeff",
    "'" + "x" * 5000 + "'",
    "\udcff",
]
BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefg", "bcdefgh", strict=True)
)


def check(path: Path) -> None:
    """The loader and the preflight on one spec file: success or a SynthfactoryError."""
    started = time.monotonic()
    try:
        preflight(load_spec(path))
    except SynthfactoryError as exc:
        assert str(exc).strip(), "an error with no message"
    assert time.monotonic() - started < LIMIT_S, f"{path.read_bytes()[:300]!r} took too long"


def test_the_base_specs_pass_the_preflight(tmp_path: Path) -> None:
    for i, base in enumerate(BASES):
        path = tmp_path / f"spec{i}.yaml"
        path.write_bytes(fill(base.encode(), str(tmp_path)))
        preflight(load_spec(path))


@st.composite
def mutated_bytes(draw: st.DrawFn) -> bytes:
    """A base spec with random byte edits: flips, inserts, deletes, truncation, repeats."""
    data = bytearray(draw(st.sampled_from(BASES)).encode())
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "insert", "flip", "delete", "repeat", "truncate"]))
        if action == "flip":
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 20))]
        elif action == "truncate":
            del data[at:]
        else:
            end = min(len(data), at + draw(st.integers(1, 40)))
            data[at:at] = data[at:end]
    return bytes(data)


def fill(data: bytes, tmp: str) -> bytes:
    """The placeholders, filled after mutating (paths stay where the edits put them)."""
    out = str(Path(tmp) / "out").encode()
    return data.replace(b"@OUT@", out).replace(b"@SOURCE@", str(PENGUINS).encode())


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated_bytes())
def test_a_byte_mutated_spec_is_valid_or_a_named_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_bytes(fill(data, tmp))
        check(path)


@st.composite
def mutated_yaml(draw: st.DrawFn) -> str:
    """A base spec with YAML-level edits: a value replaced by a fragment, a line repeated,
    a line's indentation changed, or an alias bomb put in front."""
    lines = draw(st.sampled_from(BASES)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["value", "key", "value", "repeat", "indent", "bomb"]))
        line = lines[at]
        if action == "value" and ":" in line:
            key = line.split(":", 1)[0]
            lines[at] = f"{key}: {draw(st.sampled_from(FRAGMENTS))}"
        elif action == "repeat":
            lines.insert(at, line)
        elif action == "indent":
            lines[at] = " " * draw(st.integers(0, 6)) + line.lstrip()
        elif action == "bomb":
            lines[:0] = BOMB.splitlines()
        elif action == "key":
            lines.insert(at, f"{draw(st.sampled_from(FRAGMENTS))}: 1")
    return "\n".join(lines) + "\n"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated_yaml())
def test_a_yaml_mutated_spec_is_valid_or_a_named_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_bytes(fill(text.encode(errors="surrogateescape"), tmp))
        check(path)


HEADERS = ["a", "b", "label", "a", "", " ", "x y", "é", "1", "__x", "null", "label"]
CELLS: list[str] = ["", "NA", "null", "0", "1", "-1", "1.5", "1e308", "inf", "nan", "x", "y"] * 3
CELLS += ["2024-01-01", "true", "a,b", '"q"', "é", "x" * 300, "12345678901234567890"]
ENCODINGS = ["utf-8"] * 6 + ["utf-8-sig", "latin-1", "utf-16", "cp1252"]


@st.composite
def csv_source(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """A random CSV: its bytes and its header names. Mostly readable (so the checks behind
    the reader run too), sometimes broken in one of the ways users' files are."""
    unique = draw(st.integers(0, 4)) > 0
    columns = draw(st.lists(st.sampled_from(HEADERS), min_size=1, max_size=5, unique=unique))
    rows = draw(st.sampled_from([60, 8, 60, 3, 60, 2, 1, 0]))
    null_column = draw(st.one_of(st.none(), st.none(), st.integers(0, len(columns) - 1)))
    ragged = draw(st.integers(0, 9)) == 0
    lines = [",".join(columns)]
    for i in range(rows):
        cells = [
            "" if c == null_column else draw(st.sampled_from(CELLS)) for c in range(len(columns))
        ]
        if ragged and i == rows - 1:
            cells.append("extra")
        lines.append(",".join(f'"{c}"' if "," in c else c for c in cells))
    text = "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))
    encoding = draw(st.sampled_from(ENCODINGS))
    return text.encode(encoding, errors="replace"), columns


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    csv_source(),
    st.sampled_from(["gaussian_copula", "ctgan", "tvae"]),
    st.sampled_from(["none", "condition", "balance", "target", "types"]),
    st.sampled_from(["x", 1, 0.5, True, "", None]),
)
def test_a_random_csv_source_is_valid_or_a_named_error(
    source: tuple[bytes, list[str]], kind: str, use: str, value: Any
) -> None:
    data, columns = source
    column = columns[-1]
    generator: dict[str, Any] = {"kind": kind}
    spec: dict[str, Any] = {"name": "fuzz", "modality": "tabular", "rows": 50}
    if use == "condition":
        generator["conditions"] = {column: value}
    elif use == "balance":
        generator["augment"] = {"balance": column}
        del spec["rows"]
    elif use == "target":
        spec["metrics"] = {"target_column": column}
    elif use == "types":
        generator["column_types"] = {column: "categorical"}
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "source.csv"
        csv.write_bytes(data)
        generator["source"] = str(csv)
        path = Path(tmp) / "spec.yaml"
        path.write_text(
            yaml.safe_dump({**spec, "generator": generator, "output": str(Path(tmp) / "out")})
        )
        check(path)
