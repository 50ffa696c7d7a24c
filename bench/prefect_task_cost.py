"""What one shard task costs in Prefect's bookkeeping: CPU seconds spent by the Prefect
server (the ephemeral one the embedded default starts) and by the flow process per task run,
for tasks that do nothing. Every shard is one task, so on a machine whose cores also run
the actors this is taken from generation; it sets how small a shard may be (keep a shard's
own work >= 20x this for < 5% overhead). Baseline: none; it prints the cost itself.

    .venv/bin/python bench/prefect_task_cost.py [--tasks N]
"""

from __future__ import annotations  # noqa: I001  (_common sets env before prefect loads)

import argparse
import time

import _common  # noqa: F401  (env defaults: PREFECT_HOME, analytics off)
import psutil
from prefect import flow, task
from prefect.cache_policies import NO_CACHE


@task(cache_policy=NO_CACHE)
def noop(i: int) -> int:
    return i


@flow
def many(n: int) -> int:
    futures = [noop.submit(i) for i in range(n)]
    return sum(f.result() for f in futures)


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        times = p.cpu_times()
        total += times.user + times.system
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200)
    args = parser.parse_args()
    many(2)  # starts the ephemeral server; its start-up is not counted
    time.sleep(3)
    me = psutil.Process()
    server = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "uvicorn" in " ".join(p.info["cmdline"] or []) and p.pid != me.pid
    ]
    if not server:
        raise SystemExit("no Prefect server process found (is PREFECT_API_URL set?)")
    server_before, flow_before = cpu_seconds(server), cpu_seconds([me])
    started = time.perf_counter()
    many(args.tasks)
    wall = time.perf_counter() - started
    time.sleep(3)  # the server records the last events after the flow returns
    server_ms = (cpu_seconds(server) - server_before) / args.tasks * 1000
    flow_ms = (cpu_seconds([me]) - flow_before) / args.tasks * 1000
    print(
        f"{args.tasks} no-op tasks in {wall:.1f} s: per task {server_ms:.0f} ms CPU in the "
        f"Prefect server + {flow_ms:.0f} ms in the flow process = {server_ms + flow_ms:.0f} ms"
    )


if __name__ == "__main__":
    main()
