from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from synthfactory.errors import SpecError
from synthfactory.spec import JobSpec, load_spec

VALID = {
    "name": "demo",
    "modality": "tabular",
    "generator": {
        "kind": "python",
        "factory": "synthfactory_workers.demo:SequenceGenerator",
    },
    "rows": 100,
    "shard_rows": 30,
    "output": "/tmp/out",
}


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synthfactory_flows.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def test_valid_spec_and_shard_count() -> None:
    spec = load_spec(VALID)
    assert spec.shard_count == 4
    assert spec.resources.actors == 1


def test_errors_name_the_field_the_value_and_the_fix() -> None:
    bad = {
        **VALID,
        "rows": 0,
        "shard_rowz": 5,
        "resources": {"actors": 2, "num_gpu": 1},
        "generator": {"kind": "gaussian_copula", "sorce": "x.csv"},
    }
    with pytest.raises(SpecError) as info:
        load_spec(bad)
    text = str(info.value)
    assert "rows: Input should be greater than or equal to 1 (given: 0)" in text
    assert "shard_rowz: unknown field; did you mean 'shard_rows'?" in text
    assert "resources.num_gpu: unknown field; did you mean 'num_gpus'?" in text
    assert "generator.sorce: unknown field; did you mean 'source'?" in text
    assert "generator.source: required field is missing" in text
    assert "fix:" in text


def test_storage_settings_are_each_schemes_own_and_never_echoed() -> None:
    """``storage.s3`` is S3's section (and its settings may stand at the top); a key no
    scheme has is refused, naming the fix, and a value under ``storage`` (where a credential
    would be put by mistake) never appears in the error."""
    job = load_spec({**VALID, "storage": {"addressing_style": "path", "s3": {"region": "r"}}})
    assert job.storage.model_dump()["s3"]["addressing_style"] == "path"
    assert job.storage.model_dump()["s3"]["region"] == "r"
    secret = "sf-secret-value-123"
    for storage, expected in (
        ({"aws_secret_access_key": secret}, "storage.aws_secret_access_key is not a setting"),
        ({"s3": {"secret_key": secret}}, "storage.s3.secret_key is not a setting"),
        ({"s3": {"adressing_style": secret}}, "did you mean 'addressing_style'?"),
        ({"s3": {"region": secret, "verify_tls": secret}}, "storage.s3.verify_tls:"),
    ):
        with pytest.raises(SpecError) as info:
            load_spec({**VALID, "storage": storage})
        assert expected in str(info.value) and secret not in str(info.value), storage


def test_rows_is_required_unless_the_generator_derives_it() -> None:
    missing = {k: v for k, v in VALID.items() if k != "rows"}
    with pytest.raises(SpecError, match="rows: say how many rows"):
        load_spec(missing)
    copula = {"kind": "gaussian_copula", "source": "a.csv"}
    with pytest.raises(SpecError, match="rows: say how many rows"):
        load_spec({**missing, "generator": copula})
    balanced = load_spec({**missing, "generator": {**copula, "augment": {"balance": "label"}}})
    assert balanced.rows is None


def test_unknown_generator_kind_lists_the_allowed_ones() -> None:
    with pytest.raises(SpecError, match="'gaussian_copula'"):
        load_spec({**VALID, "generator": {"kind": "gpt9"}})


def test_modality_must_match_generator() -> None:
    with pytest.raises(SpecError, match="makes tabular data, not text"):
        load_spec(
            {
                **VALID,
                "modality": "text",
                "generator": {"kind": "gaussian_copula", "source": "a.csv"},
            }
        )


def test_content_hash_ignores_where_and_how_but_not_what() -> None:
    a = load_spec(VALID)
    assert (
        a.content_hash()
        == load_spec({**VALID, "output": "s3://b/x", "resources": {"actors": 4}}).content_hash()
    )
    assert a.content_hash() != load_spec({**VALID, "seed": 1}).content_hash()
    assert a.content_hash() != a.content_hash({"source_sha256": "abc"})


