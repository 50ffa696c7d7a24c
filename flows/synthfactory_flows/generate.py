"""The generation flow: plan shards, run them on the Ray pool, publish the manifest."""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from synthfactory.dataset import DatasetVersion, ShardEntry, layout
from synthfactory.dataset.lease import Lease
from synthfactory.errors import GateFailedError
from synthfactory.sources import job_cache
from synthfactory.spec import JobSpec, load_spec
from synthfactory.spec.limits import MAX_SHARDS, check_version_name
from synthfactory.storage import ObjectStore, open_store
from synthfactory_flows.plan import plan_shards
from synthfactory_flows.pool_slot import pool_slot
from synthfactory_flows.preflight import preflight
from synthfactory_flows.progress import Progress, Snapshot
from synthfactory_flows.publish import Chosen, finish_version, summary
from synthfactory_flows.runner import JobStopped, ShardRunner
from synthfactory_flows.select import ClassLabels, Selection, rewrite, select, trim
from synthfactory_flows.spec_ref import SPEC_REF, dereference, spec_parameter
from synthfactory_workers.contract import Quotas, ShardTask, generator_class

FLOW_NAME = "synthfactory-generate"


def run_name() -> str:
    """Flow runs are named after the dataset and when they were meant to start."""
    spec = flow_run.get_parameters().get("spec") or {}
    name = spec.name if isinstance(spec, JobSpec) else spec.get("name", "dataset")
    name = str(name)[:64] if not (isinstance(spec, dict) and SPEC_REF in spec) else "dataset"
    when = flow_run.get_scheduled_start_time()
    return f"{name}-{when.strftime('%Y%m%d-%H%M%S')}"


@flow(
    name=FLOW_NAME,
    flow_run_name=run_name,
    task_runner=ThreadPoolTaskRunner(max_workers=256),  # type: ignore[arg-type]
    validate_parameters=False,
)
def generate_dataset(
    spec: JobSpec | dict[str, Any], ray_address: str | None = None, version: str | None = None
) -> dict[str, Any]:
    """Generate the dataset a spec describes; resume whatever an earlier run committed.
    ``spec`` is the parsed model when run in-process (``run_job``), the spec's JSON when a
    deployment runs it; it is parsed once, here, and the model is passed on."""
    with job_cache():  # each source is read once for the whole job
        return _run(spec, ray_address, version)


def _run(
    spec: JobSpec | dict[str, Any], ray_address: str | None, version: str | None
) -> dict[str, Any]:
    logger = get_run_logger()
    started = time.perf_counter()
    checked = preflight(spec if isinstance(spec, JobSpec) else load_spec(dereference(spec)))
    job, fingerprints = checked.job, checked.fingerprints
    spec_hash = job.content_hash(fingerprints)
    root = open_store(job.output, job.storage)  # preflight checked it can be written
    target = DatasetVersion(root, version_name(version, spec_hash))
    existing = target.manifest()
    if existing is None:
        with writing(target):  # one writer per version; another run's may finish it first
            existing = target.manifest()
            if existing is None:
                if target.restore_quarantined(spec_hash):
                    logger.info("restored %s from quarantine: checking its gates again", target.uri)
                target.claim(job.model_dump(mode="json"), spec_hash)
                if target.unsweep():
                    logger.info(
                        "resuming %s: put back the shard files a publish set aside", target.uri
                    )
                with pool_slot(job):
                    return _generate(
                        job, target, root, spec_hash, fingerprints, ray_address, started
                    )
    logger.info("%s is already complete (%d rows); nothing to do", target.uri, existing.rows)
    return summary(existing, target.uri, time.perf_counter() - started, resumed=True)


#: seconds between looks at a version another run is writing
FOLLOW_SECONDS = 2.0


@contextlib.contextmanager
def writing(target: DatasetVersion) -> Iterator[None]:
    """Hold the version's lease while writing it. If another run holds it, say so and
    follow that run: wait until it publishes (then this run has nothing to do), fails or
    dies (its lease is released or expires; then this run takes over and resumes)."""
    lease = Lease(target.store)
    said = False
    while (holder := lease.try_acquire()) is not None:
        if target.manifest() is not None:
            yield  # the other run published while we waited
            return
        if not said:
            get_run_logger().warning(
                "%s is being written by another %s; following it: this run waits "
                "for it to publish, or takes over if it stops",
                target.uri,
                holder.describe(),
            )
            said = True
        time.sleep(FOLLOW_SECONDS)
    if said:
        get_run_logger().info("took over %s: resuming what was committed", target.uri)
    target.lease = lease
    lease.start_renewing()
    try:
        yield
    finally:
        target.lease = None
        lease.release()
        target.tidy()


