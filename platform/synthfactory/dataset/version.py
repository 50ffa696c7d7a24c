"""A dataset version being written: claim it, find committed shards, publish it."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from synthfactory.dataset import layout, parquet
from synthfactory.dataset.lease import Lease
from synthfactory.dataset.manifest import Manifest, ShardEntry, read_manifest
from synthfactory.dataset.shards import read_marker
from synthfactory.errors import ConfigError, GenerationError, StorageError
from synthfactory.storage import ObjectStore


class DatasetVersion:
    """``{output}/{version}/`` and the operations the flow needs on it."""

    def __init__(self, root: ObjectStore, version: str) -> None:
        self.root = root
        self.version = version
        self.store = root.child(version)
        self.lease: Lease | None = None
        """This run's lease on the version, when it writes it (checked before publishing)."""

    @property
    def uri(self) -> str:
        return self.store.uri

    def manifest(self) -> Manifest | None:
        try:
            return read_manifest(self.store)  # a broken one is a named error, not a traceback
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

    def read_progress(self) -> dict[str, Any] | None:
        """The last ``_progress.json`` (advisory: None when missing or unreadable)."""
        try:
            data = json.loads(self.store.get_bytes(layout.PROGRESS))
        except (StorageError, FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_progress(self, progress: dict[str, Any]) -> None:
        try:
            self.store.put_text(layout.PROGRESS, json.dumps(progress))
        except StorageError as exc:  # advisory: a failed update must not fail the job
            logging.getLogger(__name__).warning("progress update failed: %s", exc)

    def quarantine(self, manifest: Manifest) -> DatasetVersion:
        """Move this version to ``{output}/_quarantine/{version}/`` with ``manifest`` (status
        quarantined) as its commit point, out of the prefixes readers take data from.

        Copy everything, write the manifest there, then delete the originals: a crash on the
        way leaves the original whole (re-running resumes it) and the copy without a
        manifest (listed as incomplete, restored or overwritten by the next run)."""
        self._check_lease()
        self.sweep(manifest)
        self._verify(manifest)
        self._check_lease()
        target = DatasetVersion(self.root, f"{layout.QUARANTINE}/{self.version}")
        self._move_to(target, skip={layout.MANIFEST})
        target.store.put_text(layout.MANIFEST, manifest.to_json())
        self._delete_all()
        return target

    def restore_quarantined(self, spec_hash: str) -> bool:
        """Bring back this version's quarantined copy (same spec) so a re-run re-evaluates
        its gates on the data already made instead of generating it again."""
        source = DatasetVersion(self.root, f"{layout.QUARANTINE}/{self.version}")
        try:
            job = json.loads(source.store.get_bytes(layout.JOB))
        except FileNotFoundError:
            return False
        if job.get("spec_hash") != spec_hash:
            return False
        source._move_to(self, skip={layout.MANIFEST})
        source.store.delete(layout.MANIFEST)  # the copy stops being a version first
        source._delete_all()
        return True

    def _move_to(self, target: DatasetVersion, skip: set[str]) -> None:
        skip = skip | {layout.LEASE}  # the lease stays with its holder
        keys = [k for k in self.store.list() if k not in skip]
        prefix_from = f"{self.version}/"
        prefix_to = f"{target.version}/"
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(lambda k: self.root.copy(prefix_from + k, prefix_to + k), keys))

    def _delete_all(self) -> None:
        """Delete every object (the manifest last), through the root so that a local folder
        left empty goes too."""
        keys = [k for k in self.store.list() if k != layout.LEASE]
        rest = [f"{self.version}/{k}" for k in keys if k != layout.MANIFEST]
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(self.root.delete, rest))
        if layout.MANIFEST in keys:
            self.root.delete(f"{self.version}/{layout.MANIFEST}")

    @staticmethod
    def files_of(manifest: Manifest) -> set[str]:
        """Every data and rejected-rows file the manifest names."""
        named: set[str] = set()
        for shard in manifest.shards:
            named.add(shard.path)
            named.update(f.path for f in shard.tables.values())
            if shard.rejected_path:
                named.add(shard.rejected_path)
        return named

    def sweep(self, manifest: Manifest) -> list[str]:
        """Move every file under ``data/`` and ``rejected/`` that the manifest does not
        name (a shard rewritten by dedup or a trim, one trimmed to nothing) to
        ``_superseded/``, so that a reader of ``data/`` sees exactly the manifest's rows.
        Copy, then delete: a crash in between leaves both, which ``unsweep`` handles."""
        named = self.files_of(manifest)
        stray = [
            k
            for prefix in layout.PUBLIC_PREFIXES
            for k in self.store.list(prefix)
            if k not in named
        ]

        def move(key: str) -> None:
            self.store.copy(key, layout.SUPERSEDED + key)
            self.store.delete(key)

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(move, stray))
        return stray

    def unsweep(self) -> int:
        """Put back what ``sweep`` moved out (a run resuming a version that was not
        published: its commit markers name the original shard files)."""
        moved = self.store.list(layout.SUPERSEDED)

        def back(key: str) -> None:
            original = key.removeprefix(layout.SUPERSEDED)
            if not self.store.exists(original):
                self.store.copy(key, original)
            self.store.delete(key)

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(back, moved))
        return len(moved)

    def tidy(self) -> None:
        """After the writer let go: a version left with nothing (moved to quarantine) leaves
        no empty folder behind (deleting through the root prunes it; S3 has no folders)."""
        if not self.store.list():
            self.root.delete(f"{self.version}/{layout.LEASE}")

    def _check_lease(self) -> None:
        if self.lease is not None:
            self.lease.check()

    def _verify(self, manifest: Manifest) -> None:
        """Read every file back from storage: its size and sha256 must be what the
        manifest says (a file another writer replaced is caught here, not by readers)."""
        files = [
            (path, size, digest)
            for shard in manifest.shards
            for path, size, digest in [(shard.path, shard.bytes, shard.sha256)]
            + [(f.path, f.bytes, f.sha256) for f in shard.tables.values()]
        ]

        def problem(item: tuple[str, int, str]) -> str | None:
            path, expected, digest = item
            try:
                data = self.store.get_bytes(path)
            except FileNotFoundError:
                return f"shard {path} is missing"
            if len(data) != expected:
                return f"shard {path} is {len(data)} bytes, expected {expected}"
            if parquet.sha256(data) != digest:
                return f"shard {path} does not match its sha256 (another writer replaced it?)"
            return None

        with ThreadPoolExecutor(max_workers=16) as pool:
            problems = [p for p in pool.map(problem, files) if p]
        if problems:
            raise GenerationError(
                f"{problems[0]}: not publishing"
                + (f" ({len(problems) - 1} more)" if len(problems) > 1 else ""),
                fix="re-run the job; the shard will be regenerated",
            )

    def publish(self, manifest: Manifest) -> None:
        """Commit: move unused files out of ``data/``, verify every shard the manifest names
        is whole (read back and hashed), then write the manifest, still holding the lease."""
        self._check_lease()
        self.sweep(manifest)
        self._verify(manifest)
        self._check_lease()
        self.store.put_text(layout.MANIFEST, manifest.to_json())
