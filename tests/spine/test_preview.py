"""``synthfactory preview``: a spec's generator on a few rows, in this process, writing
nothing; the rows are those a run makes from the same seed."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner
from rich.console import Console

from synthfactory.errors import ConfigError, SpecError
from synthfactory.spec import JobSpec, load_spec
from synthfactory_flows.cli import main
from synthfactory_flows.plan import plan_shards
from synthfactory_flows.preflight import preflight
from synthfactory_flows.preview import (
    Previewer,
    artifacts_uri,
    check_in_process,
    engines,
    preview,
)
from synthfactory_workers.actor import ShardWorker
from synthfactory_workers.contract import generator_class

from ..tabular.tables import mixed_table, spec_dict, write
from .helpers import sequence_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fits go to a cache of the test's own (never the user's)."""
    monkeypatch.setenv("SYNTHFACTORY_CACHE", str(tmp_path / "cache"))


def shard_rows_as_written(job: JobSpec, tmp_path: Path, shard: int = 0) -> pa.Table:
    """What a run's actor writes for shard ``shard`` of ``job`` (``ShardWorker``, the class
    the Ray pool wraps, with the run's prepare step and shard plan), read back."""
    checked = preflight(job).job
    artifacts = str(tmp_path / "run-artifacts")
    from synthfactory.storage import open_store

    prepared = generator_class(checked).prepare(checked, open_store(artifacts))
    version = tmp_path / "run" / "v-1"
    worker = ShardWorker(checked, prepared, str(version), artifacts)
    worker.setup()
    entry = worker.run_shard(plan_shards(checked)[shard])
    table = pq.read_table(version / entry["path"])
    return table.drop_columns([c for c in table.column_names if c.startswith("__")])


