"""Live counters from inside the actors and tasks, for the progress view and the dashboard:
the one channel from the workers to the flow's progress (``flows/progress.py``).

A shard's token counts reach the flow only when the shard commits; a served model's shard
can take minutes. So each backend counts, as it works, the requests it has in flight (sent
and not yet answered; for a local engine, the prompts it is generating) and the completion
tokens it has received. ``Meter`` keeps those counters in the actor's process and pushes
them, at most every ``PUSH_SECONDS`` and whenever nothing is left in flight, to one small
``Telemetry`` actor per job (no CPU reserved, fire and forget). The flow reads its totals
while it waits for shards.

A model that fits in the prepare task reports each epoch's losses the same way
(``Meter.epoch``, sent at once, in order); the flow logs them as they arrive and shows the
latest in the progress line.

Counters are advisory: a lost push shows a stale number for a moment; nothing depends on
them for correctness.
"""

from __future__ import annotations

import threading
import time
from typing import Any

PUSH_SECONDS = 0.5


class Telemetry:
    """The per-job collector (wrapped with ``ray.remote``): the latest counters of each
    worker, summed on read."""

    def __init__(self) -> None:
        self._workers: dict[str, tuple[int, int]] = {}
        self._epochs: list[dict[str, float]] = []

    def epoch(self, values: dict[str, float]) -> None:
        self._epochs.append(values)

    def epochs(self, start: int = 0) -> list[dict[str, float]]:
        """The epochs reported so far, from the ``start``-th."""
        return self._epochs[start:]

    def report(self, worker: str, in_flight: int, completion_tokens: int) -> None:
        self._workers[worker] = (in_flight, completion_tokens)

    def forget(self, worker: str) -> None:
        """A dead worker's requests are no longer in flight (its tokens stay counted)."""
        if worker in self._workers:
            self._workers[worker] = (0, self._workers[worker][1])

    def read(self) -> dict[str, int] | None:
        if not self._workers:
            return None
        return {
            "requests_in_flight": sum(v[0] for v in self._workers.values()),
            "completion_tokens": sum(v[1] for v in self._workers.values()),
        }


class Meter:
    """This process's counters; ``sink`` is the job's Telemetry actor (None: count only).

    A change is pushed at once when the last push is ``PUSH_SECONDS`` old or nothing is
    left in flight; otherwise a flusher thread sends it within ``PUSH_SECONDS``, so a
    burst of requests is reported in full even when nothing happens after it."""

    def __init__(self) -> None:
        self.worker = ""
        self.sink: Any = None
        self.in_flight = 0
        self.completion_tokens = 0
        self._lock = threading.Lock()
        self._pushed = 0.0
        self._dirty = False
        self._flusher: threading.Thread | None = None

    def attach(self, sink: Any, worker: str) -> None:
        self.sink, self.worker = sink, worker
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush, daemon=True, name="meter")
            self._flusher.start()

    def detach(self) -> None:
        """Stop sending (a task's process may run other work after this job's)."""
        self.sink = None

    def epoch(self, values: dict[str, float]) -> None:
        """One epoch of a fit (sent at once; nothing without a sink: outside a job's fit)."""
        if self.sink is None:
            return
        try:
            self.sink.epoch.remote({k: float(v) for k, v in values.items()})
        except Exception:  # advisory (see the module docstring)
            self.sink = None

    def started(self, requests: int = 1) -> None:
        with self._lock:
            self.in_flight += requests
        self._push()

    def finished(self, requests: int = 1, completion_tokens: int = 0) -> None:
        with self._lock:
            self.in_flight = max(0, self.in_flight - requests)
            self.completion_tokens += completion_tokens
            idle = self.in_flight == 0
        self._push(force=idle)

    def _push(self, force: bool = False) -> None:
        if self.sink is None:
            return
        now = time.monotonic()
        with self._lock:
            if not force and now - self._pushed < PUSH_SECONDS:
                self._dirty = True
                return
            self._pushed, self._dirty = now, False
            counters = (self.in_flight, self.completion_tokens)
        try:
            self.sink.report.remote(self.worker, *counters)
        except Exception:  # advisory (see the module docstring)
            self.sink = None

    def _flush(self) -> None:
        while True:
            time.sleep(PUSH_SECONDS)
            if self._dirty:
                self._push(force=True)


METER = Meter()
"""The process's meter: backends count on it, the actor attaches it to the job's sink."""


def start_collector() -> Any:
    """The job's Telemetry actor: no resources reserved, so it never takes a worker's CPU."""
    import ray

    return ray.remote(Telemetry).options(num_cpus=0).remote()


def read(collector: Any, timeout: float = 2.0) -> dict[str, int] | None:
    """The collector's totals, or None if nothing was counted or it does not answer in
    time."""
    import ray

    try:
        result: dict[str, int] | None = ray.get(collector.read.remote(), timeout=timeout)
    except Exception:
        return None
    return result


def read_epochs(collector: Any, start: int = 0, timeout: float = 2.0) -> list[dict[str, float]]:
    """The epochs the collector received from the ``start``-th ([] if it does not answer)."""
    import ray

    try:
        result: list[dict[str, float]] = ray.get(collector.epochs.remote(start), timeout=timeout)
    except Exception:
        return []
    return result
