"""The ``synthfactory`` command. Heavy modules are imported inside each command."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import click

from synthfactory.errors import (
    ConfigError,
    SpecError,
    StorageAccessError,
    SynthfactoryError,
)

if TYPE_CHECKING:
    from synthfactory.dataset import VersionInfo
    from synthfactory_flows.progress_view import ProgressView

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
        pools = list(getattr(job.generator, "pool_models", None) or [])
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

    with job_cache():  # the preflight's source reads serve the flow too
        _run(spec, output, rows, ray_address, version_label, quiet, verbose)


def _version_name(value: str | None) -> str | None:
    """``--version`` must be one safe path segment (never ``..`` or a path)."""
    from synthfactory.spec.limits import check_version_name

    if value is None:
        return None
    try:
        return check_version_name(value)
    except SpecError as exc:
        raise click.BadParameter(f"{exc.message}; {exc.fix}") from None


def _run(
    spec: str,
    output: str | None,
    rows: int | None,
    ray_address: str | None,
    version_label: str | None,
    quiet: bool,
    verbose: bool,
) -> None:
    from synthfactory.spec import load_spec
    from synthfactory_flows.preflight import preflight
    from synthfactory_flows.progress_view import ProgressView, quiet_banners, server_phase

    view = ProgressView(enabled=not quiet and sys.stderr.isatty())  # its clock starts now
    view.phase("preflight")
    job = preflight(load_spec(spec, output=output, rows=rows)).job
    quiet_banners(verbose)
    click.echo(
        f"{job.name}: {job.rows} {job.modality} rows in {job.shard_count} shards "
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


@main.command()
@click.argument("spec", type=click.Path())
@click.option("--cron", help="Cron schedule, e.g. '0 2 * * *' (02:00 daily).")
@click.option("--interval", type=float, help="Run every this many seconds.")
@click.option("--name", help="Deployment name (default: the spec's name).")
@click.option("--output", "-o", help="Override the spec's output.")
@click.option("--rows", type=int, help="Override the number of rows.")
@click.option("--concurrency", type=int, help="At most this many runs of it at once.")
@click.option("--pool", help="Shared pool (e.g. gpu-a100) whose slots the runs occupy.")
@click.option("--pool-limit", type=int, help="Runs at once across every job in --pool.")
@click.option("--paused", is_flag=True, help="Create it paused.")
@click.option("--ray-address", envvar="RAY_ADDRESS", help="Ray cluster the runs use.")
@friendly_errors
def deploy(
    spec: str,
    cron: str | None,
    interval: float | None,
    name: str | None,
    output: str | None,
    rows: int | None,
    concurrency: int | None,
    pool: str | None,
    pool_limit: int | None,
    paused: bool,
    ray_address: str | None,
) -> None:
    """Schedule SPEC as a Prefect deployment; each run writes a new dataset version."""
    from synthfactory.spec import load_spec

    job = load_spec(spec, output=output, rows=rows)
    if pool or pool_limit:
        policy = job.concurrency.model_copy(
            update={k: v for k, v in {"pool": pool, "pool_limit": pool_limit}.items() if v}
        )
        job = load_spec(job, concurrency=policy.model_dump())
    _require_prefect_server()
    from synthfactory_flows.deploy import WORK_POOL
    from synthfactory_flows.deploy import deploy as create

    deployment_id = create(
        job,
        cron=cron,
        interval_seconds=interval,
        name=name,
        concurrency_limit=concurrency,
        paused=paused,
        ray_address=ray_address,
    )
    click.echo(f"deployment {name or job.name} ({deployment_id}) on work pool {WORK_POOL}")
    click.echo("runs start when a worker serves the pool: `synthfactory serve`")


def _require_prefect_server() -> None:
    if not os.environ.get("PREFECT_API_URL"):
        from prefect.settings import PREFECT_API_URL

        if not PREFECT_API_URL.value():
            raise ConfigError(
                "deployments need a Prefect server, and PREFECT_API_URL is not set",
                fix="start one with `synthfactory serve` (it prints the URL) and export "
                "PREFECT_API_URL=http://127.0.0.1:4200/api",
            )


@main.group()
def deployments() -> None:
    """List, pause, resume and delete scheduled jobs."""


@deployments.command("ls")
@friendly_errors
def deployments_ls() -> None:
    """Deployments with their schedule and next run."""
    _require_prefect_server()
    from synthfactory_flows.deploy import list_deployments

    rows = list_deployments()
    if not rows:
        click.echo("no synthfactory deployments")
        return
    click.echo(f"{'NAME':<24} {'STATE':<7} {'SCHEDULE':<18} {'NEXT RUN':<26} OUTPUT")
    for row in rows:
        state = "paused" if row["paused"] else "active"
        schedule = ", ".join(row["schedules"]) or "-"
        click.echo(
            f"{row['name']:<24} {state:<7} {schedule:<18} {row['next_run'] or '-':<26} "
            f"{row['output']}"
        )


@deployments.command("pause")
@click.argument("name")
@friendly_errors
def deployments_pause(name: str) -> None:
    _require_prefect_server()
    from synthfactory_flows.deploy import set_paused

    set_paused(name, True)
    click.echo(f"paused {name}")


@deployments.command("resume")
@click.argument("name")
@friendly_errors
def deployments_resume(name: str) -> None:
    _require_prefect_server()
    from synthfactory_flows.deploy import set_paused

    set_paused(name, False)
    click.echo(f"resumed {name}")


@deployments.command("delete")
@click.argument("name")
@friendly_errors
def deployments_delete(name: str) -> None:
    _require_prefect_server()
    from synthfactory_flows.deploy import delete

    delete(name)
    click.echo(f"deleted {name}")


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def print_sign_in(host: str, port: int, code: str | None, token: str, given: bool) -> None:
    """The dashboard's URL, its one-time sign-in link and the token (unless it was given)."""
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}/"
    click.echo(f"dashboard:    {base}")
    click.echo(f"sign in:      {base}login?code={code} (works once)")
    click.echo(f"access token: {'(the one given)' if given else token}")


