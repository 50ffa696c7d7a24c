"""What the run page shows for one dataset version's run: its progress with the sampled
history (``_progress.json``, written by the flow's progress writer while it runs), its
state (the lease tells a dead run from a live one), and the shard timeline (commit markers
while it runs, the manifest's shards once it is committed)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from synthfactory.dataset import layout
from synthfactory.dataset.catalog import unfinished_status
from synthfactory.dataset.manifest import BrokenManifestError, Manifest, ShardEntry, read_manifest
from synthfactory.storage import open_store
from synthfactory.storage.base import ObjectStore

MAX_SHARDS = 500
"""Shards listed in the timeline (the newest, by commit time)."""


def run_detail(uri: str, now: float | None = None) -> dict[str, Any]:
    """The run of the version at ``uri``: ``progress`` (with ``history``), ``status``,
    ``shards`` (committed, with start and end times) and links to the dataset page and
    Prefect. Raises FileNotFoundError when nothing of a run is there."""
    store = open_store(uri)
    progress = _json(store, layout.PROGRESS)
    manifest: Manifest | None = None
    error = None
    try:
        manifest = read_manifest(store)
    except FileNotFoundError:
        pass
    except BrokenManifestError as exc:
        error = str(exc)
    if progress is None and manifest is None and error is None:
        raise FileNotFoundError(f"no run at {uri}: no {layout.PROGRESS} and no manifest")
    lease = _json(store, layout.LEASE)
    status: str
    if manifest is not None:
        status = manifest.status
        entries = list(manifest.shards)
    else:
        status = "broken" if error else unfinished_status(progress, lease, now or time.time())
        entries = _markers(store)
    history = (progress or {}).pop("history", None)
    return {
        "uri": store.uri,
        "status": status,
        "error": error,
        "name": manifest.name if manifest else (progress or {}).get("name"),
        "version": manifest.version if manifest else (progress or {}).get("version"),
        "progress": progress,
        "history": history if isinstance(history, list) else [],
        "shards": timeline(entries),
        "lease": {k: lease.get(k) for k in ("owner", "host", "pid", "expires_at", "machine")}
        if lease
        else None,
        "manifest": _summary(manifest) if manifest else None,
        "flow_run_id": (manifest.flow_run.get("id") if manifest else None)
        or (progress or {}).get("flow_run_id")
        or "",
        "dataset_page": "/dataset?" + urlencode({"uri": store.uri}) if manifest else None,
    }


def timeline(entries: list[ShardEntry]) -> list[dict[str, Any]]:
    """One bar per committed shard: when it started and was committed (epoch seconds), its
    worker, rows kept and rejected."""
    from datetime import datetime

    bars: list[dict[str, Any]] = []
    for e in entries:
        try:
            end = datetime.fromisoformat(e.committed_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        bars.append(
            {
                "index": e.index,
                "start": end - e.seconds,
                "end": end,
                "seconds": e.seconds,
                "worker": e.worker,
                "rows": e.rows,
                "rejected_rows": e.rejected_rows,
            }
        )
    bars.sort(key=lambda b: float(b["end"]))
    return bars[-MAX_SHARDS:]


def _markers(store: ObjectStore) -> list[ShardEntry]:
    """The commit markers of a version still being written (not checked against their
    data files: the timeline is advisory)."""
    keys = [k for k in store.list(layout.MARKERS) if k.endswith(".json")][-MAX_SHARDS:]
    entries = []
    for key in keys:
        try:
            entries.append(ShardEntry.model_validate_json(store.get_bytes(key)))
        except (FileNotFoundError, ValueError):
            continue
    return entries


def _summary(m: Manifest) -> dict[str, Any]:
    return {
        "status": m.status,
        "rows": m.rows,
        "target_rows": m.target_rows,
        "rejected_rows": m.rejected_rows,
        "created_at": m.created_at,
        "timings": m.timings,
        "stats": m.stats,
        "gates": m.gates,
    }


def _json(store: ObjectStore, key: str) -> dict[str, Any] | None:
    try:
        value = json.loads(store.get_bytes(key))
    except (FileNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) else None
