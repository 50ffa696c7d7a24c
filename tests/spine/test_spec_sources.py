"""What a spec points at, checked by the preflight `validate` and `run` share: source tables
that cannot be fitted, conditions the source lacks, an output nobody can write. Each is exit
2 from `synthfactory validate`, naming the file, column, value or bucket, with the fix."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from synthfactory.errors import SpecError
from synthfactory.spec import load_spec
from synthfactory.spec.limits import MAX_SHARDS
from synthfactory_flows.cli import main
from synthfactory_flows.plan import plan_shards

ROOT = Path(__file__).resolve().parents[2]
PENGUINS = ROOT / "examples" / "data" / "penguins.csv"
ROWS = PENGUINS.read_text().splitlines()


def spec_file(tmp_path: Path, generator: dict[str, object], **fields: object) -> Path:
    spec = {
        "name": "t",
        "modality": "tabular",
        "generator": generator,
        "rows": 100,
        "output": str(tmp_path / "out"),
        **fields,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def validate(path: Path) -> tuple[int, str]:
    started = time.monotonic()
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert time.monotonic() - started < 30
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {type(result.exception).__name__}: {result.exception}"
    )
    return result.exit_code, result.output


def csv(tmp_path: Path, text: str, name: str = "source.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def copula(source: str, **options: object) -> dict[str, object]:
    return {"kind": "gaussian_copula", "source": source, **options}


def test_a_repeated_header_is_named(tmp_path: Path) -> None:
    source = csv(tmp_path, "a,b,a\n1,2,3\n4,5,6\n7,8,9\n")
    code, out = validate(spec_file(tmp_path, copula(source)))
    assert code == 2 and "repeated column name(s) ['a']" in out and source in out, out
    assert "fix: give every column" in out


@pytest.mark.parametrize("kind", ["gaussian_copula", "ctgan", "tvae"])
def test_a_one_row_source_is_named_at_preflight(tmp_path: Path, kind: str) -> None:
    source = csv(tmp_path, ROWS[0] + "\n" + ROWS[1] + "\n")
    code, out = validate(spec_file(tmp_path, {"kind": kind, "source": source}))
    assert code == 2, out
    assert f"has 1 row(s); {kind} needs at least 2 rows to fit" in out, out


def test_a_holdout_that_leaves_too_few_training_rows_is_named(tmp_path: Path) -> None:
    source = csv(tmp_path, "\n".join(ROWS[:3]) + "\n")
    path = spec_file(tmp_path, copula(source), metrics={"holdout": 0.5})
    code, out = validate(path)
    assert code == 2 and "held out by metrics.holdout" in out and "holdout" in out, out


def test_an_all_null_column_is_named(tmp_path: Path) -> None:
    text = ROWS[0] + ",notes\n" + "\n".join(r + "," for r in ROWS[1:60]) + "\n"
    source = csv(tmp_path, text)
    code, out = validate(spec_file(tmp_path, copula(source)))
    assert code == 2 and "['notes'] hold no values" in out and "fix: drop the column" in out, out


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({"species": "Dodo"}, "generator.conditions.species: 'Dodo' never occurs"),
        ({"body_mass_g": 99999}, "generator.conditions.body_mass_g: 99999 is outside"),
        ({"body_mass_g": "heavy"}, "'heavy' is not a numerical value"),
    ],
)
def test_a_condition_the_source_lacks_is_named(
    tmp_path: Path, conditions: dict[str, object], expected: str
) -> None:
    code, out = validate(spec_file(tmp_path, copula(str(PENGUINS), conditions=conditions)))
    assert code == 2 and expected in out, out
    assert "fix:" in out


def test_conditions_the_source_has_pass(tmp_path: Path) -> None:
    path = spec_file(tmp_path, copula(str(PENGUINS), conditions={"species": "gentoo"}))
    assert validate(path)[0] == 0
    path = spec_file(tmp_path, copula(str(PENGUINS), conditions={"body_mass_g": 4000}))
    assert validate(path)[0] == 0


def test_a_missing_bucket_is_named(tmp_path: Path, s3_endpoint: str) -> None:
    generator = {
        "kind": "python",
        "factory": "synthfactory_workers.demo:SequenceGenerator",
    }
    path = spec_file(tmp_path, generator, output="s3://no-such-bucket-synthfactory/data")
    code, out = validate(path)
    assert code == 2 and "no-such-bucket-synthfactory" in out and "fix:" in out, out


def test_a_writable_bucket_passes_and_keeps_no_probe(
    tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    import boto3

    generator = {
        "kind": "python",
        "factory": "synthfactory_workers.demo:SequenceGenerator",
    }
    path = spec_file(tmp_path, generator, output=f"{s3_bucket}/data")
    code, out = validate(path)
    assert code == 0, out
    listed = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(
        Bucket=s3_bucket.removeprefix("s3://")
    )
    assert listed.get("KeyCount", 0) == 0, listed


def test_an_unwritable_output_folder_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    generator = {
        "kind": "python",
        "factory": "synthfactory_workers.demo:SequenceGenerator",
    }
    code, out = validate(spec_file(tmp_path, generator, output=str(blocker / "out")))
    assert code == 2 and str(blocker) in out, out


def test_shards_are_capped_when_planned() -> None:
    job = load_spec(
        {
            "name": "t",
            "modality": "tabular",
            "generator": {
                "kind": "python",
                "factory": "synthfactory_workers.demo:SequenceGenerator",
            },
            "rows": MAX_SHARDS,
            "shard_rows": 1,
            "output": "/tmp/out",
        }
    )
    assert len(plan_shards(job, rows=10)) == 10
    with pytest.raises(SpecError, match="raise shard_rows"):
        plan_shards(job, rows=MAX_SHARDS + 1)


@pytest.mark.parametrize("field", ["source", "output", "artifacts", "spec"])
def test_a_path_too_long_for_the_file_system_is_named(tmp_path: Path, field: str) -> None:
    long = str(tmp_path / ("x" * 5000))
    generator: dict[str, object] = {
        "kind": "python",
        "factory": "synthfactory_workers.demo:SequenceGenerator",
    }
    fields: dict[str, object] = {}
    if field == "source":
        generator = copula(long + ".csv")
    elif field == "output":
        fields["output"] = long
    elif field == "artifacts":
        fields["storage"] = {"artifacts": long}
    path = spec_file(tmp_path, generator, **fields)
    code, out = validate(Path(long + ".yaml") if field == "spec" else path)
    assert code == 2 and ("too long" in out or "not found" in out), out
