"""Shared benchmark plumbing: env defaults, an in-process baseline runner and a
plain-processes ceiling runner."""

from __future__ import annotations

import multiprocessing
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

    with threadpool_limits(limits=_threads(spec)):
        t0 = time.perf_counter()
        generator, store = _load(spec, output)
        t1 = time.perf_counter()
        rows = _generate(spec, generator, store, part=0, parts=1)
        t2 = time.perf_counter()
    return {"startup_seconds": t1 - t0, "generate_seconds": t2 - t1, "rows": rows}


def run_processes(spec: Any, output: str, processes: int) -> dict[str, float]:
    """The machine's ceiling for a pool of ``processes`` actors: the same generator in that
    many plain processes (no Ray, no Prefect), each loaded first, then all released at once
    to generate every ``processes``-th shard. Rate = all rows / first start to last end."""

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(
            target=_process_part, args=(spec.model_dump(), output, i, processes, barrier, results)
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    parts = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    start = min(p["start"] for p in parts)
    end = max(p["end"] for p in parts)
    return {"generate_seconds": end - start, "rows": sum(p["rows"] for p in parts)}


def _process_part(
    spec_dict: dict[str, Any],
    output: str,
    part: int,
    parts: int,
    barrier: Any,
    results: Any,
) -> None:
    from threadpoolctl import threadpool_limits

    from synthfactory.spec import load_spec

    spec = load_spec(spec_dict)
    with threadpool_limits(limits=_threads(spec)):
        generator, store = _load(spec, output)
        barrier.wait()
        start = time.time()
        rows = _generate(spec, generator, store, part=part, parts=parts)
        results.put({"start": start, "end": time.time(), "rows": rows})


def _threads(spec: Any) -> int:
    threads = spec.resources.math_threads or max(1, int(spec.resources.num_cpus))
    os.environ["SYNTHFACTORY_TORCH_THREADS"] = str(threads)  # as the pool sets it per actor
    return int(threads)


def _load(spec: Any, output: str) -> tuple[Any, Any]:
    """Preflight, prepare (or reuse the cached fit) and load, as one actor does."""
    from synthfactory.storage import open_store
    from synthfactory_workers.contract import GeneratorContext, generator_class
    from synthfactory_workers.threads import limit_torch_threads

    cls = generator_class(spec)
    store = open_store(output)
    artifacts = open_store(spec.storage.artifacts) if spec.storage.artifacts else None
    artifacts = artifacts or store.child("_artifacts")
    cls.preflight(spec)
    prepared = cls.prepare(spec, artifacts)
    generator = cls(spec, GeneratorContext(artifacts=artifacts, prepared=prepared))
    generator.load()
    limit_torch_threads()
    return generator, store


def _generate(spec: Any, generator: Any, store: Any, part: int, parts: int) -> int:
    from synthfactory.dataset import write_shard
    from synthfactory_flows.plan import plan_shards
    from synthfactory_workers.contract import ShardOutput

    rows = 0
    for task in plan_shards(spec)[part::parts]:
        out = generator.generate(task)
        if not isinstance(out, ShardOutput):
            out = ShardOutput(out)
        entry = write_shard(
            store.child(f"direct-{part}" if parts > 1 else "direct"),
            index=task.index,
            row_start=task.row_start,
            seed=task.seed,
            max_rows=task.rows,
            table=out.table,
        )
        rows += entry.rows
    return rows


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