def write_spec(tmp_path: Path, spec: dict[str, Any], name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return path


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")) if folder.exists() else []


# -- the rows --------------------------------------------------------------------------------


def test_sequence_preview_is_the_rows_a_run_of_n_rows_writes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec = sequence_spec(str(out), rows=1000, shard_rows=250)
    result = Previewer(spec).preview(7)
    assert result.rows.column_names == ["id", "value", "category", "text"]
    assert result.rows["id"].to_pylist() == list(range(7))
    # `run --rows 7`: one shard of 7 rows, shard 0's seed
    written = shard_rows_as_written(load_spec(spec, rows=7), tmp_path)
    assert result.rows.equals(written)
    # another seed, other rows; the same seed again, the same rows
    assert not Previewer(spec, seed=12).preview(7).rows.equals(written)
    assert preview(spec, 7).rows.equals(written)
    assert files_under(out) == []


def test_copula_preview_is_the_first_rows_of_a_run(tmp_path: Path) -> None:
    source = write(mixed_table(), tmp_path)
    out = tmp_path / "out"
    spec = spec_dict(source, out, rows=1000)  # shards of 500 rows
    result = Previewer(spec).preview(5)
    first_shard = shard_rows_as_written(load_spec(spec), tmp_path)
    assert first_shard.num_rows == 500
    assert result.rows.equals(first_shard.slice(0, 5))
    assert result.rows["customer_id"].to_pylist() == first_shard["customer_id"].to_pylist()[:5]
    assert result.prepare_seconds > 0 and result.loaded
    # nothing under the output; the fit is cached outside it (the user's cache here)
    assert files_under(out) == []
    assert artifacts_uri(load_spec(spec)).startswith(str(tmp_path / "cache"))
    assert any((tmp_path / "cache" / "preview-artifacts").iterdir())


def test_rows_beyond_one_shard_follow_the_shard_plan(tmp_path: Path) -> None:
    source = write(mixed_table(), tmp_path)
    spec = spec_dict(source, tmp_path / "out", rows=1000)
    spec["shard_rows"] = 4
    spec["rows"] = 1000
    result = Previewer(spec).preview(6)  # shard 0 (4 rows) and shard 1 (2 of its 4)
    second = shard_rows_as_written(load_spec(spec), tmp_path, shard=1)
    assert result.rows.num_rows == 6
    assert result.rows.slice(4).equals(second.slice(0, 2))


def test_a_previewer_keeps_its_generator_until_the_spec_changes(tmp_path: Path) -> None:
    source = write(mixed_table(), tmp_path)
    spec = spec_dict(source, tmp_path / "out", rows=1000)
    previewer = Previewer(spec)
    first = previewer.preview(3)
    generator = previewer.generator
    again = previewer.preview(3, seed=5)  # a seed is the shard plan's: same generator
    assert previewer.generator is generator and not again.loaded
    assert again.prepare_seconds == again.load_seconds == 0
    assert not again.rows.equals(first.rows) and again.spec.seed == 5
    assert previewer.preview(3).rows.equals(first.rows)  # that seed was for one call
    edited = {**spec, "generator": {**spec["generator"], "enforce_min_max": False}}
    changed = previewer.preview(3, spec=edited)
    assert previewer.generator is not generator and changed.loaded


def test_text_models_are_kept_when_only_prompts_change() -> None:
    """What decides whether a text model is loaded again: its engine settings only."""
    base = load_spec(ROOT / "examples" / "text_instruct_judge.yaml")
    keys = engines(base)
    assert list(keys) == [None, "judge"]
    config = base.generator.model_dump(mode="json", exclude_unset=True)
    config["columns"][2]["template"] = "Say hello to {{ persona.first_name }}."
    config["columns"][2]["sampling"] = {"temperature": 0.1}
    config["keep"] = "{{ judge.helpfulness.score >= 4 }}"
    assert engines(load_spec(base, generator=config)) == keys
    config["models"] = {"judge": {"model": "builtin:smollm2", "dtype": "float32"}}
    moved = engines(load_spec(base, generator=config))
    assert moved[None] == keys[None] and moved["judge"] != keys["judge"]
    assert engines(load_spec(sequence_spec("/tmp/x"))) == {}


def test_a_model_on_another_interpreter_is_a_named_error() -> None:
    spec = load_spec(ROOT / "examples" / "text_reviews.yaml")
    config = spec.generator.model_dump(mode="json", exclude_unset=True)
    config["backend"] = {"kind": "vllm", "python": "/opt/vllm/bin/python"}
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("this interpreter has vllm: such a model loads here")
    with pytest.raises(ConfigError, match=r"generator\.backend\.python") as raised:
        check_in_process(load_spec(spec, generator=config))
    assert "/opt/vllm/bin/python -m synthfactory_flows.cli preview" in str(raised.value.fix)


# -- the command -----------------------------------------------------------------------------


def test_cli_prints_rows_rejected_rows_and_a_summary(tmp_path: Path) -> None:
    spec = sequence_spec(str(tmp_path / "out"), reject_every=3, text_length=300)
    path = write_spec(tmp_path, spec)
    result = CliRunner().invoke(main, ["preview", str(path), "-n", "5"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "seq: 3 row(s)" in out and "rejected: 2 row(s)" in out
    assert "filtered" in out  # the rejected rows' reason
    assert "…" in out  # 300-character texts are cut
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("3 kept, 2 rejected") and "load" in summary
    assert "generate" in summary
    assert files_under(tmp_path / "out") == []


def test_cli_json_lines_parse_and_hold_full_values(tmp_path: Path) -> None:
    spec = sequence_spec(str(tmp_path / "out"), reject_every=3, text_length=300)
    path = write_spec(tmp_path, spec)
    result = CliRunner().invoke(main, ["preview", str(path), "-n", "5", "--json", "--seed", "4"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["_status"] for r in lines] == ["kept"] * 3 + ["rejected"] * 2
    assert all(len(r["text"]) > 300 for r in lines)  # not truncated
    assert lines[3]["reason"] == "filtered"
    expected = Previewer(spec, seed=4).preview(5).rows.to_pylist()
    assert [{k: v for k, v in r.items() if k != "_status"} for r in lines[:3]] == expected
    assert "3 kept, 2 rejected" in result.stderr
    only = CliRunner().invoke(main, ["preview", str(path), "--json", "--column", "id,category"])
    assert only.exit_code == 0, only.output
    assert [set(json.loads(x)) for x in only.stdout.splitlines()] == [
        {"_status", "id", "category"}
    ] * 2 + [{"_status", "reason", "id", "category"}]


def test_column_option_shows_only_those_and_names_unknown_ones(tmp_path: Path) -> None:
    path = write_spec(tmp_path, sequence_spec(str(tmp_path / "out")))
    shown = CliRunner().invoke(main, ["preview", str(path), "-c", "text"])
    assert shown.exit_code == 0, shown.output
    assert "text" in shown.stdout and "category" not in shown.stdout
    unknown = CliRunner().invoke(main, ["preview", str(path), "-c", "colour"])
    assert unknown.exit_code == 2
    assert "'colour'" in unknown.stderr and "category" in unknown.stderr


def test_a_bad_spec_exits_2_naming_the_field(tmp_path: Path) -> None:
    spec = sequence_spec(str(tmp_path / "out"))
    bad = write_spec(tmp_path, {**spec, "rows": "many"}, "bad.yaml")
    result = CliRunner().invoke(main, ["preview", str(bad)])
    assert result.exit_code == 2
    assert "rows: Input should be a valid integer" in result.stderr
    # the preflight's errors too (what `validate` says), before anything loads
    source = write(mixed_table(), tmp_path)
    table = spec_dict(source, tmp_path / "out", conditions={"planet": "mars"})
    result = CliRunner().invoke(main, ["preview", str(write_spec(tmp_path, table, "t.yaml"))])
    validate = CliRunner().invoke(main, ["validate", str(tmp_path / "t.yaml")])
    assert result.exit_code == validate.exit_code == 2
    assert "planet" in result.stderr and result.stderr == validate.stderr
    with pytest.raises(SpecError):
        Previewer({**spec, "rows": "many"})
    with pytest.raises(ConfigError, match="at least one row"):
        Previewer(spec).preview(0)
    assert files_under(tmp_path / "out") == []


def test_show_fits_the_width_and_cuts_long_cells(tmp_path: Path) -> None:
    spec = sequence_spec(str(tmp_path / "out"), text_length=2000)
    result = Previewer(spec).preview(2)
    buffer = io.StringIO()
    result.show(console=Console(file=buffer, width=70))
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 70
    assert "…" in buffer.getvalue()
    assert len(lines) < 40  # each 2000-character text is a few lines, not 30
    assert "kept" in lines[-1]
    assert "PreviewResult(2 kept" in repr(result)
    assert "<table" in result._repr_html_()


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_preview_rows_are_a_real_runs_rows(tmp_path: Path) -> None:
    """The whole run (Prefect flow, Ray actors, Parquet) against the preview: a copula's
    preview is the dataset's first rows; the Python generator's is `run --rows N`'s."""
    from synthfactory.dataset import open_dataset
    from synthfactory_flows.generate import run_job

    source = write(mixed_table(), tmp_path)
    spec = spec_dict(source, tmp_path / "copula", rows=1000)
    dataset = open_dataset(run_job(load_spec(spec))["uri"]).to_arrow()
    assert Previewer(spec).preview(5).rows.equals(dataset.slice(0, 5))
    seq = sequence_spec(str(tmp_path / "seq"), rows=6, shard_rows=250, actors=1)
    written = open_dataset(run_job(seq)["uri"]).to_arrow()
    assert Previewer(seq).preview(6).rows.equals(written)
