"""Training progress while a model fits in a Ray task: each epoch's losses are written to a
small JSON object in the artifact store (at most once a second, and at the end), which the
Prefect task polls and logs as they arrive."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from synthfactory.storage import ObjectStore

_epochs: list[dict[str, float]] | None = None
_target: tuple[ObjectStore, str] | None = None
_last_write = 0.0
WRITE_EVERY_SECONDS = 1.0


@contextlib.contextmanager
def reporting(store: ObjectStore | None, key: str | None) -> Iterator[None]:
    """Report epochs to ``store/key`` while the block runs (a no-op without a key)."""
    global _epochs, _target, _last_write
    if store is None or key is None:
        yield
        return
    _epochs, _target, _last_write = [], (store, key), 0.0
    try:
        yield
    finally:
        _flush()
        _epochs, _target = None, None


def report(values: dict[str, float]) -> None:
    """One epoch's numbers (called by the synthesizer's training loop)."""
    global _last_write
    if _epochs is None:
        return
    _epochs.append(dict(values))
    if time.monotonic() - _last_write >= WRITE_EVERY_SECONDS:
        _flush()


def _flush() -> None:
    global _last_write
    if _target is None or not _epochs:  # nothing trained: write nothing
        return
    store, key = _target
    try:
        store.put_text(key, json.dumps(_epochs))
    except Exception:  # progress is advisory: never fail a fit over it
        return
    _last_write = time.monotonic()


def read(store: ObjectStore, key: str) -> list[dict[str, float]]:
    try:
        epochs: list[dict[str, float]] = json.loads(store.get_bytes(key))
    except (FileNotFoundError, ValueError):
        return []
    return epochs