def check_exposure(host: str, remote: bool, allow_remote: bool, token: str | None) -> None:
    """Binding beyond loopback needs --allow-remote and a token: a ConfigError otherwise."""
    if remote and not allow_remote:
        raise ConfigError(
            f"--host {host} is reachable from other machines",
            fix="add --allow-remote and set --token, or bind to 127.0.0.1",
        )
    if remote and not token:
        raise ConfigError(
            "--allow-remote needs an access token",
            fix="pass --token or set SYNTHFACTORY_DASHBOARD_TOKEN",
        )


@main.command()
@click.option(
    "--datasets",
    "roots",
    multiple=True,
    required=True,
    help="Folder or s3:// prefix holding datasets (repeatable).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, help="Dashboard port.")
@click.option(
    "--prefect-port",
    default=4200,
    show_default=True,
    help="Port of the Prefect server started when PREFECT_API_URL is not set.",
)
@click.option("--allow-remote", is_flag=True, help="Allow binding beyond loopback.")
@click.option(
    "--token",
    envvar="SYNTHFACTORY_DASHBOARD_TOKEN",
    help="Access token (required with --allow-remote; generated otherwise).",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="Another name the dashboard is reached by, e.g. its DNS name (repeatable). "
    "Requests with any other Host header are refused (loopback names and --host are "
    "always allowed; with --host 0.0.0.0 also this machine's names and IP addresses).",
)
@click.option("--no-worker", is_flag=True, help="Do not start a worker for the work pool.")
@click.option("--worker-limit", type=int, help="Flow runs one worker executes at once.")
@click.option("--logs", default=".synthfactory/logs", show_default=True, type=click.Path())
@friendly_errors
def serve(
    roots: tuple[str, ...],
    host: str,
    port: int,
    prefect_port: int,
    allow_remote: bool,
    token: str | None,
    allowed_hosts: tuple[str, ...],
    no_worker: bool,
    worker_limit: int | None,
    logs: str,
) -> None:
    """Start a Prefect server (unless PREFECT_API_URL is set), a worker and the dashboard.

    The access token is never put in a URL: open the one-time sign-in link printed at
    start (it sets a session cookie and is void once used), or sign in on the page with
    the token; scripts send it as `Authorization: Bearer TOKEN`."""
    import secrets
    import signal
    from pathlib import Path

    import uvicorn

    from synthfactory_flows.dashboard.app import create_app
    from synthfactory_flows.serve import Services, start_prefect_server, start_worker

    remote = host not in LOOPBACK
    check_exposure(host, remote, allow_remote, token)
    given_token = token is not None
    token = token or secrets.token_urlsafe(16)
    env = dict(os.environ)
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    services = Services()
    log_dir = Path(logs)
    # uvicorn re-raises SIGTERM after its own shutdown; make that an exit that runs `finally`
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if not env.get("PREFECT_API_URL"):
            api = start_prefect_server(services, env, "127.0.0.1", prefect_port, log_dir)
            env["PREFECT_API_URL"] = os.environ["PREFECT_API_URL"] = api
            click.echo(f"Prefect UI:   {api.removesuffix('/api')}")
        else:
            click.echo(f"Prefect API:  {env['PREFECT_API_URL']} (existing server)")
        if not no_worker:
            from synthfactory_flows.deploy import WORK_POOL, ensure_work_pool

            ensure_work_pool(WORK_POOL)
            start_worker(services, env, WORK_POOL, log_dir, worker_limit)
            click.echo(f"worker:       serving work pool '{WORK_POOL}' (logs in {log_dir})")
        app = create_app(
            list(roots),
            token=token,
            require_token_to_read=remote,
            host=host,
            allowed_hosts=allowed_hosts,
        )
        print_sign_in(host, port, app.state.access.login_code, token, given_token)
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        services.stop()


@main.command()
@click.argument("uri")
@click.option(
    "--reference",
    help="Real table (or texts/images) to compare with (default: the spec's reference/source).",
)
@click.option("--target", help="Target column for utility and fairness metrics (tables).")
@click.option("--sensitive", multiple=True, help="Sensitive column for bias metrics (tables).")
@click.option("--perplexity-model", help="Reference LM for text perplexity.")
@click.option(
    "--image-encoder",
    help="Image encoder for embedding diversity and Frechet distance (a full CLIP model: also "
    "CLIP score).",
)
@click.option("--ray-address", envvar="RAY_ADDRESS", help="Ray cluster to use (default: local).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@friendly_errors
def metrics(
    uri: str,
    reference: str | None,
    target: str | None,
    sensitive: tuple[str, ...],
    perplexity_model: str | None,
    image_encoder: str | None,
    ray_address: str | None,
    as_json: bool,
) -> None:
    """Compute quality, privacy and bias metrics for an existing dataset (tabular, text or
    image) on Ray; store them beside it and rewrite its card. The new report is merged over
    the stored one: newer values win, and what this run does not compute (utility without
    --target, say) keeps its earlier numbers."""
    from synthfactory.dataset import open_dataset
    from synthfactory.metrics.catalogue import listed
    from synthfactory.metrics.report import flatten, to_json
    from synthfactory.spec import load_spec
    from synthfactory_flows.evaluate import update_metrics
    from synthfactory_workers.ray_runtime import connect

    ds = open_dataset(uri)
    job = load_spec(ds.manifest.spec)
    changes = {
        "reference": reference,
        "target_column": target,
        "sensitive_columns": list(sensitive) or None,
        "perplexity_model": perplexity_model,
        "image_encoder": image_encoder,
    }
    config = job.metrics.model_copy(update={k: v for k, v in changes.items() if v})
    job = job.model_copy(update={"metrics": config})
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    connect(ray_address)
    report = update_metrics(job, ds)
    if as_json:
        click.echo(to_json(report))
        return
    for name, value in flatten(report):
        if listed(name):
            click.echo(f"{name:<48} {value:.4f}")
    click.echo(f"written: {ds.store.url('metrics.json')} and {ds.store.url('README.md')}")


@main.group()
def datasets() -> None:
    """Browse datasets on a local folder or S3."""


@datasets.command("ls")
@click.argument("uri")
@friendly_errors
def datasets_ls(uri: str) -> None:
    """List dataset versions under URI (published, quarantined, running, crashed, broken).
    A version whose manifest cannot be read is listed as broken, with a warning."""
    from synthfactory.dataset import list_versions
    from synthfactory.storage import open_store

    versions = list_versions(open_store(uri))
    if not versions:
        click.echo(f"no datasets under {uri}")
        return
    _warn_broken(versions)
    click.echo(f"{'STATUS':<12} {'ROWS':>10} {'SHARDS':>7}  {'CREATED':<21} URI")
    for v in versions:
        m = v.manifest
        if m is not None:
            click.echo(
                f"{v.status:<12} {m.rows:>10} {len(m.shards):>7}  {m.created_at:<21} {v.uri}"
            )
        elif v.error is not None:
            click.echo(f"{v.status:<12} {'?':>10} {'?':>7}  {'':<21} {v.uri}")
        else:
            p = v.progress or {}
            done = f"{p.get('rows_done', '?')}/{p.get('target_rows', '?')}"
            click.echo(f"{v.status:<12} {done:>10} {'':>7}  {'':<21} {v.uri}")


def _warn_broken(versions: list[VersionInfo]) -> None:
    for v in versions:
        if v.error is not None:
            first = str(v.error).splitlines()[0]
            click.secho(f"warning: skipped a broken version: {first}", fg="yellow", err=True)


@datasets.command("show")
@click.argument("uri")
@click.option("--rows", "-n", default=5, show_default=True, help="Sample rows to print.")
@friendly_errors
def datasets_show(uri: str, rows: int) -> None:
    """Manifest summary, schema and sample rows of a dataset (newest version under URI).
    Versions with a broken manifest are skipped, with a warning."""
    from synthfactory.dataset import layout, list_versions, open_dataset
    from synthfactory.storage import open_store

    store = open_store(uri)
    if not store.exists(layout.MANIFEST):  # a root: say which versions are skipped
        _warn_broken(list_versions(store))
    ds = open_dataset(uri)
    m = ds.manifest
    click.echo(f"dataset:   {m.name} ({m.modality})")
    click.echo(f"uri:       {ds.uri}")
    click.echo(f"version:   {m.version}  status: {m.status}  created: {m.created_at}")
    click.echo(f"rows:      {m.rows} in {len(m.shards)} shards, {m.rejected_rows} rejected")
    click.echo(f"generator: {json.dumps(m.generator)}")
    click.echo(f"spec hash: {m.spec_hash[:16]}  code: {m.lineage.get('code_version', '?')}")
    # a multi-table dataset (relational; sequential: entities and their steps): every table
    for name, info in m.tables.items():
        click.echo(f"schema of table {name} ({info.rows} rows):")
        for field in info.data_schema.fields:
            click.echo(f"  {field['name']}: {field['type']}")
    if not m.tables:
        click.echo("schema:")
        for field in m.data_schema.fields:
            click.echo(f"  {field['name']}: {field['type']}")
    if rows > 0:
        import pandas as pd

        from synthfactory.dataset import parquet

        heads: dict[str | None, Any] = {None: ds.head(rows)} if not m.tables else {}
        first = m.shards[0].tables if m.shards else {}
        for name in m.tables:
            if name in first:  # the first shard's rows of the table, not the whole table
                heads[name] = parquet.decode(ds.store.get_bytes(first[name].path)).slice(0, rows)
        with pd.option_context(
            "display.max_columns", 20, "display.width", 120, "display.max_colwidth", 40
        ):
            for table, head in heads.items():
                click.echo(f"first {rows} rows" + (f" of table {table}:" if table else ":"))
                click.echo(head.to_pandas().to_string(index=False))


if __name__ == "__main__":
    main()
