"""``synthfactory deploy`` and ``synthfactory deployments``: scheduled jobs on a Prefect
server."""

from __future__ import annotations

import os

import click

from synthfactory.errors import ConfigError
from synthfactory_flows.cli_common import friendly_errors


@click.command()
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


@click.group()
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
