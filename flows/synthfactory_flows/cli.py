"""The ``synthfactory`` command: checking, previewing and running a spec here; the other
command groups live beside it (``cli_deploy``, ``cli_serve``, ``cli_datasets``). Heavy
modules are imported inside each command."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from synthfactory.errors import SpecError, SynthfactoryError
from synthfactory_flows.cli_common import friendly_errors
from synthfactory_flows.cli_datasets import datasets, metrics
from synthfactory_flows.cli_deploy import deploy, deployments
from synthfactory_flows.cli_serve import serve

if TYPE_CHECKING:
    from synthfactory_flows.progress_view import ProgressView


@click.group()
@click.version_option(package_name="synthfactory")
def main() -> None:
    """Generate synthetic text, image and tabular datasets at scale."""


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path())
@click.option(
    "--cluster",
    "cluster",
    help="Also check that this Ray cluster (host:port, auto, ray://...) can place the actors.",
)
@friendly_errors
def validate(specs: tuple[str, ...], cluster: str | None) -> None:
    """Check job specs with the same preflight `run` does (sources, columns, templates,
    models, gates), without running anything; exit 2 on the first invalid one."""
    from synthfactory.spec import load_spec
    from synthfactory_flows.preflight import preflight

    if cluster:
        from synthfactory_workers.ray_runtime import connect

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        connect(cluster)
    for path in specs:
        job = preflight(load_spec(path)).job
        if cluster:
            from synthfactory_workers.placement import check_placeable

            for warning in check_placeable(job):
                click.secho(f"warning: {path}: {warning}", fg="yellow", err=True)
        size = f"{job.rows} rows, {job.shard_count} shards" if job.rows else "rows derived"
        pools = job.generator.pool_model_keys()
        if pools:
            size += f", model pools: {', '.join(pools)}"
        click.echo(f"ok: {path} ({job.modality}, {job.generator.kind}, {size} -> {job.output})")


@main.command()
@click.argument("spec", type=click.Path())
@click.option(
    "-n", "--rows", default=3, show_default=True, type=click.IntRange(min=1), help="Rows to make."
)
@click.option("--seed", type=int, help="Seed instead of the spec's (same seed: a run's rows).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines (full values) instead.")
@click.option(
    "--column",
    "-c",
    "columns",
    multiple=True,
    help="Show only this column (repeatable, or comma-separated; 'persona' shows persona.*).",
)
@friendly_errors
def preview(
    spec: str, rows: int, seed: int | None, as_json: bool, columns: tuple[str, ...]
) -> None:
    """Generate a few rows of SPEC in this process (no Prefect, no Ray, nothing written):
    the same preflight as `validate`, the rows `run --rows N` makes, the rejected rows
    and why, then one line: rows, tokens, seconds to load and to generate."""
    from synthfactory_flows.preview import Previewer, status

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no load chatter on the console
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    previewer = Previewer(spec, seed=seed)
    job = previewer.job
    with status(f"{job.name}: loading the {job.generator.kind} generator"):
        previewer.load()
    with status(f"{job.name}: generating {rows} {job.modality} row(s)"):
        result = previewer.preview(rows)
    if as_json:
        for line in result.json_lines(columns):
            click.echo(line)
        click.echo(result.summary(), err=True)
        return
    result.show(columns)


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
@click.option(
    "--version",
    "version_label",
    callback=lambda _ctx, _param, value: _version_name(value),
    help="Version name: letters, digits, '.', '_', '-' (default: content hash of spec).",
)
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
    from synthfactory.sources import job_cache
    from synthfactory.spec import load_spec
    from synthfactory_flows.preflight import preflight
    from synthfactory_flows.progress_view import ProgressView, quiet_banners, server_phase

    view = ProgressView(enabled=not quiet and sys.stderr.isatty())  # its clock starts now
    with job_cache():  # the preflight's source reads serve the flow too
        view.phase("preflight")
        job = preflight(load_spec(spec, output=output, rows=rows)).job
        quiet_banners(verbose)
        click.echo(
            f"{job.name}: {job.rows} {job.modality} rows in {job.shard_count} "
            f"shard{'' if job.shard_count == 1 else 's'} "
            f"with {job.resources.actors} actor(s) -> {job.output}",
            err=True,
        )
        with view:  # log lines written from here on are printed above it
            view.phase("loading")
            from synthfactory_flows.ephemeral import install
            from synthfactory_flows.generate import run_job

            install()  # a killed driver takes its ephemeral Prefect server with it
            if not verbose:
                hide_user_error_tracebacks()
            view.phase(server_phase())
            result = run_job(job, ray_address=ray_address, version=version_label)
        _print_summary(result, view)


def _version_name(value: str | None) -> str | None:
    """``--version`` must be one safe path segment (never ``..`` or a path)."""
    from synthfactory.spec.limits import check_version_name

    if value is None:
        return None
    try:
        return check_version_name(value)
    except SpecError as exc:
        raise click.BadParameter(f"{exc.message}; {exc.fix}") from None


class _NoUserErrorTracebacks(logging.Filter):
    """Drop Prefect's console log of a task or flow that failed on a user error: the CLI
    prints that error itself, in one line with its fix (the API's log keeps it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        # every synthfactory error (a spec, a gate, a stop) is printed by the CLI with its fix
        return not (isinstance(error, SynthfactoryError) and record.name.startswith("prefect"))


def hide_user_error_tracebacks() -> None:
    """Add the filter to every console handler (after Prefect configured logging)."""
    from prefect.logging.configuration import setup_logging

    if not logging.getLogger().handlers:
        setup_logging()
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            is_console = isinstance(handler, logging.StreamHandler)
            if is_console and not any(
                isinstance(f, _NoUserErrorTracebacks) for f in handler.filters
            ):
                handler.addFilter(_NoUserErrorTracebacks())


def _print_summary(result: dict[str, Any], view: ProgressView | None = None) -> None:
    """What was made, and (with the run's ``view``) how: the rate, measured as the live
    one (rows generated / generation seconds), the rows resumed, each phase's time.
    ``elapsed`` is the command's own time (the view's total) when there is a view."""
    from synthfactory.dataset import open_dataset

    complete = bool(result.get("already_complete"))
    note = " (already complete)" if complete else ""
    elapsed = view.elapsed() if view is not None else float(result["seconds"])
    click.echo(f"dataset: {result['uri']}{note}")
    click.echo(
        f"  status: {result['status']}, rows: {result['rows']}, shards: {result['shards']}, "
        f"rejected: {result['rejected_rows']}, elapsed: {elapsed:.1f}s"
    )
    if not result.get("target_met", True):
        click.secho(
            f"  warning: only {result['rows']} of {result['target_rows']} rows were accepted "
            "(top-up budget spent); raise top_up_rounds or loosen the filters",
            fg="yellow",
        )
    timings = result.get("timings", {})
    if view is not None and view.last is not None and not complete:
        for line in view.summary_lines():
            click.echo(line)
    elif "generate_seconds" in timings and not complete:
        click.echo(
            f"  startup: {float(timings.get('startup_seconds', 0)):.1f}s, "
            f"generation: {float(timings['generate_seconds']):.1f}s"
        )
    ds = open_dataset(result["uri"])
    from synthfactory_flows.progress_view import column_lines

    for line in column_lines(ds.manifest.data_schema.fields, text=ds.manifest.modality == "text"):
        click.echo(line)
    click.echo(f"  card: {ds.store.url('README.md')}")
    click.echo(f"  inspect: {this_command()} datasets show {ds.uri}")


def this_command() -> str:
    """How to call this command again from the user's shell: ``synthfactory`` when that
    name on PATH is this program, else the path of the script that is running (after the
    quickstart, ``.venv/bin/synthfactory`` with no venv activated), else ``python -m``."""
    import shlex
    import shutil
    from pathlib import Path

    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    on_path = shutil.which("synthfactory")
    if script is not None and script.name == "synthfactory" and script.is_file():
        if on_path and Path(on_path).resolve() == script.resolve():
            return "synthfactory"
        try:
            shown = script.resolve().relative_to(Path.cwd())
        except ValueError:
            shown = script.resolve()
        return shlex.quote(str(shown))
    if on_path:
        return "synthfactory"
    return f"{shlex.quote(sys.executable)} -m synthfactory_flows.cli"


main.add_command(deploy)
main.add_command(deployments)
main.add_command(serve)
main.add_command(metrics)
main.add_command(datasets)

if __name__ == "__main__":
    main()
