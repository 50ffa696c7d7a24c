"""Running shards on the actor pool: ``ShardRunner`` starts Ray and the pool on first use,
keeps two shards in flight per actor, holds shards back at the job's budget, and drains
the actors on a graceful stop."""

from __future__ import annotations

import concurrent.futures
import os
import time
from typing import Any

from prefect import get_run_logger
from prefect.futures import PrefectFuture

from synthfactory.dataset import DatasetVersion, ShardEntry
from synthfactory.dataset.manifest import utcnow
from synthfactory.dataset.shards import SCHEMA_KEY, read_schema_summary
from synthfactory.errors import StoppedError
from synthfactory.spec import JobSpec
from synthfactory.storage import ObjectStore
from synthfactory_flows.budget import Spend
from synthfactory_flows.progress import Progress, prepare_phase
from synthfactory_flows.tasks import prepare_generator, shard_task
from synthfactory_workers.contract import ShardTask
from synthfactory_workers.placement import check_placeable
from synthfactory_workers.pool import ActorPool
from synthfactory_workers.ray_runtime import connect

LIVE_SECONDS = 1.0
"""How often the flow reads the actors' live counters while it waits for shards."""


class ShardRunner:
    """Starts Ray and the actor pool on first use, so a finished job starts neither."""

    def __init__(
        self,
        job: JobSpec,
        target: DatasetVersion,
        root: ObjectStore,
        ray_address: str | None,
        progress: Progress,
    ) -> None:
        self.job, self.target, self.root = job, target, root
        self.ray_address = ray_address
        self.progress = progress
        self.pool: ActorPool | None = None
        self.timings: dict[str, float | str] = {"started_at": utcnow(), "generate_seconds": 0.0}
        self.identity: dict[str, str] = {}
        self.privacy_budget: dict[str, Any] | None = None
        """The fit's differential-privacy accounting, when the generator reports one."""
        self.schema: Any = None
        """The data schema, as the first non-empty shard's task reported it."""
        self.spend = Spend(job.budget)
        """What the committed shards spent (``budget``); ``reached`` once it held one back."""

    def _start(self) -> ActorPool:
        t0 = time.perf_counter()
        self.progress.update(phase="cluster")
        self.timings["ray_connect_seconds"] = connect(self.ray_address)
        for warning in check_placeable(self.job):  # a named error now, not a pending actor
            get_run_logger().warning(warning)
        t1 = time.perf_counter()
        self.progress.update(phase=prepare_phase(self.job))
        artifacts = self.job.storage.artifacts or self.root.url("_artifacts")
        prepared = prepare_generator(self.job, artifacts, self.progress)
        self.privacy_budget = prepared.get("privacy_budget")
        self.timings["prepare_seconds"] = time.perf_counter() - t1
        pool = ActorPool(self.job, prepared, self.target.uri, artifacts)
        self.pool = pool
        self.progress.update(phase="model load")
        pool.start()
        self.timings["actor_start_seconds"] = pool.startup_seconds
        self.timings["startup_seconds"] = time.perf_counter() - t0
        self.identity = pool.info[0]["identity"] if pool.info else {}
        self.progress.generation_started()
        self.progress.update(state="running", force=True)
        return pool

    def run(
        self, tasks: list[ShardTask], done: dict[int, ShardEntry], enough: int | None = None
    ) -> None:
        """Run ``tasks`` in order; with ``enough``, stop scheduling once the shards that
        finished kept that many rows (those already running finish)."""
        if not tasks or enough == 0 or self.spend.reached:  # reached: start nothing more
            return
        pool = self.pool or self._start()
        started = time.perf_counter()
        shards = run_shards(self.job, pool, tasks, self.progress, enough, self.spend)
        for entry, result in shards:
            done[entry.index] = entry
            if self.schema is None and result.get(SCHEMA_KEY) and entry.rows:
                self.schema = read_schema_summary(result[SCHEMA_KEY])
        self.timings["generate_seconds"] = float(self.timings["generate_seconds"]) + (
            time.perf_counter() - started
        )

    def drain(self) -> int:
        """A graceful stop: every actor sends nothing new and journals the answers in
        flight; returns once no shard runs (or after ``DRAIN_SECONDS``): shards still
        running then."""
        if self.pool is None:
            return 0
        return int(self.pool.drain(DRAIN_SECONDS))

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()


#: how long a graceful stop waits for the requests in flight to be answered and journaled
DRAIN_SECONDS = float(os.environ.get("SYNTHFACTORY_DRAIN_SECONDS", "60"))


class JobStopped(StoppedError):
    """The job was stopped (SIGTERM, Ctrl-C) and drained: nothing half-written, every
    answer received is journaled; a re-run resumes and pays for nothing twice."""

    @classmethod
    def after(cls, signal: BaseException, still_running: int) -> JobStopped:
        what = "Ctrl-C" if isinstance(signal, KeyboardInterrupt) else "a termination signal"
        left = (
            f"; {still_running} shard(s) did not finish draining in {DRAIN_SECONDS:g} s"
            if still_running
            else ""
        )
        return cls(
            f"stopped by {what}: no new requests were sent, the answers in flight were "
            f"journaled and committed shards kept{left}",
            fix="run the same command again to resume; answers already received are reused",
        )


def run_shards(
    job: JobSpec,
    pool: ActorPool,
    pending: list[ShardTask],
    progress: Progress,
    enough: int | None = None,
    spend: Spend | None = None,
) -> list[tuple[ShardEntry, dict[str, Any]]]:
    """Keep two Prefect tasks in flight per actor; stop submitting on the first hard
    failure, (``enough``) once the finished shards kept that many rows, or once the next
    shard would likely pass the job's budget (``spend``; those running finish)."""
    runner = shard_task(job)
    spend = spend or Spend(job.budget)
    queue = list(reversed(pending))
    in_flight: dict[concurrent.futures.Future[Any], PrefectFuture[Any]] = {}
    results: list[tuple[ShardEntry, dict[str, Any]]] = []
    error: BaseException | None = None
    read_at = 0.0
    kept = 0

    def submitting() -> bool:
        wanted = bool(queue) and error is None and (enough is None or kept < enough)
        return wanted and spend.allows(len(in_flight))

    while submitting() or in_flight:
        # two tasks per actor in flight: the next shard is queued while one runs, which
        # hides Prefect's per-task latency behind the work itself
        while submitting() and len(in_flight) < 2 * pool.size:
            future = runner.submit(pool, queue.pop())
            in_flight[future.wrapped_future] = future  # type: ignore[attr-defined]
        finished, _ = concurrent.futures.wait(
            in_flight, timeout=LIVE_SECONDS, return_when="FIRST_COMPLETED"
        )
        if time.monotonic() - read_at >= LIVE_SECONDS:  # not once per finished shard
            read_at = time.monotonic()
            counters = pool.live()
            if counters is not None:
                progress.live(counters)
        for raw in finished:
            future = in_flight.pop(raw)
            try:
                result = future.result()
                entry = ShardEntry.model_validate(result)
            except BaseException as exc:
                progress.update(failures=progress.snap.failures + 1)
                error = error or exc
                continue
            results.append((entry, result))
            kept += entry.rows
            spend.add(entry.stats)
            progress.shard_done(entry.rows, entry.stats)
            progress.update(actors_busy=pool.busy, retries=pool.replaced)
    if error is not None:
        raise error
    return results