def version_name(version: str | None, spec_hash: str) -> str:
    """None: content-addressed (re-runs resume). 'per-run': one version per scheduled run
    (a retry of that run resumes it). Anything else: that label."""
    base = layout.version_label(spec_hash)
    if version == "per-run":
        when = flow_run.get_scheduled_start_time()
        return f"{base}-{when.strftime('%Y%m%dT%H%M%SZ')}"
    return version or base


def _generate(
    job: JobSpec,
    target: DatasetVersion,
    root: ObjectStore,
    spec_hash: str,
    fingerprints: dict[str, str],
    ray_address: str | None,
    started: float,
) -> dict[str, Any]:
    """The stages in order: plan -> generate shards -> select / top up -> finish_version."""
    planned = plan(job, target)
    runner = ShardRunner(job, target, root, ray_address, planned.progress)
    for entry in planned.done.values():  # an earlier run's spend counts against the budget
        runner.spend.add(entry.stats)
    try:
        runner.run(planned.pending, planned.done)
        chosen = select_and_top_up(job, target, runner, planned)
    except BaseException as exc:
        if not isinstance(exc, Exception):  # SIGTERM (Prefect's TerminationSignal), Ctrl-C
            planned.progress.update(state="stopping", force=True)
            stopped = JobStopped.after(exc, runner.drain())
            planned.progress.update(state="stopped", message=stopped.message, force=True)
            raise stopped from None
        planned.progress.update(state="failed", message=str(exc), force=True)
        raise
    finally:
        runner.stop()
    try:
        return finish_version(job, target, chosen, runner, spec_hash, fingerprints, started)
    except GateFailedError:
        raise  # its state (quarantined) is already said
    except BaseException as exc:  # metrics, the card or the publish failed: never "evaluating"
        planned.progress.update(state="failed", message=str(exc), force=True)
        raise


@dataclass
class Planned:
    """What ``plan`` decided: every shard, those already committed, those still to run."""

    shards: list[ShardTask]
    done: dict[int, ShardEntry]
    pending: list[ShardTask]
    committed: dict[int, ShardEntry]
    progress: Progress


def plan(job: JobSpec, target: DatasetVersion) -> Planned:
    """Stage 1. Reads the version's commit markers; writes the first progress snapshot.
    Returns the shard plan with the shards an earlier run committed kept, not redone."""
    shards = plan_shards(job)
    committed = target.committed_shards()
    done = {t.index: committed[t.index] for t in shards if t.index in committed}
    resumed = sum(e.rows for e in done.values())
    snapshot = Snapshot(
        name=job.name,
        version=target.version,
        uri=target.uri,
        target_rows=job.target_rows,
        shards_total=len(shards),
        shards_done=len(done),
        rows_done=resumed,
        rows_resumed=resumed,
        actors=job.resources.actors,
        flow_run_id=str(flow_run.get_id() or ""),
        budget_usd=job.budget.max_cost_usd,
    )
    earlier = (target.read_progress() or {}).get("history") if done else None
    progress = Progress(
        snapshot,
        sink=target.write_progress,
        history=earlier if isinstance(earlier, list) else None,
    )
    if done:
        get_run_logger().info("resuming: %d of %d shards already committed", len(done), len(shards))
    progress.update(state="starting", force=True)
    pending = [t for t in shards if t.index not in committed]
    return Planned(shards, done, pending, committed, progress)


def select_and_top_up(
    job: JobSpec, target: DatasetVersion, runner: ShardRunner, planned: Planned
) -> Chosen:
    """Stage 3. Reads the shards' sidecar keys (and class labels under quotas); runs more
    shards (stage 2 again) until exactly ``rows`` rows are accepted or ``top_up_rounds``
    is spent; writes shards that lost rows anew. Returns the kept shards."""
    done, classes, rounds = planned.done, None, 0
    known = [t for t in planned.shards if t.index in done]  # all, unless the budget stopped
    last = planned.shards[-1]  # the last shard planned: top-up indices (seeds) follow it
    while True:
        entries = [done[t.index] for t in known]
        selection = select(target.store, entries)
        if classes is None and not exact(job, selection):
            # class quotas matter only once rows were lost (their source read waits till then)
            quotas = generator_class(job).quotas(job)
            classes = ClassLabels(target.store, quotas) if quotas else None
        missing = shortfall(job, selection, entries, classes)
        if not missing or rounds >= job.top_up_rounds or runner.spend.reached:
            break
        rounds += 1
        quotas = classes.quotas if classes else None
        extra = top_up_plan(job, known, selection, missing, quotas, last=last)
        last = extra[-1]
        short = f" (short: {missing})" if classes else ""
        said = (
            f"round {rounds + 1}: {selection.accepted} of {job.target_rows} rows kept{short}; "
            f"up to {len(extra)} more shard(s)"
        )
        get_run_logger().info(said)
        progress = planned.progress
        total = progress.snap.shards_total + len(extra)
        progress.update(
            shards_total=total,
            rows_done=selection.accepted,
            message=said,
            phase=f"top-up round {rounds + 1}",
        )
        done.update(
            {t.index: planned.committed[t.index] for t in extra if t.index in planned.committed}
        )
        reused = sum(done[t.index].rows for t in extra if t.index in done)
        # without class quotas, a round stops scheduling once it kept the rows missing
        needed = None if classes else max(0, missing[""] - reused)
        runner.run([t for t in extra if t.index not in done], done, enough=needed)
        ran = [t for t in extra if t.index in done]
        progress.update(
            shards_total=total - (len(extra) - len(ran)),
            # this round's shards an earlier run committed: resumed, not generated again
            rows_resumed=progress.snap.rows_resumed + reused,
            shards_done=progress.snap.shards_done
            + sum(t.index in planned.committed for t in extra),
        )
        known += ran
    if classes is not None and not exact(job, selection):
        final = classes.trim(selection, entries)  # exact class counts, not just the total
    else:
        final = trim(selection, entries, job.target_rows)
    kept = [rewrite(target.store, e, final[e.index], selection.keep[e.index]) for e in entries]
    return Chosen([e for e in kept if e.rows > 0], selection, rounds, _sum_stats(kept))