def test_content_hash_ignores_how_requests_are_sent_but_not_what_they_ask() -> None:
    def text(**backend: object) -> str:
        return load_spec(
            {
                "name": "t",
                "modality": "text",
                "rows": 4,
                "output": "/tmp/x",
                "generator": {
                    "kind": "llm",
                    "model": "builtin:smollm2",
                    "prompt": {"template": "hi"},
                    "backend": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", **backend},
                },
            }
        ).content_hash()

    base = text()
    assert base == text(max_concurrency=3, request_timeout_seconds=9, api_key_env="K")
    assert base == text(price_per_million_tokens={"prompt": 1, "completion": 2}, journal=False)
    assert base != text(base_url="http://127.0.0.1:2/v1")
    assert base != text(api="completions")


def test_relative_paths_resolve_against_the_spec_file(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    path = tmp_path / "specs" / "job.yaml"
    data = {
        **VALID,
        "output": "../out",
        "generator": {"kind": "gaussian_copula", "source": "data/t.csv"},
    }
    path.write_text(yaml.safe_dump(data))
    spec = load_spec(path)
    assert spec.output == str(tmp_path / "out")
    assert spec.generator.source == str(tmp_path / "specs" / "data" / "t.csv")  # type: ignore[union-attr]


def test_python_spec_file(tmp_path: Path) -> None:
    path = tmp_path / "job.py"
    path.write_text(
        f"from synthfactory.spec import JobSpec\nspec = JobSpec.model_validate({VALID!r})\n"
    )
    assert load_spec(path).rows == 100


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(VALID))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**VALID, "rows": "many"}))
    ok = cli("validate", str(good))
    assert ok.returncode == 0, ok.stderr
    assert "4 shards" in ok.stdout
    fail = cli("validate", str(bad))
    assert fail.returncode == 2
    assert "rows: Input should be a valid integer" in fail.stderr
    assert "Traceback" not in fail.stderr
    missing = cli("validate", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_cli_schema_is_valid_json_schema() -> None:
    import jsonschema

    out = cli("schema")
    assert out.returncode == 0
    schema = json.loads(out.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "generator" in schema["properties"]
    jsonschema.validate(VALID, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**VALID, "rowz": 1}, schema)
    assert JobSpec.model_json_schema()["additionalProperties"] is False


def test_every_example_spec_validates() -> None:
    examples = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
    examples += sorted((Path(__file__).resolve().parents[2] / "examples").glob("*_s3.py"))
    assert len(examples) >= 4
    for path in examples:
        job = load_spec(path)
        assert job.rows or getattr(job.generator, "augment", None), path  # or derived


def test_generic_code_asks_generators_their_capabilities() -> None:
    """Pools, placement and manifests ask these methods, never a generator's fields."""
    examples = Path(__file__).resolve().parents[2] / "examples"
    judge = load_spec(examples / "text_instruct_judge.yaml").generator
    assert judge.pool_model_keys() == ["judge"]
    assert judge.actor_backend() is judge.backend
    assert list(judge.backend_configs()) == [("backend",)]  # judge: the job's own backend
    with_backend = judge.model_copy(
        update={"models": {"judge": judge.models["judge"].model_copy(update={"backend": "x"})}}
    )
    assert list(with_backend.backend_configs()) == [("backend",), ("models", "judge", "backend")]
    balance = load_spec(examples / "tabular_balance.yaml").generator
    assert balance.derives_rows() and not judge.derives_rows()
    assert balance.pool_model_keys() == [] and balance.backend_configs() == {}
    relational = load_spec(examples / "tabular_relational.yaml").generator
    assert relational.primary_keys()["islands"] == "island_id"
    assert {"parent", "child", "foreign_key"} == set(relational.relationship_keys()[0])
    assert balance.relationship_keys() == [] and balance.primary_keys() == {}
