"""Every example under examples/ works as shipped: each spec passes `synthfactory validate`
unchanged (fast), each one previews (`synthfactory preview -n 2`; slow where a model
loads) except those NOT_PREVIEWED names, and each one runs end to end through
`synthfactory run --rows N` (slow) and publishes, its dataset card beside the data (no value
shown for nothing), except those NOT_RUN names with the reason. Specs on S3 run against the
moto server, in the bucket they name. The README links only files that exist, and links
every example (so a new example is documented and tested)."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from synthfactory.spec import JobSpec, load_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def defines_spec(path: Path) -> bool:
    """A Python example is a spec when it assigns `spec` at the top level (else a script)."""
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "spec" for t in targets):
            return True
    return False


SPECS = sorted(
    p.name
    for p in EXAMPLES.iterdir()
    if p.suffix in (".yaml", ".yml", ".json") or (p.suffix == ".py" and defines_spec(p))
)
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py") if not defines_spec(p))

#: rows each example runs at (None: the spec derives them), and the most seconds it may take
RUNS: dict[str, tuple[int | None, int]] = {
    "image_digits.yaml": (8, 300),
    "tabular_balance.yaml": (None, 300),  # rows derived by the class balancing: 456
    "tabular_dp.yaml": (1000, 300),
    "tabular_penguins_s3.py": (1000, 300),
    "tabular_bank.yaml": (20, 300),
    "tabular_relational.yaml": (20, 300),
    "tabular_sequential.yaml": (20, 300),
    "text_instruct_judge.yaml": (2, 480),  # two model pools: the drafts' and the judge's
    "text_reviews.yaml": (2, 300),
}
#: what a run of an example whose rows are derived (not given by --rows) publishes
DERIVED_ROWS = {"tabular_balance.yaml": 456}  # 344 source rows + 112 to even the species
#: examples validated but not run here, and why
NOT_RUN = {
    # run end to end by other tests already (CI time: each run here costs ~30 s of start-up)
    "tabular_penguins.yaml": "run by tests/tabular/test_tabular_job.py::test_quickstart_command",
    "text_code_validate.yaml": "run by tests/text/test_pipeline_job.py "
    "(test_code_example_validates_and_runs_each_rows_test)",
    "image_augment.yaml": "Stable Diffusion v1.5 (about 4 GB from Hugging Face) and a bucket "
    "of product photos; validated against moto with a one-image source",
    "text_grounded_qa.yaml": "run by tests/text/test_pipeline_job.py "
    "(test_grounded_qa_example_keeps_judged_rows_with_lineage_metrics_and_gates)",
}


def one_image_parquet() -> bytes:
    """A source table of one 8x8 PNG in the Hugging Face `Image` struct."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(png, "PNG")
    out = io.BytesIO()
    pq.write_table(pa.table({"image": [{"bytes": png.getvalue(), "path": "red.png"}]}), out)
    return out.getvalue()


#: objects an example reads from S3, put on the moto server before it validates
S3_OBJECTS: dict[str, Callable[[], bytes]] = {
    "s3://my-bucket/products/images.parquet": one_image_parquet,
}


def s3_uris(job: JobSpec) -> list[str]:
    """The output and the sources of a spec that live on S3."""
    found = [job.output] if job.output.startswith("s3://") else []
    source = getattr(job.generator, "source", None)
    if isinstance(source, str) and source.startswith("s3://"):
        found.append(source)
    return found


def prepare_s3(request: pytest.FixtureRequest, job: JobSpec) -> None:
    """Start moto when the spec uses S3; create the buckets it names and the objects it
    reads (the s3_endpoint fixture puts the endpoint and dummy credentials in the env)."""
    uris = s3_uris(job)
    if not uris:
        return
    import boto3
    from botocore.exceptions import ClientError

    endpoint = request.getfixturevalue("s3_endpoint")
    client = boto3.client("s3", endpoint_url=endpoint)
    for uri in uris:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            client.create_bucket(Bucket=bucket)
        except ClientError as exc:  # made by an earlier test of this session
            if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise
        if uri in S3_OBJECTS:
            client.put_object(Bucket=bucket, Key=key, Body=S3_OBJECTS[uri]())


