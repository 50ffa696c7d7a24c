"""How fast an HTTP backend may send: an AIMD limit on requests in flight (``AIMD``), its
asyncio side (``Gate``) and the server's ``Retry-After`` (``parse_retry_after``)."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import time
from datetime import UTC

from synthfactory_workers.telemetry import METER

RETRY_AFTER_CAP_SECONDS = 300.0
"""The longest Retry-After honoured."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class AIMD:
    """Additive-increase, multiplicative-decrease limit on requests in flight.

    ``on_overload`` halves the limit once per congestion window: the requests already in
    flight when it dropped carry the old ``epoch`` and do not halve it again. ``on_success``
    adds one after ``limit`` successes in a row (one window)."""

    def __init__(self, maximum: int, minimum: int = 1) -> None:
        self.maximum = maximum
        self.minimum = minimum
        self.limit = maximum
        self.epoch = 0
        self.decreases = 0
        self._successes = 0
        self.resume_at = 0.0
        """time.monotonic() before which no request may start (a Retry-After)."""

    def on_success(self) -> None:
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            self.limit = min(self.maximum, self.limit + 1)

    def on_overload(self, epoch: int, retry_after: float | None, now: float) -> bool:
        """Record a 429/503 on a request started in ``epoch``; True if the limit dropped."""
        if retry_after:
            self.resume_at = max(self.resume_at, now + min(retry_after, RETRY_AFTER_CAP_SECONDS))
        if epoch != self.epoch:
            return False
        self.limit = max(self.minimum, self.limit // 2)
        self.epoch += 1
        self.decreases += 1
        self._successes = 0
        return True


class Gate:
    """The asyncio side of an AIMD limit: acquire() waits for a free slot and for any
    Retry-After pause to end; it returns the epoch the request starts in."""

    def __init__(self, aimd: AIMD) -> None:
        self.aimd = aimd
        self.in_flight = 0
        self.cond = asyncio.Condition()

    async def acquire(self) -> int:
        async with self.cond:
            while True:
                pause = self.aimd.resume_at - time.monotonic()
                if pause > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.cond.wait(), pause)
                    continue
                if self.in_flight < self.aimd.limit:
                    self.in_flight += 1
                    METER.started()
                    return self.aimd.epoch
                await self.cond.wait()

    async def release(self) -> None:
        async with self.cond:
            self.in_flight -= 1
            METER.finished()
            self.cond.notify_all()
