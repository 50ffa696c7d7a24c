"""A terminal progress bar (rows, rows/s, ETA) fed by the flow's progress snapshots."""

from __future__ import annotations

from types import TracebackType
from typing import Any


class ProgressView:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._unsubscribe: Any = None

    def __enter__(self) -> ProgressView:
        if not self.enabled:
            return self
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        from synthfactory_flows.progress import Snapshot, subscribe

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows  {task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            transient=False,
        )
        self._task = self._bar.add_task("starting", total=None, rate="")
        self._bar.start()

        def show(snap: Snapshot) -> None:
            units = ", ".join(
                f"{v:,.1f} {k.removesuffix('_per_second')}/s"
                for k, v in snap.units.items()
                if k.endswith("_per_second")
            )
            rate = f"{snap.rows_per_second:,.0f}/s" + (f" ({units})" if units else "")
            if snap.requests_in_flight is not None:
                rate += (
                    f", {snap.requests_in_flight} in flight, "
                    f"{snap.tokens_per_second or 0:,.1f} tokens/s now"
                )
            self._bar.update(
                self._task,
                total=snap.target_rows,
                completed=snap.rows_done,
                description=snap.state,
                rate=rate,
            )

        self._unsubscribe = subscribe(show)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._bar.stop()
