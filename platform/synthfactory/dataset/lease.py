"""One writer per dataset version: a lease object in the version's folder.

``_lease.json`` says who writes the version and until when. It is created only if absent
(local: under an ``flock``; S3: ``If-None-Match: *``), renewed by its holder every
``ttl / 6`` seconds with a compare-and-swap on the tag it last wrote (S3: ``If-Match``),
taken over by another run only once it has expired, and deleted by its holder at the end.
A holder that finds its lease rewritten by someone else has lost it and must not publish.

A lease whose holder is provably dead is taken over at once rather than at expiry: the
holder ran on this very machine and in this pid namespace (same boot id and namespace
inode, so a container sharing the folder never counts) and its pid no longer exists.
A pid reused by another process only means waiting for the expiry, never a second writer.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthfactory.dataset import layout
from synthfactory.errors import StorageError, SynthfactoryError

if TYPE_CHECKING:
    from synthfactory.storage import ObjectStore

DEFAULT_TTL_SECONDS = 60.0


def machine_id() -> str:
    """This kernel boot and pid namespace: pids compare only between equal ids."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""  # not Linux: never judge a holder dead by its pid
    return f"{boot}:{namespace}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def ttl_seconds() -> float:
    """The lease's lifetime: ``SYNTHFACTORY_LEASE_TTL_S`` or 60 s. A run that stops
    renewing (killed, frozen, cut off from storage) is taken over this long after."""
    try:
        return max(1.0, float(os.environ.get("SYNTHFACTORY_LEASE_TTL_S", DEFAULT_TTL_SECONDS)))
    except ValueError:
        return DEFAULT_TTL_SECONDS


class LeaseLostError(SynthfactoryError):
    """Another run took this version over (this run stopped renewing its lease in time)."""


@dataclass(frozen=True)
class Holder:
    """What ``_lease.json`` holds."""

    owner: str
    host: str
    pid: int
    acquired_at: float
    expires_at: float
    machine: str = ""

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at < (time.time() if now is None else now)

    def dead(self) -> bool:
        """Provably gone: it ran here (same boot, same pid namespace) and its pid is not."""
        here = machine_id()
        return bool(here) and self.machine == here and self.pid > 0 and not pid_alive(self.pid)

    def gone(self) -> bool:
        """Free to take over: expired, or its holder is dead."""
        return self.expired() or self.dead()

    def describe(self) -> str:
        left = self.expires_at - time.time()
        return (
            f"run {self.owner[:8]} (host {self.host}, pid {self.pid}; its lease has "
            f"{left:.0f} s left and is renewed while it runs)"
        )

    @classmethod
    def parse(cls, data: bytes) -> Holder | None:
        try:
            raw = json.loads(data)
        except ValueError:
            return None  # unreadable: treated as expired
        return cls.from_dict(raw) if isinstance(raw, dict) else None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Holder | None:
        try:
            return cls(
                owner=str(raw["owner"]),
                host=str(raw.get("host", "?")),
                pid=int(raw.get("pid", 0)),
                acquired_at=float(raw.get("acquired_at", 0.0)),
                expires_at=float(raw["expires_at"]),
                machine=str(raw.get("machine", "")),
            )
        except (ValueError, KeyError, TypeError):
            return None


def read_holder(store: ObjectStore) -> Holder | None:
    """The version's current lease holder (expired or not), or None."""
    current = store.read_tagged(layout.LEASE)
    return Holder.parse(current[0]) if current else None


class Lease:
    """This run's claim on a version. ``acquire`` -> (``renew`` in a thread) -> ``release``."""

    def __init__(self, store: ObjectStore, ttl: float | None = None) -> None:
        self.store = store
        self.ttl = ttl or ttl_seconds()
        self.owner = uuid.uuid4().hex
        self.acquired_at = 0.0
        self._tag: str | None = None
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._renewing = threading.Lock()  # the renewer thread and ``check`` take turns
        self._thread: threading.Thread | None = None

    def _body(self) -> bytes:
        holder = Holder(
            owner=self.owner,
            host=socket.gethostname(),
            pid=os.getpid(),
            acquired_at=self.acquired_at,
            expires_at=time.time() + self.ttl,
            machine=machine_id(),
        )
        return json.dumps(asdict(holder)).encode()

    def try_acquire(self) -> Holder | None:
        """Take the lease if it is free or expired. None when taken; else who holds it."""
        for _ in range(5):  # lost races against other takers: look again
            current = self.store.read_tagged(layout.LEASE)
            holder = Holder.parse(current[0]) if current else None
            if holder is not None and not holder.gone() and holder.owner != self.owner:
                return holder
            self.acquired_at = time.time()
            body = self._body()
            if self.store.put_if(layout.LEASE, body, current[1] if current else None):
                self._tag = self._tag_of(body)
                self._lost.clear()
                return None
        current = self.store.read_tagged(layout.LEASE)
        holder = Holder.parse(current[0]) if current else None
        if holder is None:
            raise StorageError(f"could not take the lease {self.store.url(layout.LEASE)}")
        return holder

    def _tag_of(self, body: bytes) -> str:
        current = self.store.read_tagged(layout.LEASE)
        if current is None or current[0] != body:
            raise LeaseLostError(
                f"the lease on {self.store.uri} changed hands as it was taken",
                fix="another run is writing this version; re-run to follow it",
            )
        return current[1]

    def renew(self) -> bool:
        """Extend the lease; False (and ``lost``) when someone else rewrote it."""
        with self._renewing:
            return self._renew()

    def _renew(self) -> bool:
        if self._tag is None or self._lost.is_set():
            return False
        body = self._body()
        try:
            ok = self.store.put_if(layout.LEASE, body, self._tag)
        except StorageError:
            return True  # storage hiccup: try again at the next tick, the ttl has slack
        if not ok:
            self._lost.set()
            return False
        self._tag = self._tag_of(body)
        return True

    def start_renewing(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.ttl / 6):
                try:
                    if not self.renew():
                        return
                except SynthfactoryError:
                    self._lost.set()
                    return

        self._thread = threading.Thread(target=loop, name="synthfactory-lease", daemon=True)
        self._thread.start()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def check(self) -> None:
        """Raise LeaseLostError unless this run still holds the lease (and renew it now,
        so the write that follows has a whole ttl)."""
        if self.lost or not self.renew():
            raise LeaseLostError(
                f"another run took over {self.store.uri} (this run's lease expired): "
                "not publishing",
                fix="nothing is lost: the other run finishes the version; if this keeps "
                "happening, raise SYNTHFACTORY_LEASE_TTL_S",
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._renewing:
            if self._tag is not None and not self.lost:
                with contextlib.suppress(StorageError):  # else it expires on its own
                    self.store.delete_if(layout.LEASE, self._tag)
            self._tag = None
