"""Stopping one `ray start` cluster of a test, and only that one (`ray stop` would also stop
every other Ray instance on the host)."""

from __future__ import annotations

import re
from pathlib import Path

import psutil


def stop_cluster(temp: Path, port: int) -> None:
    """Kill the processes started with this cluster's temp dir or GCS port, and theirs. The
    port must be a whole number in the command line (``:6379`` is not ``:63790``): another
    cluster on the host is never touched."""
    ours = re.compile(rf"(?<![\w/.-]){re.escape(str(temp))}(?![\w.-])|:{port}(?!\d)")
    mine = [
        p
        for p in psutil.process_iter(["cmdline"])
        if ours.search(" ".join(p.info["cmdline"] or []))
    ]
    for proc in mine:
        for child in proc.children(recursive=True):
            child.kill()
        proc.kill()
    psutil.wait_procs(mine, timeout=30)
