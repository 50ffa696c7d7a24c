"""Scheduled generation: Prefect deployments of the generation flow on a process work pool.

A deployment holds the spec as its parameter and ``version="per-run"``, so every scheduled
run writes a new dataset version (named by spec hash and scheduled time) and never
overwrites an earlier one; a retried run keeps its scheduled time and so resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from synthfactory.errors import ConfigError
from synthfactory.spec import JobSpec
from synthfactory_flows.pool_slot import pool_limit_name

WORK_POOL = "synthfactory"
ENTRYPOINT = "synthfactory_flows.generate.generate_dataset"
TAG = "synthfactory"


def ensure_work_pool(name: str = WORK_POOL) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    async def create() -> None:
        async with get_client() as client:
            with contextlib.suppress(ObjectAlreadyExists):
                await client.create_work_pool(WorkPoolCreate(name=name, type="process"))

    asyncio.run(create())


def set_pool_limit(pool: str, limit: int) -> None:
    """At most ``limit`` generation runs at once draw from ``pool`` (e.g. a GPU pool)."""
    from prefect.client.orchestration import get_client

    async def upsert() -> None:
        async with get_client() as client:
            await client.upsert_global_concurrency_limit_by_name(pool_limit_name(pool), limit)

    asyncio.run(upsert())


def deploy(
    spec: JobSpec,
    *,
    cron: str | None = None,
    interval_seconds: float | None = None,
    name: str | None = None,
    concurrency_limit: int | None = None,
    work_pool: str = WORK_POOL,
    paused: bool = False,
    ray_address: str | None = None,
) -> str:
    """Create or update a deployment for ``spec``; returns the deployment's id."""
    from prefect.deployments.runner import EntrypointType

    from synthfactory_flows.generate import generate_dataset

    if cron and interval_seconds:
        raise ConfigError("give --cron or --interval, not both")
    ensure_work_pool(work_pool)
    if spec.concurrency.pool and spec.concurrency.pool_limit:
        set_pool_limit(spec.concurrency.pool, spec.concurrency.pool_limit)
    deployment: Any = generate_dataset.to_deployment(  # sync when called from sync code
        name=name or spec.name,
        parameters={
            "spec": spec.model_dump(mode="json"),
            "version": "per-run",
            "ray_address": ray_address,
        },
        cron=cron,
        interval=timedelta(seconds=interval_seconds) if interval_seconds else None,
        concurrency_limit=concurrency_limit or spec.concurrency.limit,
        paused=paused,
        tags=[TAG, f"dataset:{spec.name}"],
        description=spec.description or f"Generate {spec.rows or 'balanced'} {spec.modality} rows",
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    deployment_id = deployment.apply(work_pool_name=work_pool)
    return str(deployment_id)


def list_deployments() -> list[dict[str, Any]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        DeploymentFilterTags,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import DeploymentSort, FlowRunSort

    async def read() -> list[dict[str, Any]]:
        async with get_client() as client:
            deployments = await client.read_deployments(
                deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[TAG])),
                limit=200,
                sort=DeploymentSort.NAME_ASC,
            )
            rows = []
            for dep in deployments:
                upcoming = await client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])),
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(
                            type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])
                        )
                    ),
                    limit=1,
                    sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                )
                schedules = [
                    str(getattr(s.schedule, "cron", None) or getattr(s.schedule, "interval", ""))
                    for s in dep.schedules
                ]
                rows.append(
                    {
                        "id": str(dep.id),
                        "name": dep.name,
                        "paused": dep.paused,
                        "schedules": schedules,
                        "next_run": upcoming[0].expected_start_time.isoformat()
                        if upcoming and upcoming[0].expected_start_time
                        else None,
                        "concurrency_limit": getattr(dep, "concurrency_limit", None),
                        "output": (dep.parameters.get("spec") or {}).get("output"),
                    }
                )
            return rows

    return asyncio.run(read())


async def _find(client: Any, name: str) -> Any:
    from prefect.exceptions import ObjectNotFound

    try:
        return await client.read_deployment_by_name(f"synthfactory-generate/{name}")
    except ObjectNotFound:
        raise ConfigError(
            f"no deployment named {name!r}", fix="`synthfactory deployments ls` lists them"
        ) from None


def set_paused(name: str, paused: bool) -> None:
    from prefect.client.orchestration import get_client

    async def run() -> None:
        async with get_client() as client:
            dep = await _find(client, name)
            if paused:
                await client.pause_deployment(dep.id)
            else:
                await client.resume_deployment(dep.id)

    asyncio.run(run())


def delete(name: str) -> None:
    from prefect.client.orchestration import get_client

    async def run() -> None:
        async with get_client() as client:
            dep = await _find(client, name)
            await client.delete_deployment(dep.id)

    asyncio.run(run())
