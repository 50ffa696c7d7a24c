"""Object storage: local folders and S3-compatible buckets behind one small contract."""

from __future__ import annotations

from synthfactory.spec.model import StorageOptions
from synthfactory.storage.base import ObjectStore
from synthfactory.storage.local import LocalStore
from synthfactory.storage.s3 import S3Store


def open_store(uri: str, options: StorageOptions | None = None) -> ObjectStore:
    """``s3://bucket/prefix`` gives an S3Store; anything else is a local folder."""
    if uri.startswith("s3://"):
        return S3Store(uri, options)
    if "://" in uri and not uri.startswith("file://"):
        from synthfactory.errors import ConfigError

        raise ConfigError(
            f"unsupported storage URI {uri!r}", fix="use a local path or s3://bucket/prefix"
        )
    return LocalStore(uri.removeprefix("file://"))


__all__ = ["LocalStore", "ObjectStore", "S3Store", "open_store"]
