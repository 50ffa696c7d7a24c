"""Limits on spec files: each malformed input is exit 2 from `synthfactory validate` within
seconds, in bounded memory, with the field (or line) named and the fix; never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from synthfactory.errors import SpecError
from synthfactory.spec import load_spec
from synthfactory.spec.limits import (
    MAX_ALIAS_EXPANSION,
    MAX_SHARDS,
    MAX_SPEC_BYTES,
    MAX_TEXT_CHARS,
    check_version_name,
)
from synthfactory_flows.cli import main

HEAD = """name: demo
modality: tabular
generator: {kind: python, factory: "synthfactory_workers.demo:SequenceGenerator"}
output: ./out
"""
BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""
#: a validate that needs more than this (KiB of peak RSS) is expanding the input
MEMORY_KB = 400_000


def _peak_kb(pid: int) -> int:
    """The process's own peak resident memory (VmHWM, of its address space since exec:
    unlike wait4's ru_maxrss, it does not inherit the forking test process's size)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_validate(path: Path) -> tuple[int, str, float, int]:
    """(exit code, output, seconds, peak RSS in KiB, sampled while it runs) of
    `synthfactory validate path` in a subprocess."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "synthfactory_flows.cli", "validate", str(path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _peak_kb(proc.pid))
            if time.monotonic() - started > 60:
                proc.kill()
                proc.wait()
                pytest.fail(f"validate {path.name} ran over 60 s")
            time.sleep(0.01)
        out.seek(0)
        text = out.read().decode()
    return proc.returncode, text, time.monotonic() - started, peak


def validate(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {type(result.exception).__name__}: {result.exception}"
    )
    return result.exit_code, result.output


@pytest.mark.parametrize("where", ["description", "options"])
def test_an_alias_bomb_is_refused_quickly_in_bounded_memory(tmp_path: Path, where: str) -> None:
    if where == "description":
        text = HEAD + "rows: 5\n" + BOMB + "description: *i\n"
    else:
        text = (
            HEAD.replace(
                '"synthfactory_workers.demo:SequenceGenerator"}',
                '"synthfactory_workers.demo:SequenceGenerator", options: {x: *i}}',
            )
            .replace("generator:", BOMB + "generator:", 1)
            .replace("name: demo\n", "")
        )
        text = "name: demo\n" + text + "rows: 5\n"
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    code, out, seconds, peak_kb = run_validate(path)
    assert code == 2, out
    assert "aliases" in out and str(MAX_ALIAS_EXPANSION) in out and "fix:" in out, out
    assert "Traceback" not in out
    assert seconds < 30 and peak_kb < MEMORY_KB, (seconds, peak_kb)


def test_a_bomb_built_in_python_is_refused_too() -> None:
    level: list[object] = ["lol"] * 9
    for _ in range(8):
        level = [level] * 9
    spec = {**_valid(), "generator": {**_valid()["generator"], "options": {"x": level}}}
    started = time.monotonic()
    with pytest.raises(SpecError, match="expands to more than"):
        load_spec(spec)
    assert time.monotonic() - started < 5


def _valid() -> dict[str, object]:
    return {
        "name": "demo",
        "modality": "tabular",
        "generator": {
            "kind": "python",
            "factory": "synthfactory_workers.demo:SequenceGenerator",
        },
        "rows": 5,
        "output": "/tmp/out",
    }


def test_a_recursive_alias_is_named(tmp_path: Path) -> None:
    path = tmp_path / "rec.yaml"
    path.write_text(HEAD + "rows: 5\ndescription: &x [*x]\n")
    code, out = validate(path)
    assert code == 2 and "*x" in out and "line 6" in out, out


def test_a_spec_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(HEAD + "rows: 5\ndescription: " + "a" * (30 * 1024 * 1024) + "\n")
    code, out, seconds, peak_kb = run_validate(path)
    assert code == 2 and "1 MiB" in out and "fix:" in out, out
    assert seconds < 30 and peak_kb < MEMORY_KB, (seconds, peak_kb)
    assert MAX_SPEC_BYTES == 1024 * 1024


def test_long_texts_are_limited(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(HEAD + "rows: 5\ndescription: " + "a" * (MAX_TEXT_CHARS + 1) + "\n")
    code, out = validate(path)
    assert code == 2 and "description: String should have at most 100000" in out, out
    spec = {
        **_valid(),
        "modality": "text",
        "generator": {
            "kind": "llm",
            "model": "builtin:smollm2",
            "prompt": {"template": "x" * (MAX_TEXT_CHARS + 1)},
        },
    }
    with pytest.raises(SpecError, match=r"generator.prompt.template: String should have at most"):
        load_spec(spec)


def test_deep_nesting_is_named(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(HEAD + "rows: 5\ndescription: " + "[" * 100_000 + "\n")
    code, out = validate(path)
    assert code == 2 and "nested more than 64 deep" in out, out
    json_path = tmp_path / "deep.json"
    json_path.write_text("[" * 100_000)
    code, out = validate(json_path)
    assert code == 2 and "nested too deeply" in out, out


def test_duplicate_keys_are_named(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(HEAD + "rows: 5\nresources:\n  actors: 1\n  actors: 2\n")
    code, out = validate(path)
    assert code == 2 and "line 8: duplicate key 'actors' (first on line 7)" in out, out
    assert "fix:" in out
    json_path = tmp_path / "dup.json"
    json_path.write_text('{"name": "a", "name": "b"}')
    code, out = validate(json_path)
    assert code == 2 and "duplicate key 'name'" in out, out
    merged = tmp_path / "merge.yaml"  # a merge key (<<) overriding is not a duplicate
    merged.write_text(HEAD + "rows: 5\nx: &r {actors: 1}\nresources: {<<: *r, actors: 2}\n")
    assert "duplicate" not in validate(merged)[1]


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("rows: true", "rows: true/false is not a number"),
        ("rows: 5\nshard_rows: yes", "shard_rows: true/false is not a number"),
        ("rows: 5\nresources: {actors: true}", "resources.actors: true/false is not a number"),
        ("rows: 5\nresources: {num_cpus: on}", "resources.num_cpus: true/false is not a number"),
        ("rows: 5\nresources: {custom_resources: {A100: true}}", "resources.custom_resources"),
        ("rows: 5\nseed: false", "seed: true/false is not a number"),
    ],
)
def test_booleans_are_not_counts(tmp_path: Path, line: str, field: str) -> None:
    path = tmp_path / "bool.yaml"
    path.write_text(HEAD + line + "\n")
    code, out = validate(path)
    assert code == 2 and field in out, out


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("resources: {num_cpus: .inf}", "resources.num_cpus is inf"),
        ("retries: {retry_delay_seconds: .inf}", "retries.retry_delay_seconds is inf"),
        ("resources: {num_gpus: .nan}", "resources.num_gpus is nan"),
        ("resources: {num_cpus: 'inf'}", "resources.num_cpus: Input should be a finite number"),
        ("retries: {retry_delay_seconds: '-inf'}", "retry_delay_seconds: Input should be a finite"),
    ],
)
def test_non_finite_numbers_are_refused_everywhere(tmp_path: Path, line: str, field: str) -> None:
    path = tmp_path / "inf.yaml"
    path.write_text(HEAD + "rows: 5\n" + line + "\n")
    code, out = validate(path)
    assert code == 2 and field in out, out
    options = HEAD.replace('Generator"}', 'Generator", options: {speed: .inf}}')
    path.write_text(options + "rows: 5\n")
    code, out = validate(path)
    assert code == 2 and "generator.options.speed is inf" in out, out


def test_a_non_utf8_spec_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes((HEAD + "rows: 5\ndescription: caf\xe9\n").encode("latin-1"))
    code, out = validate(path)
    assert code == 2 and "is not UTF-8 text: byte 0xe9" in out and "line 6" in out, out
    assert "save the spec as UTF-8" in out


def test_an_empty_spec_is_named(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    code, out = validate(path)
    assert code == 2 and "is empty" in out, out


def test_shards_per_job_are_capped_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "shards.yaml"
    path.write_text(HEAD + "rows: 10000000000\nshard_rows: 1\n")
    started = time.monotonic()
    code, out = validate(path)
    assert time.monotonic() - started < 10
    assert code == 2 and f"at most {MAX_SHARDS}" in out and "raise shard_rows" in out, out
    path.write_text(HEAD + f"rows: {MAX_SHARDS * 3}\nshard_rows: 3\n")
    assert validate(path)[0] == 0


@pytest.mark.parametrize("name", ["../../x", "..", ".", "a/b", "", "x" * 200, "a b", "é"])
def test_unsafe_version_names_are_refused(name: str) -> None:
    with pytest.raises(SpecError, match="not a safe name"):
        check_version_name(name)


@pytest.mark.parametrize("name", ["v1", "2024-01-01", "per-run", "a.b_c"])
def test_safe_version_names_pass(name: str) -> None:
    assert check_version_name(name) == name


def test_run_refuses_a_version_outside_the_output_root(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + "rows: 5\n")
    result = CliRunner().invoke(main, ["run", str(path), "--version", "../../x"])
    assert result.exit_code == 2, result.output
    assert "--version" in result.output and "not a safe name" in result.output
    assert not (tmp_path.parent / "x").exists()
