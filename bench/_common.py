"""Shared benchmark plumbing: env defaults and an in-process baseline runner."""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="sf-bench-prefect-"))


def run_direct(spec: Any, output: str) -> dict[str, float]:
    """The baseline: the same generator called in this process, the same Parquet written
    through the same shard writer, no Prefect and no Ray, with the same math-library
    thread limit as one actor."""

    from threadpoolctl import threadpool_limits

    threads = spec.resources.math_threads or max(1, int(spec.resources.num_cpus))
    os.environ["SYNTHFACTORY_TORCH_THREADS"] = str(threads)  # as the pool sets it per actor
    with threadpool_limits(limits=threads):
        return _run_direct(spec, output)


def _run_direct(spec: Any, output: str) -> dict[str, float]:
    from synthfactory.dataset import write_shard
    from synthfactory.storage import open_store
    from synthfactory_flows.plan import plan_shards
    from synthfactory_workers.contract import GeneratorContext, ShardOutput
    from synthfactory_workers.registry import generator_class

    cls = generator_class(spec)
    store = open_store(output)
    artifacts = store.child("_artifacts")
    t0 = time.perf_counter()
    cls.preflight(spec)
    prepared = cls.prepare(spec, artifacts)
    generator = cls(spec, GeneratorContext(artifacts=artifacts, prepared=prepared))
    generator.load()
    from synthfactory_workers.threads import limit_torch_threads

    limit_torch_threads()
    t1 = time.perf_counter()
    rows = 0
    for task in plan_shards(spec):
        out = generator.generate(task)
        if not isinstance(out, ShardOutput):
            out = ShardOutput(out)
        entry = write_shard(
            store.child("direct"),
            index=task.index,
            row_start=task.row_start,
            seed=task.seed,
            max_rows=task.rows,
            table=out.table,
        )
        rows += entry.rows
    t2 = time.perf_counter()
    return {"startup_seconds": t1 - t0, "generate_seconds": t2 - t1, "rows": rows}


def run_platform(spec: Any) -> dict[str, float]:
    from synthfactory_flows.generate import run_job

    t0 = time.perf_counter()
    result = run_job(spec)
    wall = time.perf_counter() - t0
    timings = result["timings"]
    return {
        "wall_seconds": wall,
        "generate_seconds": float(timings["generate_seconds"]),
        "startup_seconds": wall - float(timings["generate_seconds"]),
        "rows": result["rows"],
    }
