"""Object storage: local folders and S3-compatible buckets behind one small contract.

``STORES`` maps a URI scheme to its ``ObjectStore`` class; a URI without a scheme is a
local folder. To add a scheme (gs://, az://...): a module here with an ``ObjectStore``
subclass, and one ``STORES.add(scheme, "module:Class")`` line below.
"""

from __future__ import annotations

from synthfactory.errors import ConfigError
from synthfactory.registry import Registry
from synthfactory.spec.model import StorageOptions
from synthfactory.storage.base import ObjectStore
from synthfactory.storage.local import LocalStore
from synthfactory.storage.s3 import S3Store

#: URI scheme -> ObjectStore class
STORES = Registry("storage scheme")
STORES.add("file", "synthfactory.storage.local:LocalStore")
STORES.add("s3", "synthfactory.storage.s3:S3Store")


def scheme(uri: str) -> str:
    return uri.split("://", 1)[0] if "://" in uri else "file"


def open_store(uri: str, options: StorageOptions | None = None) -> ObjectStore:
    """``s3://bucket/prefix`` gives an S3Store; a path or ``file://`` a local folder."""
    name = scheme(uri)
    if name not in STORES.kinds():
        raise ConfigError(
            f"unsupported storage URI {uri!r}",
            fix=f"use a local path or one of {', '.join(s + '://' for s in STORES.kinds())}",
        )
    cls = STORES.load(name)
    if not (isinstance(cls, type) and issubclass(cls, ObjectStore)):
        raise ConfigError(f"{STORES.path(name)} is not an ObjectStore class")
    return cls.from_uri(uri, options)


__all__ = ["STORES", "LocalStore", "ObjectStore", "S3Store", "open_store", "scheme"]
