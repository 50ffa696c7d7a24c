"""The object-store contract: flat keys under a root URI, atomic whole-object writes, and
the URI rules of its scheme (parent, containment, forwarded settings)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, ClassVar

from synthfactory.spec.base import Strict

if TYPE_CHECKING:
    import pyarrow.fs

    from synthfactory.spec.storage import StorageOptions


class NoSettings(Strict):
    """The settings of a scheme that has none (a local folder)."""


class ObjectStore(ABC):
    """A root URI plus keys below it ('a/b/c.parquet').

    ``put_bytes`` is atomic: readers see the old object, or the whole new one, never
    part of it. That property is what makes shard commit markers and manifests safe.
    Stores pickle by settings only, so they can be shipped to Ray actors.
    """

    uri: str

    #: environment settings (no secret) that actors need to reach stores of this scheme;
    #: the job forwards them to its actors (Ray logs them: never a credential here)
    FORWARDED_ENV: ClassVar[tuple[str, ...]] = ()
    #: credentials in the environment: they reach actors through the secret holder only
    SECRET_ENV: ClassVar[tuple[str, ...]] = ()
    #: the scheme's settings (``storage.<scheme>`` in a spec; every field described: it
    #: is the reference ``synthfactory schema`` prints); never a credential
    Options: ClassVar[type[Strict]] = NoSettings

    @classmethod
    def from_uri(cls, uri: str, options: StorageOptions | None = None) -> ObjectStore:
        """The store for a URI of this class's scheme (``open_store`` calls it): the
        class made with the URI and its own settings (``options.settings(cls.Options)``;
        the defaults without options)."""
        settings = None if options is None else options.settings(cls.Options)
        return cls(uri, settings)  # type: ignore[call-arg]

    # --- URI rules of the scheme (class methods: no store is opened) ---------------------

    @classmethod
    def split(cls, uri: str) -> tuple[str, str]:
        """(the URI of the folder holding ``uri``, its last name): a source file is read
        as ``open_store(folder).get_bytes(name)``. Here for ``scheme://a/b/c`` URIs."""
        name, _, rest = uri.partition("://")
        path = PurePosixPath(rest)
        return f"{name}://{path.parent}", path.name

    @classmethod
    def contains(cls, root: str, uri: str) -> bool:
        """Whether ``uri`` is ``root`` or below it (both of this scheme): the dashboard
        reads nothing else. Keys are plain strings here, so a ``.`` or ``..`` segment is
        refused, never resolved."""
        if any(part in (".", "..") for part in uri.partition("://")[2].split("/")):
            return False
        base, norm = root.rstrip("/"), uri.rstrip("/")
        return norm == base or norm.startswith(base + "/")

    @abstractmethod
    def child(self, *parts: str) -> ObjectStore:
        """A store rooted at a sub-prefix."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Raises FileNotFoundError for a missing key."""

    @abstractmethod
    def size(self, key: str) -> int | None:
        """Object size in bytes, or None if it does not exist."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Every key below ``prefix`` (recursive), relative to the root, sorted."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def check_access(self, write: bool = True) -> None:
        """Fail fast (StorageAccessError naming the URI) if the store is unusable."""

    @abstractmethod
    def arrow_filesystem(self) -> tuple[pyarrow.fs.FileSystem, str]:
        """A pyarrow filesystem and the root path inside it, for dataset readers."""

    @abstractmethod
    def read_tagged(self, key: str) -> tuple[bytes, str] | None:
        """The object and a tag that changes whenever it is rewritten (S3: its ETag), or
        None when it does not exist. The tag is what ``put_if`` and ``delete_if`` compare."""

    @abstractmethod
    def put_if(self, key: str, data: bytes, tag: str | None) -> bool:
        """Write only if the object is unchanged: ``tag`` None means "only if absent",
        else "only if its tag is still ``tag``". False (nothing written) when another
        writer got there first. Atomic against every other ``put_if`` / ``delete_if``."""

    @abstractmethod
    def delete_if(self, key: str, tag: str) -> bool:
        """Delete only if the object's tag is still ``tag``; False otherwise."""

    def copy(self, source: str, target: str) -> None:
        """Copy one object within this store (atomic at ``target``, like ``put_bytes``)."""
        self.put_bytes(target, self.get_bytes(source))

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def url(self, key: str = "") -> str:
        return f"{self.uri.rstrip('/')}/{key}" if key else self.uri

    def get_text(self, key: str) -> str:
        return self.get_bytes(key).decode()

    def put_text(self, key: str, text: str) -> None:
        self.put_bytes(key, text.encode())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"
