"""Object storage: local folders and S3-compatible buckets behind one small contract.

``STORES`` (declared with the spec's ``storage:`` section, ``synthfactory.spec.storage``)
maps a URI scheme to its ``ObjectStore`` class; a URI without a scheme is a local folder.
A scheme owns its URI rules and settings (``split``: a URI's folder and name; ``contains``:
what is below a root; ``Options``: its ``storage.<scheme>`` settings; ``FORWARDED_ENV`` /
``SECRET_ENV``: what its actors need), so code above this package never parses a URI
itself. To add a scheme (gs://, az://...): a module with an ``ObjectStore`` subclass, and
one ``STORES.add(scheme, "module:Class")`` line (in ``spec/storage.py`` for a built-in one,
anywhere for a plug-in).
"""

from __future__ import annotations

from synthfactory.errors import ConfigError
from synthfactory.spec.storage import STORES, StorageOptions
from synthfactory.storage.base import ObjectStore
from synthfactory.storage.local import LocalStore
from synthfactory.storage.s3 import S3Store


def scheme(uri: str) -> str:
    return uri.split("://", 1)[0] if "://" in uri else "file"


def store_class(uri: str) -> type[ObjectStore]:
    """The ``ObjectStore`` class of ``uri``'s scheme; a ConfigError for an unknown one."""
    return _scheme_class(scheme(uri), uri)


def _scheme_class(name: str, uri: str) -> type[ObjectStore]:
    if name not in STORES.kinds():
        raise ConfigError(
            f"unsupported storage URI {uri!r}",
            fix=f"use a local path or one of {', '.join(s + '://' for s in STORES.kinds())}",
        )
    cls = STORES.load(name)
    if not (isinstance(cls, type) and issubclass(cls, ObjectStore)):
        raise ConfigError(f"{STORES.path(name)} is not an ObjectStore class")
    return cls


def open_store(uri: str, options: StorageOptions | None = None) -> ObjectStore:
    """``s3://bucket/prefix`` gives an S3Store; a path or ``file://`` a local folder."""
    return store_class(uri).from_uri(uri, options)


def split_uri(uri: str) -> tuple[str, str]:
    """(the URI of the folder holding ``uri``, its last name), by its scheme's rule."""
    return store_class(uri).split(uri)


def parent_uri(uri: str) -> str:
    """The URI of the folder holding ``uri``."""
    return split_uri(uri)[0]


def inside(uri: str, roots: list[str]) -> bool:
    """Whether ``uri`` is one of ``roots`` or below one, by the rule of its scheme; a URI
    of an unknown scheme, or of another scheme than a root's, is inside none of them."""
    if "\x00" in uri or scheme(uri) not in STORES.kinds():
        return False
    cls = store_class(uri)
    return any(scheme(root) == scheme(uri) and cls.contains(root, uri) for root in roots)


def forwarded_env() -> tuple[str, ...]:
    """Every registered scheme's ``FORWARDED_ENV`` (settings, no credential)."""
    return _each_scheme("FORWARDED_ENV")


def secret_env() -> tuple[str, ...]:
    """Every registered scheme's ``SECRET_ENV`` (credentials: the secret holder only)."""
    return _each_scheme("SECRET_ENV")


def _each_scheme(attribute: str) -> tuple[str, ...]:
    names: list[str] = []
    for kind in STORES.kinds():
        cls = _scheme_class(kind, f"{kind}://")
        names += [n for n in getattr(cls, attribute) if n not in names]
    return tuple(names)


__all__ = [
    "STORES",
    "LocalStore",
    "ObjectStore",
    "S3Store",
    "forwarded_env",
    "inside",
    "open_store",
    "parent_uri",
    "scheme",
    "secret_env",
    "split_uri",
    "store_class",
]