def exact(job: JobSpec, selection: Selection) -> bool:
    """Every generated row survived and there are exactly as many as asked."""
    return selection.produced == selection.accepted == job.target_rows


def shortfall(
    job: JobSpec, selection: Selection, entries: list[ShardEntry], classes: ClassLabels | None
) -> dict[str, int]:
    """Rows still missing: per class under quotas (keyed by ``quota_key``), else as ``""``."""
    if classes is not None and not exact(job, selection):
        return classes.missing(selection, entries)
    missing = job.target_rows - selection.accepted
    return {"": missing} if missing > 0 else {}


def top_up_plan(
    job: JobSpec,
    known: list[ShardTask],
    selection: Selection,
    missing: dict[str, int],
    quotas: Quotas | None = None,
    last: ShardTask | None = None,
) -> list[ShardTask]:
    """More shards for the missing rows, sized by the acceptance rate seen so far over the
    shards that ran (``known``); under quotas, shards per short class whose rows all take
    that class. Numbered after ``last``, the last shard ever planned (run or not)."""
    asked = sum(t.rows for t in known)
    rate = max(selection.accepted / asked, 0.05) if asked else 1.0
    cap = max(job.target_rows, job.shard_rows) * 20
    tasks: list[ShardTask] = []
    last = last or known[-1]
    for key, short in sorted(missing.items()):
        conditions = ((quotas.column, json.loads(key)),) if quotas and key else ()
        rows = min(math.ceil(short / rate * 1.2) + 1, cap, MAX_SHARDS * job.shard_rows)
        tasks += plan_shards(
            job,
            start_index=last.index + 1,
            rows=rows,
            row_start=last.row_start + last.rows,
            conditions=conditions,
        )
        last = tasks[-1]
    return tasks


def _sum_stats(entries: list[ShardEntry]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for entry in entries:
        for key, value in entry.stats.items():
            totals[key] = totals.get(key, 0.0) + value
    return totals


def run_job(
    spec: JobSpec | dict[str, Any], ray_address: str | None = None, version: str | None = None
) -> dict[str, Any]:
    """Validate, then run the flow in this process (Prefect's ephemeral server if none set)."""
    job = load_spec(spec) if isinstance(spec, dict) else spec
    if version not in (None, "per-run"):
        check_version_name(str(version))  # one safe path segment: never outside the output
    # fail on a missing bucket or refused credentials before a flow run even starts
    root = open_store(job.output, job.storage)
    root.check_access()
    name = f"{job.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    with patient_ephemeral_server(), spec_parameter(job, root) as parameter:
        result: dict[str, Any] = generate_dataset.with_options(flow_run_name=name)(
            parameter, ray_address=ray_address, version=version
        )
    return result


#: seconds Prefect's ephemeral server may take to start, unless the user set a value
EPHEMERAL_STARTUP_SECONDS = 180


@contextlib.contextmanager
def patient_ephemeral_server() -> Iterator[None]:
    """Prefect gives its ephemeral server 20 s to answer. In a fresh PREFECT_HOME it first
    creates and migrates its SQLite database, measured at 8 to over 20 s on a 2-core machine,
    so a user's first run could fail on a timeout with nothing wrong. Wait longer, unless
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS says otherwise."""
    from prefect.settings import (
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    chosen = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in os.environ
    if (
        chosen
        or PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value() >= EPHEMERAL_STARTUP_SECONDS
    ):
        yield
        return
    with temporary_settings(
        updates={PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: EPHEMERAL_STARTUP_SECONDS}
    ):
        yield
