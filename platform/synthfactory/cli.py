"""The ``synthfactory`` command. Heavy modules are imported inside each command."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from synthfactory.errors import ConfigError, SpecError, StorageAccessError, SynthfactoryError

F = TypeVar("F", bound=Callable[..., Any])

USER_ERRORS = (SpecError, ConfigError, StorageAccessError)


def friendly_errors(fn: F) -> F:
    """User errors: message + fix, exit 2. Other synthfactory errors: exit 1. No tracebacks."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)
        except SynthfactoryError as exc:
            click.secho(f"failed: {exc}", fg="red", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@click.group()
@click.version_option(package_name="synthfactory")
def main() -> None:
    """Generate synthetic text, image and tabular datasets at scale."""


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path())
@friendly_errors
def validate(specs: tuple[str, ...]) -> None:
    """Check job specs without running anything (exit 2 on the first invalid one)."""
    from synthfactory.spec import load_spec

    for path in specs:
        job = load_spec(path)
        click.echo(
            f"ok: {path} ({job.modality}, {job.generator.kind}, {job.rows} rows, "
            f"{job.shard_count} shards -> {job.output})"
        )


@main.command()
@click.option("--indent", default=2, show_default=True)
def schema(indent: int) -> None:
    """Print the job spec's JSON Schema (for editor completion and validation)."""
    from synthfactory.spec import json_schema

    click.echo(json.dumps(json_schema(), indent=indent))


@main.command()
@click.argument("spec", type=click.Path())
@click.option("--output", "-o", help="Override the spec's output (./folder or s3://bucket/prefix).")
@click.option("--rows", type=int, help="Override the number of rows.")
@click.option("--ray-address", envvar="RAY_ADDRESS", help="Ray cluster to use (default: local).")
@click.option("--version", "version_label", help="Version name (default: content hash of spec).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--verbose", "-v", is_flag=True, help="Show Prefect and Ray logs.")
@friendly_errors
def run(
    spec: str,
    output: str | None,
    rows: int | None,
    ray_address: str | None,
    version_label: str | None,
    quiet: bool,
    verbose: bool,
) -> None:
    """Generate the dataset SPEC describes, resuming any earlier partial run."""
    from synthfactory.spec import load_spec

    job = load_spec(spec, output=output, rows=rows)
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    click.echo(
        f"{job.name}: {job.rows} {job.modality} rows in {job.shard_count} shards "
        f"with {job.resources.actors} actor(s) -> {job.output}",
        err=True,
    )
    from synthfactory.progress_view import ProgressView
    from synthfactory_flows.generate import run_job

    with ProgressView(enabled=not quiet and sys.stderr.isatty()):
        result = run_job(job, ray_address=ray_address, version=version_label)
    _print_summary(result)


def _print_summary(result: dict[str, Any]) -> None:
    from synthfactory.dataset import open_dataset

    note = " (already complete)" if result.get("already_complete") else ""
    click.echo(f"dataset: {result['uri']}{note}")
    click.echo(
        f"  status: {result['status']}, rows: {result['rows']}, shards: {result['shards']}, "
        f"rejected: {result['rejected_rows']}, elapsed: {result['seconds']:.1f}s"
    )
    if not result.get("target_met", True):
        click.secho(
            f"  warning: only {result['rows']} of {result['target_rows']} rows were accepted "
            "(top-up budget spent); raise top_up_rounds or loosen the filters",
            fg="yellow",
        )
    timings = result.get("timings", {})
    if "generate_seconds" in timings and not result.get("already_complete"):
        click.echo(
            f"  startup: {float(timings.get('startup_seconds', 0)):.1f}s, "
            f"generation: {float(timings['generate_seconds']):.1f}s"
        )
    ds = open_dataset(result["uri"])
    columns = ", ".join(f"{f['name']}: {f['type']}" for f in ds.manifest.data_schema.fields)
    click.echo(f"  columns: {columns}")
    click.echo(f"  inspect: synthfactory datasets show {ds.uri}")


@main.group()
def datasets() -> None:
    """Browse datasets on a local folder or S3."""


@datasets.command("ls")
@click.argument("uri")
@friendly_errors
def datasets_ls(uri: str) -> None:
    """List dataset versions under URI (published, quarantined, incomplete)."""
    from synthfactory.dataset import list_versions
    from synthfactory.storage import open_store

    versions = list_versions(open_store(uri))
    if not versions:
        click.echo(f"no datasets under {uri}")
        return
    click.echo(f"{'STATUS':<12} {'ROWS':>10} {'SHARDS':>7}  {'CREATED':<21} URI")
    for v in versions:
        m = v.manifest
        if m is not None:
            click.echo(
                f"{v.status:<12} {m.rows:>10} {len(m.shards):>7}  {m.created_at:<21} {v.uri}"
            )
        else:
            p = v.progress or {}
            done = f"{p.get('rows_done', '?')}/{p.get('target_rows', '?')}"
            click.echo(f"{v.status:<12} {done:>10} {'':>7}  {'':<21} {v.uri}")


@datasets.command("show")
@click.argument("uri")
@click.option("--rows", "-n", default=5, show_default=True, help="Sample rows to print.")
@friendly_errors
def datasets_show(uri: str, rows: int) -> None:
    """Manifest summary, schema and sample rows of a dataset (newest version under URI)."""
    from synthfactory.dataset import open_dataset

    ds = open_dataset(uri)
    m = ds.manifest
    click.echo(f"dataset:   {m.name} ({m.modality})")
    click.echo(f"uri:       {ds.uri}")
    click.echo(f"version:   {m.version}  status: {m.status}  created: {m.created_at}")
    click.echo(f"rows:      {m.rows} in {len(m.shards)} shards, {m.rejected_rows} rejected")
    click.echo(f"generator: {json.dumps(m.generator)}")
    click.echo(f"spec hash: {m.spec_hash[:16]}  code: {m.lineage.get('code_version', '?')}")
    click.echo("schema:")
    for field in m.data_schema.fields:
        click.echo(f"  {field['name']}: {field['type']}")
    if rows > 0:
        import pandas as pd

        with pd.option_context(
            "display.max_columns", 20, "display.width", 120, "display.max_colwidth", 40
        ):
            click.echo(f"first {rows} rows:")
            click.echo(ds.head(rows).to_pandas().to_string(index=False))


if __name__ == "__main__":
    main()
