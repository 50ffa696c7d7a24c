"""Stopping one `ray start` cluster of a test, and only that one (`ray stop` would also stop
every other Ray instance on the host)."""

from __future__ import annotations

from pathlib import Path

import psutil


def stop_cluster(temp: Path, port: int) -> None:
    """Kill the processes started with this cluster's temp dir or GCS port, and theirs."""
    mine = [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(temp) in " ".join(p.info["cmdline"] or [])
        or f":{port}" in " ".join(p.info["cmdline"] or [])
    ]
    for proc in mine:
        for child in proc.children(recursive=True):
            child.kill()
        proc.kill()
    psutil.wait_procs(mine, timeout=30)
