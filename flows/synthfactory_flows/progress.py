"""Live progress of a run: rows done, throughput, ETA, failures. Listeners get every update;
the dataset's ``_progress.json`` gets one at most every ``interval`` seconds."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

LIVE_WINDOW = 10.0

Listener = Callable[["Snapshot"], None]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> Callable[[], None]:
    """Receive progress snapshots of runs in this process; returns an unsubscribe function."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


@dataclass
class Snapshot:
    name: str
    version: str
    uri: str
    state: str = "starting"
    target_rows: int = 0
    rows_done: int = 0
    rows_resumed: int = 0
    shards_total: int = 0
    shards_done: int = 0
    failures: int = 0
    retries: int = 0
    actors: int = 0
    actors_busy: int = 0
    rows_per_second: float = 0.0
    eta_seconds: float | None = None
    units: dict[str, float] = field(default_factory=dict)
    requests_in_flight: int | None = None
    """Model requests sent and not yet answered, over every actor (None: no model)."""
    tokens_per_second: float | None = None
    """Completion tokens received per second over the last ``LIVE_WINDOW`` seconds, counted
    as they arrive (``units`` counts those of committed shards)."""
    started_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    message: str = ""
    flow_run_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Progress:
    def __init__(
        self,
        snapshot: Snapshot,
        sink: Callable[[dict[str, Any]], None] | None = None,
        interval: float = 1.0,
    ) -> None:
        self.snap = snapshot
        self._sink = sink
        self._interval = interval
        self._last_sink = 0.0
        self._lock = threading.Lock()
        self._gen_started = time.time()
        self._tokens: deque[tuple[float, int]] = deque()

    def live(self, counters: dict[str, int]) -> None:
        """The actors' live counters (``synthfactory_workers.telemetry``)."""
        now = time.monotonic()
        self._tokens.append((now, counters["completion_tokens"]))
        while len(self._tokens) > 2 and now - self._tokens[1][0] >= LIVE_WINDOW:
            self._tokens.popleft()
        (t0, first), (t1, last) = self._tokens[0], self._tokens[-1]
        rate = (last - first) / (t1 - t0) if t1 > t0 else 0.0
        self.update(requests_in_flight=counters["requests_in_flight"], tokens_per_second=rate)

    def update(self, *, force: bool = False, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(self.snap, key, value)
            self._recompute()
            snap = Snapshot(**{**self.snap.to_dict(), "units": dict(self.snap.units)})
        self._emit(snap, force)

    def generation_started(self) -> None:
        self._gen_started = time.time()

    def shard_done(self, rows: int, stats: dict[str, float]) -> None:
        with self._lock:
            self.snap.rows_done += rows
            self.snap.shards_done += 1
            for key in ("completion_tokens", "images"):
                if key in stats:
                    self.snap.units[key] = self.snap.units.get(key, 0.0) + stats[key]
            self._recompute()
            snap = Snapshot(**{**self.snap.to_dict(), "units": dict(self.snap.units)})
        self._emit(snap, False)

    def _recompute(self) -> None:
        now = time.time()
        self.snap.updated_at = now
        fresh = self.snap.rows_done - self.snap.rows_resumed
        elapsed = max(1e-9, now - self._gen_started)
        self.snap.rows_per_second = fresh / elapsed if fresh else 0.0
        remaining = max(0, self.snap.target_rows - self.snap.rows_done)
        rate = self.snap.rows_per_second
        self.snap.eta_seconds = remaining / rate if rate > 0 else None
        for key in list(self.snap.units):
            if not key.endswith("_per_second"):
                self.snap.units[f"{key}_per_second"] = self.snap.units[key] / elapsed

    def _emit(self, snap: Snapshot, force: bool) -> None:
        for listener in list(_listeners):
            listener(snap)
        now = time.monotonic()
        if self._sink and (force or now - self._last_sink >= self._interval):
            self._last_sink = now
            self._sink(snap.to_dict())
