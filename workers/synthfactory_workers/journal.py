"""A per-shard journal of completions, so a retried shard or a resumed job never asks (and
pays) for the same completion twice.

Object stores cannot append, so the journal is a folder of small JSONL chunk objects:
``{version}/_journal/shard-00003/<writer>-<seq>.jsonl``. Each writer (one shard attempt)
has its own random id and numbers its chunks, so concurrent or repeated attempts never
overwrite each other; every put is atomic, so a chunk is whole or absent. Records are keyed
by the sha256 of the canonical request (model, messages, sampling, seed, response format).
A committed shard's journal is deleted: it will never be generated again.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synthfactory.storage import ObjectStore

PREFIX = "_journal"


def shard_prefix(index: int) -> str:
    return f"shard-{index:05d}"


class Journal:
    """Load what a shard already received; append what arrives, flushed in small chunks."""

    def __init__(
        self, store: ObjectStore, flush_records: int = 64, flush_seconds: float = 0.25
    ) -> None:
        self.store = store
        self.writer = uuid.uuid4().hex[:12]
        self.flush_records = flush_records
        self.flush_seconds = flush_seconds
        self._buffer: list[str] = []
        self._seq = 0
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        self.chunks_written = 0

    def load(self) -> dict[str, dict[str, Any]]:
        """Every record of earlier attempts, by request key (a torn line is skipped)."""
        records: dict[str, dict[str, Any]] = {}
        for key in self.store.list():
            if not key.endswith(".jsonl"):
                continue
            try:
                text = self.store.get_text(key)
            except FileNotFoundError:
                continue
            for line in text.splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and "key" in record:
                    records[record["key"]] = record
        return records

    def append(self, key: str, record: dict[str, Any]) -> None:
        line = json.dumps({"key": key, **record}, separators=(",", ":"))
        with self._lock:
            self._buffer.append(line)
            due = (
                len(self._buffer) >= self.flush_records
                or time.monotonic() - self._last_flush >= self.flush_seconds
            )
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            if not self._buffer:
                return
            lines, self._buffer = self._buffer, []
            seq = self._seq
            self._seq += 1
            self._last_flush = time.monotonic()
            self.store.put_text(f"{self.writer}-{seq:06d}.jsonl", "\n".join(lines) + "\n")
            self.chunks_written += 1

    def clear(self) -> None:
        """Delete every chunk (the shard is committed)."""
        for key in self.store.list():
            self.store.delete(key)