def cli(*args: str, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess[str]:
    """Run the command in its own process group. On a timeout the whole group (the driver,
    its Ray processes, its Prefect server) gets SIGINT (a graceful stop), then SIGKILL: a
    SIGKILLed driver alone leaves Ray's agents running."""
    command = [sys.executable, "-m", "synthfactory_flows.cli", *args]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for sig, grace in ((signal.SIGINT, 60), (signal.SIGKILL, 30)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
                try:
                    stdout, stderr = process.communicate(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
            else:
                stdout, stderr = "", ""
            pytest.fail(f"{' '.join(args)}: no result after {timeout} s\n{stdout}{stderr}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PREFECT_API_URL")}
    env.update(extra)
    return env


def test_every_example_is_tested() -> None:
    assert len(SPECS) >= 12 and SCRIPTS == ["train_digits_diffusion.py"], (SPECS, SCRIPTS)
    assert {n for n, (rows, _) in RUNS.items() if rows is None} == set(DERIVED_ROWS)
    untested = set(SPECS) - set(RUNS) - set(NOT_RUN)
    assert not untested, f"add these examples to RUNS (or NOT_RUN, with the reason): {untested}"
    assert not (set(RUNS) | set(NOT_RUN)) - set(SPECS), "RUNS/NOT_RUN name a missing example"
    assert set(NOT_PREVIEWED) <= set(SPECS), "NOT_PREVIEWED names a missing example"


def test_the_readme_links_every_example_and_only_files_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    linked = set(re.findall(r"examples/[\w./-]*\w", readme))
    missing = sorted(p for p in linked if not (ROOT / p).exists())
    assert not missing, f"README.md names example files that do not exist: {missing}"
    unlinked = sorted(set(SPECS + SCRIPTS) - {Path(p).name for p in linked})
    assert not unlinked, f"README.md never mentions these examples: {unlinked}"


@pytest.mark.parametrize("name", SPECS)
def test_example_validates(name: str, request: pytest.FixtureRequest) -> None:
    prepare_s3(request, load_spec(EXAMPLES / name))
    out = cli("validate", str(EXAMPLES / name), env=clean_env(), timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith(f"ok: {EXAMPLES / name} ("), out.stdout


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One Prefect home for every run here: its database is created once."""
    return str(tmp_path_factory.mktemp("prefect"))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNS))
def test_example_runs(
    name: str, request: pytest.FixtureRequest, tmp_path: Path, prefect_home: str
) -> None:
    from synthfactory.dataset import open_dataset

    rows, timeout = RUNS[name]
    job = load_spec(EXAMPLES / name)
    prepare_s3(request, job)
    if job.output.startswith("s3://"):  # the spec's own bucket, a prefix of this test's
        output = f"{job.output}/{os.urandom(4).hex()}"
    else:
        output = str(tmp_path / "out")
    args = ["run", str(EXAMPLES / name), "--output", output, "--quiet"]
    if rows is not None:
        args += ["--rows", str(rows)]
    out = cli(*args, env=clean_env(PREFECT_HOME=prefect_home), timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "status: published" in out.stdout, out.stdout + out.stderr
    dataset = open_dataset(output)
    manifest = dataset.manifest
    assert manifest.status == "published"
    assert f"dataset: {dataset.uri}" in out.stdout
    assert manifest.rows == (rows if rows is not None else DERIVED_ROWS[name])
    assert all(gate["passed"] for gate in manifest.gates), manifest.gates
    card = dataset.store.get_text("README.md")  # the dataset card, beside the data
    assert card.startswith("---") and job.name in card
    # no value for nothing: a metric over nothing reads n/a, a missing cell (null)
    nothing = re.search(r"\| (nan|NaN|None|<NA>|NaT) (?=\|)|`: (nan|NaN|None|<NA>)$", card, re.M)
    assert nothing is None, f"the card shows {nothing.group(0)!r}:\n{card}"
    assert f"  card: {dataset.store.url('README.md')}" in out.stdout
    # the summary's inspect line is a command that runs as printed
    inspect = shlex.split(out.stdout.split("  inspect: ", 1)[1].splitlines()[0])
    shown = subprocess.run(inspect, capture_output=True, text=True, env=clean_env(), timeout=120)
    assert shown.returncode == 0 and manifest.version in shown.stdout, shown.stdout + shown.stderr


#: examples not previewed here, and why
NOT_PREVIEWED = {
    "image_augment.yaml": "Stable Diffusion v1.5 (about 4 GB from Hugging Face)",
}
#: examples that load a model to preview (seconds to a minute each on 2 cores): slow
MODEL_EXAMPLES = {n for n in SPECS if n.startswith(("text_", "image_"))}


def files_under(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")} if folder.exists() else {}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=[pytest.mark.slow] if n in MODEL_EXAMPLES else [])
        for n in SPECS
        if n not in NOT_PREVIEWED
    ],
)
def test_example_previews(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """`synthfactory preview EXAMPLE -n 2` as shipped: rows (kept, or rejected with their
    reason), one summary line, nothing written under the spec's output."""
    job = load_spec(EXAMPLES / name)
    prepare_s3(request, job)
    local = None if job.output.startswith("s3://") else Path(job.output)
    before = files_under(local) if local else {}
    # a tabular fit is cached under the test's folder; the models' cache (SmolLM2 dequantised
    # once, a minute) is the user's, as the other model tests use it
    cache = {} if name in MODEL_EXAMPLES else {"SYNTHFACTORY_CACHE": str(tmp_path / "cache")}
    env = clean_env(**cache)
    out = cli("preview", str(EXAMPLES / name), "-n", "2", "--json", env=env, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    summary = re.match(r"(\d+) kept, (\d+) rejected", out.stderr.strip().splitlines()[-1])
    assert summary, out.stderr
    kept, rejected = int(summary[1]), int(summary[2])
    assert kept + rejected >= 2, out.stderr
    assert sum(r["_status"] == "kept" for r in records) >= kept, records
    assert all(r["reason"] for r in records if r["_status"] == "rejected"), records
    assert "Traceback" not in out.stderr, out.stderr
    if local:
        assert files_under(local) == before, "the preview wrote under the spec's output"


def test_the_summary_names_a_command_that_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the quickstart `synthfactory` is not on PATH: the summary prints the path of
    the script that ran (relative to the working directory when under it)."""
    from synthfactory_flows.cli import this_command

    script = tmp_path / "venv" / "bin" / "synthfactory"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script), "run", "x.yaml"])
    monkeypatch.setenv("PATH", "/nonexistent")
    assert this_command() == "venv/bin/synthfactory"
    monkeypatch.setenv("PATH", str(script.parent))
    assert this_command() == "synthfactory"
    monkeypatch.setattr(sys, "argv", ["/somewhere/cli.py"])
    assert this_command() == "synthfactory"
    monkeypatch.setenv("PATH", "/nonexistent")
    assert this_command().endswith(" -m synthfactory_flows.cli")


@pytest.mark.slow
def test_the_digits_training_script_runs(tmp_path: Path) -> None:
    """A few steps of examples/train_digits_diffusion.py: the folder it saves loads as the
    pipeline `builtin:digits` is."""
    out = tmp_path / "digits"
    script = str(EXAMPLES / "train_digits_diffusion.py")
    run = subprocess.run(
        [sys.executable, script, "--steps", "2", "--batch", "8", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "saved to" in run.stdout
    from diffusers import DDPMPipeline

    pipeline = DDPMPipeline.from_pretrained(out)
    assert pipeline.unet.config.sample_size == 16
