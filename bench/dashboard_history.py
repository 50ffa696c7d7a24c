"""The run page's durable history: what it costs the progress writer. Each write of
``_progress.json`` with a full history (``HISTORY_SAMPLES`` samples) vs the baseline, the
same snapshot without it (what the writer wrote before), both through the dataset store to
a local folder; and how large the file grows.

    .venv/bin/python bench/dashboard_history.py [--writes N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Any

import _common  # noqa: F401  (env defaults)
from synthfactory.dataset import DatasetVersion
from synthfactory.storage import open_store
from synthfactory_flows.progress import HISTORY_SAMPLES, Progress, Snapshot


def writes(version: DatasetVersion, count: int, history: bool) -> tuple[float, int]:
    """Seconds per progress write and the last file's size in bytes."""
    payloads: list[dict[str, Any]] = []
    progress = Progress(
        Snapshot(name="bench", version="v", uri=version.uri, target_rows=10**6, shards_total=500),
        sink=payloads.append,
        interval=0.0,
    )
    progress.update(state="running", force=True)
    for i in range(HISTORY_SAMPLES):  # fill the history first
        progress.shard_done(100, {"completion_tokens": 2000.0, "http_429": float(i % 2)})
        progress.update(force=True, actors_busy=i % 4)
    last = payloads[-1] if history else {k: v for k, v in payloads[-1].items() if k != "history"}
    started = time.perf_counter()
    for _ in range(count):
        version.write_progress(last)
    seconds = (time.perf_counter() - started) / count
    return seconds, len(json.dumps(last))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=500)
    args = parser.parse_args()
    root = open_store(tempfile.mkdtemp(prefix="sf-bench-history-"))
    base_version = DatasetVersion(root, "baseline")
    full_version = DatasetVersion(root, "history")
    base, base_bytes = writes(base_version, args.writes, history=False)
    full, full_bytes = writes(full_version, args.writes, history=True)
    print(f"baseline (snapshot only): {1e3 * base:.3f} ms per write, {base_bytes} bytes")
    print(
        f"with {HISTORY_SAMPLES} history samples: {1e3 * full:.3f} ms per write, {full_bytes} bytes"
    )
    print(f"ratio (history / baseline) per write: {full / base:.2f}x; at one write a second "
          f"the writer spends {100 * full:.2f} % of each second writing")  # fmt: skip


if __name__ == "__main__":
    main()
