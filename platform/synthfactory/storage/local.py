"""A local folder as an object store; writes go through a temp file and an atomic rename."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from synthfactory.errors import StorageAccessError, StorageError
from synthfactory.storage.base import ObjectStore

if TYPE_CHECKING:
    import pyarrow.fs

    from synthfactory.spec.storage import StorageOptions


def _path_of(uri: str) -> str:
    return uri.removeprefix("file://")


class LocalStore(ObjectStore):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)

    @classmethod
    def from_uri(cls, uri: str, options: StorageOptions | None = None) -> LocalStore:
        return cls(_path_of(uri))

    @classmethod
    def split(cls, uri: str) -> tuple[str, str]:
        path = PurePosixPath(_path_of(uri))
        return str(path.parent), path.name

    @classmethod
    def contains(cls, root: str, uri: str) -> bool:
        """Both resolved first (``~``, ``..`` and symbolic links): a path that leads out
        of ``root`` is outside it, whatever it spells."""
        try:
            base = str(Path(_path_of(root)).expanduser().resolve())
            norm = str(Path(_path_of(uri)).expanduser().resolve())
        except (OSError, RuntimeError, ValueError):
            return False
        return norm == base or norm.startswith(base.rstrip("/") + "/")

    def child(self, *parts: str) -> LocalStore:
        return LocalStore(self.root.joinpath(*parts))

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise StorageError(f"key {key!r} escapes the store root {self.root}")
        return path

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"cannot write {path}: {exc}") from exc

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def list(self, prefix: str = "") -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root))
            for p in base.rglob("*")
            if p.is_file() and not p.name.endswith(".tmp")
        )

    def delete(self, key: str) -> None:
        """Remove the file and any folders it leaves empty (object stores have none)."""
        path = self._path(key)
        path.unlink(missing_ok=True)
        self._prune(path)

    def _prune(self, path: Path) -> None:
        for parent in path.parents:
            if parent == self.root or self.root not in parent.parents:
                break
            try:
                parent.rmdir()
            except OSError:  # not empty (or already gone)
                break

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[Path]:
        """An exclusive ``flock`` on the key's folder: compare-and-swap between processes
        of this machine (a local folder has one kernel; NFS is not supported)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield path
        finally:
            os.close(fd)  # closing releases the lock

    def read_tagged(self, key: str) -> tuple[bytes, str] | None:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        return data, hashlib.sha256(data).hexdigest()

    def put_if(self, key: str, data: bytes, tag: str | None) -> bool:
        with self._locked(key):
            current = self.read_tagged(key)
            if (current is None) != (tag is None) or (current and current[1] != tag):
                return False
            self.put_bytes(key, data)
            return True

    def delete_if(self, key: str, tag: str) -> bool:
        with self._locked(key) as path:
            current = self.read_tagged(key)
            if current is None or current[1] != tag:
                return False
            path.unlink()
        self._prune(path)
        return True

    def copy(self, source: str, target: str) -> None:
        src, dst = self._path(source), self._path(target)
        tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.tmp")
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, FileNotFoundError) and not src.exists():
                raise
            raise StorageError(f"cannot copy {src} to {dst}: {exc}") from exc

    def check_access(self, write: bool = True) -> None:
        probe = self.root
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir():
            raise StorageAccessError(
                f"output {self.uri} is under {probe}, which is a file",
                fix="choose an output folder that is not inside a file",
            )
        if write and not os.access(probe, os.W_OK):
            raise StorageAccessError(
                f"cannot write to {self.uri} ({probe} is not writable)",
                fix="choose a writable output folder or fix its permissions",
            )

    def arrow_filesystem(self) -> tuple[pyarrow.fs.FileSystem, str]:
        import pyarrow.fs

        return pyarrow.fs.LocalFileSystem(), str(self.root)
