"""Prefect tasks: one per shard (never per row), plus the one-off prepare step."""

from __future__ import annotations

import contextlib
from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from synthfactory.errors import is_transient
from synthfactory.spec import JobSpec
from synthfactory_flows.artifacts import artifact_key
from synthfactory_flows.progress import Progress
from synthfactory_workers import telemetry
from synthfactory_workers.contract import ShardTask
from synthfactory_workers.pool import ActorPool, task_options, unwrap


def transient_only(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry storage hiccups and lost actors; never a user error."""
    try:
        state.result()
    except BaseException as exc:  # the task's own exception, re-raised by result()
        return is_transient(exc)
    return False


@task(
    name="generate-shard",
    cache_policy=NO_CACHE,
    task_run_name="shard-{shard.index}",
    retry_condition_fn=transient_only,
)
def generate_shard(pool: ActorPool, shard: ShardTask) -> dict[str, Any]:
    return pool.run(shard)


def shard_task(spec: JobSpec) -> Task[..., dict[str, Any]]:
    retries = spec.retries.shard_retries
    delays = [spec.retries.retry_delay_seconds * 2**i for i in range(retries)] or 0
    return generate_shard.with_options(
        retries=retries, retry_delay_seconds=delays, retry_jitter_factor=0.2
    )


@task(name="prepare-generator", cache_policy=NO_CACHE)
def prepare_generator(
    spec: JobSpec, artifacts_uri: str, progress: Progress | None = None
) -> dict[str, Any]:
    """Run the generator's one-off preparation (e.g. fit a synthesizer) on one pool slot;
    each epoch of a fit is logged and reaches ``progress`` (the CLI and the dashboard)."""
    import ray

    from synthfactory_workers.prepare import run_prepare

    remote = ray.remote(run_prepare).options(**task_options(spec, gpu=True, retries=1))
    collector = telemetry.start_collector()
    ref = remote.remote(spec, artifacts_uri, collector)
    epochs: list[dict[str, float]] = []
    logged = 0
    try:
        while not ray.wait([ref], timeout=POLL_SECONDS)[0]:
            epochs += telemetry.read_epochs(collector, len(epochs))
            logged = log_epochs(spec, epochs, logged)
            if progress is not None and epochs:
                progress.update(epoch=epochs[-1])
        result: dict[str, Any] = ray.get(ref)
    except Exception as exc:
        raise unwrap(exc) from None
    finally:
        with contextlib.suppress(Exception):
            ray.kill(collector)
    history = result.get("training") or []
    log_epochs(spec, history, logged if not result.get("reused") else -1)
    if progress is not None and history and not result.get("reused"):
        progress.update(epoch=history[-1])
    report_training(spec, result)
    return result


POLL_SECONDS = 2.0


def log_epochs(spec: JobSpec, epochs: list[dict[str, float]], logged: int) -> int:
    """Log the epochs after the first ``logged`` (-1: a reused fit, say so once)."""
    from prefect import get_run_logger

    logger = get_run_logger()
    if logged < 0:
        logger.info("reusing a fitted %s (%d epochs)", spec.generator.kind, len(epochs))
        return len(epochs)
    for epoch in epochs[logged:]:
        losses = ", ".join(f"{k}={v:.4f}" for k, v in epoch.items() if k != "epoch")
        logger.info("%s epoch %d: %s", spec.generator.kind, int(epoch["epoch"]), losses)
    return max(logged, len(epochs))


def report_training(spec: JobSpec, prepared: dict[str, Any]) -> None:
    """A freshly fitted model's loss per epoch as a Prefect table artifact."""
    from prefect.artifacts import create_table_artifact

    history: list[dict[str, float]] = prepared.get("training") or []
    if not history or prepared.get("reused"):
        return
    key = artifact_key(spec.name, "training")
    create_table_artifact(
        [{k: round(float(v), 6) for k, v in epoch.items()} for epoch in history],
        key=key,
        description=f"{spec.generator.kind} loss per epoch",
    )
