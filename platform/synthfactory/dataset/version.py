"""A dataset version being written: claim it, find committed shards, publish it."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from synthfactory.dataset import layout
from synthfactory.dataset.manifest import Manifest, ShardEntry
from synthfactory.dataset.shards import read_marker
from synthfactory.errors import ConfigError, GenerationError, StorageError
from synthfactory.storage import ObjectStore


class DatasetVersion:
    """``{output}/{version}/`` and the operations the flow needs on it."""

    def __init__(self, root: ObjectStore, version: str) -> None:
        self.root = root
        self.version = version
        self.store = root.child(version)

    @property
    def uri(self) -> str:
        return self.store.uri

    def manifest(self) -> Manifest | None:
        try:
            return Manifest.model_validate_json(self.store.get_bytes(layout.MANIFEST))
        except FileNotFoundError:
            return None

    def claim(self, spec: dict[str, Any], spec_hash: str) -> None:
        """Record which spec this version holds; refuse to mix two specs in one version."""
        try:
            existing = json.loads(self.store.get_bytes(layout.JOB))
        except FileNotFoundError:
            existing = None
        if existing is not None and existing.get("spec_hash") != spec_hash:
            raise ConfigError(
                f"{self.uri} already holds a different job (spec hash "
                f"{existing.get('spec_hash', '?')[:12]}, this one {spec_hash[:12]})",
                fix="use another --version or output, or delete that folder",
            )
        if existing is None:
            body = {"spec": spec, "spec_hash": spec_hash}
            self.store.put_text(layout.JOB, json.dumps(body, indent=2))

    def committed_shards(self) -> dict[int, ShardEntry]:
        """Shards whose marker and data file are both whole, by index."""
        keys = [k for k in self.store.list(layout.MARKERS) if k.endswith(".json")]
        with ThreadPoolExecutor(max_workers=16) as pool:
            entries = list(pool.map(lambda k: read_marker(self.store, k), keys))
        return {e.index: e for e in entries if e is not None}

    def write_progress(self, progress: dict[str, Any]) -> None:
        try:
            self.store.put_text(layout.PROGRESS, json.dumps(progress))
        except StorageError as exc:  # advisory: a failed update must not fail the job
            logging.getLogger(__name__).warning("progress update failed: %s", exc)

    def publish(self, manifest: Manifest) -> None:
        """Commit: verify every shard the manifest names is whole, then write the manifest."""
        for shard in manifest.shards:
            size = self.store.size(shard.path)
            if size != shard.bytes:
                raise GenerationError(
                    f"shard {shard.path} is {size} bytes, expected {shard.bytes}: not publishing",
                    fix="re-run the job; the shard will be regenerated",
                )
        self.store.put_text(layout.MANIFEST, manifest.to_json())
