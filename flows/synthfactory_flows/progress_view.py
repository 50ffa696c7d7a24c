"""The terminal view of a run, fed by the flow's progress snapshots.

Two lines, redrawn a few times a second (so every clock ticks, whatever the flow does)
and cut to the terminal's width (the row count is kept, the bar and the rest go first)::

    ⠸ generating 41s ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━  1,240/2,000 rows  35/s  eta 0:21
      total 1:02 · shards 12/20 · resumed 400 rows · 2/2 actors busy

The first line names the phase with its own elapsed time: ``loading`` (this program's
imports), ``server`` (Prefect's temporary server starting; ``flow start`` with a server
of one's own), then the flow's phases (``synthfactory_flows.progress``). Each new message
of the flow (a top-up round: "round 2: 3 of 6 rows kept; ...") is printed once above the
lines, except a failure's, which the command prints itself. Log lines written while the
view runs are printed above it too, not through it."""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from synthfactory_flows.progress import FAILURE_STATES, Snapshot, is_generating, subscribe

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.live import Live
    from rich.text import Text

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
#: the bar is left out when less than this many columns are left for it
MIN_BAR = 8
#: phases whose first line shows rows, rate and ETA
ROW_PHASES = ("evaluating", "publishing", "done", "quarantined", "failed", "stopping", "stopped")
#: phases of a run that ended: no clock of their own
ENDED = ("done", "failed", "stopped", "quarantined")
#: what ``units`` keys are called on the screen
UNIT_NAMES = {"completion_tokens": "tokens"}


def duration(seconds: float) -> str:
    """A phase's time: ``12s``, ``3m05s``, ``1h02m``."""
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def clock(seconds: float) -> str:
    """A total or an ETA: ``0:21``, ``12:05``, ``1:02:03``."""
    s = int(max(0.0, seconds) + 0.5)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def rate(per_second: float) -> str:
    """``3.5``, ``35``, ``17.2k``, ``1.3M`` (per second)."""
    if per_second >= 1e9:
        return f"{per_second / 1e9:.1f}G"
    if per_second >= 1e6:
        return f"{per_second / 1e6:.1f}M"
    if per_second >= 1e4:
        return f"{per_second / 1e3:.0f}k"
    if per_second >= 1e3:
        return f"{per_second / 1e3:.1f}k"
    return f"{per_second:.1f}" if per_second < 10 else f"{per_second:.0f}"


class ProgressView:
    """Subscribes to the run's progress while open. Shows it when ``enabled`` (a
    terminal); records it in any case: ``last`` (the last snapshot) and ``phases()``
    (every phase's seconds, this program's first) feed the command's summary."""

    def __init__(
        self,
        enabled: bool = True,
        *,
        console: Console | None = None,
        clock: Callable[[], float] = time.time,
        refresh_per_second: float = 4,
    ) -> None:
        self.enabled = enabled
        self.last: Snapshot | None = None
        self.started = clock()
        self._clock = clock
        self._console = console
        self._refresh = refresh_per_second
        self._lock = threading.RLock()
        self._phase = ""
        self._phase_since = self.started
        self._own: dict[str, float] = {}
        """Seconds of this program's phases (before the flow's first snapshot)."""
        self._said = ""
        self._rounds: list[str] = []
        """The flow's top-up round messages, for the summary (a view that is not shown
        prints nothing while the run goes on)."""
        self._unsubscribe: Callable[[], None] | None = None
        self._live: Live | None = None
        self._retargeted: list[tuple[Any, str, Any]] = []

    # -- the command's side ------------------------------------------------------------

    def phase(self, name: str) -> None:
        """Start one of this program's phases (until the flow reports its own)."""
        with self._lock:
            now = self._clock()
            if self._phase:
                self._own[self._phase] = self._own.get(self._phase, 0.0) + now - self._phase_since
            self._phase, self._phase_since = name, now
        self._adopt_log_handlers()

    def elapsed(self) -> float:
        return self._clock() - self.started

    def phases(self) -> dict[str, float]:
        """Seconds of each finished phase: this program's, then the flow's."""
        with self._lock:
            own = dict(self._own)
            if self.last is None and self._phase:
                own[self._phase] = own.get(self._phase, 0.0) + self._clock() - self._phase_since
            flow = dict(self.last.phase_seconds) if self.last else {}
            if self.last and self.last.phase and self.last.phase not in ("done", "failed"):
                current = self._clock() - self.last.phase_started_at
                flow[self.last.phase] = flow.get(self.last.phase, 0.0) + current
        return {**own, **flow}

    def summary_lines(self) -> list[str]:
        """The command's summary of the run: rate, resumed rows, each phase's time."""
        if self.last is None:
            return []
        return summary_lines(self.last, self.phases(), self._rounds)

    def show(self, snap: Snapshot) -> None:
        """A progress snapshot (the subscription's listener)."""
        with self._lock:
            first = self.last is None
            if first and self._phase:
                now = snap.started_at
                self._own[self._phase] = self._own.get(self._phase, 0.0) + max(
                    0.0, now - self._phase_since
                )
                self._phase = ""
            changed = self.last is None or self.last.phase != snap.phase
            self.last = snap
            message = snap.message.strip()
            new = message and message != self._said
            if new:
                self._said = message
                if message.startswith("round ") and snap.state not in FAILURE_STATES:
                    self._rounds.append(message)
        if new and snap.state not in FAILURE_STATES and self._live is not None:
            from rich.text import Text

            self._live.console.print(Text(message, overflow="fold"))
        if changed:
            self._adopt_log_handlers()

    # -- context --------------------------------------------------------------------------

    def __enter__(self) -> ProgressView:
        self._unsubscribe = subscribe(self.show)
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.live import Live

        console = self._console or Console(stderr=True)
        self._streams = (sys.stderr, sys.stdout)
        self._live = Live(
            self,
            console=console,
            refresh_per_second=self._refresh,
            transient=False,
            redirect_stdout=_isatty(sys.stdout),
            redirect_stderr=True,
        )
        self._live.start()
        try:
            self._adopt_log_handlers()
        except BaseException:
            self.__exit__(None, None, None)  # unsubscribed and stopped, not left behind
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._live is not None:
            try:
                self._live.stop()
            finally:
                self._restore_log_handlers()
                self._live = None

    # -- log lines above the view ---------------------------------------------------------

    def _adopt_log_handlers(self) -> None:
        """Point console log handlers that write to the terminal at the view's streams,
        which print above it (Prefect's and Ray's handlers keep the stream they were
        created with, and would write through the lines)."""
        if self._live is None:
            return
        old_err, old_out = self._streams
        targets: dict[int, Any] = {}
        for old, now, real in (
            (old_err, sys.stderr, sys.__stderr__),
            (old_out, sys.stdout, sys.__stdout__),
        ):
            if now is not old:  # the view took it (a terminal): rich's proxy is ``now``
                above = _Above(now)
                # handlers made before the view hold the terminal's stream, those made
                # since rich's proxy (and a rich Console given that proxy still writes
                # to the terminal underneath it)
                targets.update({id(old): above, id(real): above, id(now): above})
        if not targets:
            return
        for handler in _console_handlers():
            stream = handler.stream
            target = targets.get(id(stream))
            if target is not None:
                try:
                    handler.stream = target
                except AttributeError:  # logging.lastResort: its stream is sys.stderr itself
                    pass
                else:
                    self._retargeted.append((handler, "stream", stream))
            console = getattr(handler, "console", None)  # Prefect's prints with rich
            file = getattr(console, "file", None)
            if console is not None and id(file) in targets:
                self._retargeted.append((console, "file", file))
                console.file = targets[id(file)]

    def _restore_log_handlers(self) -> None:
        for owner, attribute, value in reversed(self._retargeted):
            setattr(owner, attribute, value)
        self._retargeted.clear()

    # -- rendering ------------------------------------------------------------------------

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.lines(options.max_width)

    def lines(self, width: int) -> Iterator[Text]:
        """The view's lines at this moment, none wider than ``width``."""
        from rich.text import Text

        now = self._clock()
        with self._lock:
            snap, phase, since = self.last, self._phase, self._phase_since
        if snap is not None and snap.phase:
            phase, since = snap.phase, snap.phase_started_at
        phase = phase or "starting"
        spin = {"done": "✓", "failed": "✗"}.get(phase, SPINNER[int(now * 10) % len(SPINNER)])
        head = Text(f"{spin} ")
        head.append(phase, style="bold")
        if phase not in ENDED:  # an ended run's time is the total, below
            head.append(f" {duration(now - since)}", style="cyan")
        first = self._first_line(head, snap, phase, width)
        first.truncate(width, overflow="ellipsis")
        yield first
        second = Text("  ")
        second.append(" · ".join(self._details(snap, now)), style="dim")
        second.truncate(width, overflow="ellipsis")
        yield second

    def _first_line(self, head: Text, snap: Snapshot | None, phase: str, width: int) -> Text:

        if snap is None or snap.target_rows <= 0:
            return head
        if not (is_generating(phase) or phase in ROW_PHASES):
            return head
        target = snap.target_rows
        done = min(max(0, snap.rows_done), target)  # never above the target
        rows = f"{done:,}/{target:,} rows"
        extra = []
        if is_generating(phase):
            extra.append(f"{rate(snap.rows_per_second)}/s")
            eta = snap.eta_seconds
            extra.append(f"eta {clock(eta)}" if eta is not None else "eta ?")
        # keep the row count; drop the ETA, then the rate, when the line is too narrow
        while extra and head.cell_len + len(rows) + sum(len(e) + 2 for e in extra) + 2 > width:
            extra.pop()
        tail = "  ".join([rows, *extra])
        room = width - head.cell_len - len(tail) - 3
        line = head.copy()
        if room >= MIN_BAR:
            filled = round(room * done / target)
            line.append(" ")
            line.append("━" * filled, style="green" if done >= target else "magenta")
            line.append("━" * (room - filled), style="grey23")
        line.append("  ")
        line.append(rows, style="bold")
        if extra:
            line.append("  " + "  ".join(extra))
        return line

    def _details(self, snap: Snapshot | None, now: float) -> list[str]:
        parts = [f"total {clock(now - self.started)}"]
        if snap is None:
            return parts
        if snap.shards_total:
            parts.append(f"shards {snap.shards_done}/{snap.shards_total}")
        if snap.rows_resumed:
            parts.append(f"resumed {snap.rows_resumed:,} rows")
        if snap.actors and is_generating(snap.phase):
            parts.append(f"{snap.actors_busy}/{snap.actors} actors busy")
        if snap.failures or snap.retries:
            parts.append(f"{snap.failures} failed, {snap.retries} retried")
        if snap.cost_usd is not None:
            spent = f"${snap.cost_usd:,.2f}"
            if snap.projected_cost_usd is not None and is_generating(snap.phase):
                spent += f" of ~${snap.projected_cost_usd:,.2f}"
            if snap.budget_usd is not None:
                spent += f" (budget ${snap.budget_usd:,.2f})"
            parts.append(spent)
        if snap.requests_in_flight is not None and is_generating(snap.phase):
            parts.append(f"{snap.requests_in_flight} in flight")
            parts.append(f"{rate(snap.tokens_per_second or 0)} tokens/s now")
        for key, value in snap.units.items():
            if key.endswith("_per_second") and value:
                unit = key.removesuffix("_per_second")
                parts.append(f"{rate(value)} {UNIT_NAMES.get(unit, unit)}/s")
        return parts


def _isatty(stream: IO[str] | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


class _Above(io.TextIOBase):
    """Writes through the view's stream proxy, which prints above the view. (Not rich's
    proxy itself: a rich Console given that writes to the terminal underneath.)"""

    def __init__(self, proxy: IO[str]) -> None:
        self._proxy = proxy

    def write(self, text: str) -> int:
        self._proxy.write(text)
        return len(text)

    def flush(self) -> None:
        self._proxy.flush()

    def isatty(self) -> bool:
        return _isatty(self._proxy)

    def fileno(self) -> int:
        return self._proxy.fileno()


def _console_handlers() -> Iterator[logging.StreamHandler[Any]]:
    loggers: list[Any] = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if isinstance(handler, logging.StreamHandler):
                yield handler


def summary_lines(
    snap: Snapshot, phases: dict[str, float], rounds: Sequence[str] = ()
) -> list[str]:
    """The rate (the live one's measure: rows generated / seconds generating), the rows
    resumed, each phase's time (those over 0.05 s) and the top-up rounds (their count, from
    the phases, and what each said), in lines of at most 80 columns."""
    lines = []
    if snap.rows_generated and snap.generate_seconds > 0:
        per_second = snap.rows_generated / snap.generate_seconds
        lines.append(
            f"  rate: {rate(per_second)} rows/s = {snap.rows_generated:,} rows generated / "
            f"{snap.generate_seconds:.1f}s generating (as live)"
        )
    if snap.rows_resumed:
        lines.append(
            f"  resumed: {snap.rows_resumed:,} rows an earlier run committed (not generated again)"
        )
    spent = [f"{name} {seconds:.1f}s" for name, seconds in phases.items() if seconds >= 0.05]
    line = "  time:"
    for i, item in enumerate(spent):
        item += "," if i < len(spent) - 1 else ""
        if len(line) + 1 + len(item) > 80:
            lines.append(line)
            line = "       "
        line += " " + item
    if spent:
        lines.append(line)
    return lines + rounds_lines(snap, phases, rounds)


def rounds_lines(snap: Snapshot, phases: dict[str, float], said: Sequence[str]) -> list[str]:
    """``rounds: N`` (1 + the top-up rounds that ran) and each top-up round's message,
    folded to 80 columns; nothing when one round made every row."""
    top_ups = sum(name.startswith("top-up round ") for name in {*phases, snap.phase})
    if not top_ups and not said:
        return []
    shards = f" ({snap.shards_total:,} shards in all)" if snap.shards_total else ""
    lines = [f"  rounds: {1 + max(top_ups, len(said))}{shards}"]
    for message in said:
        words, line = message.split(), "    "
        for word in words:
            if len(line) + len(word) + 1 > 80 and line.strip():
                lines.append(line)
                line = "      "
            line += ("" if line.endswith(" ") else " ") + word
        lines.append(line)
    return lines


def quiet_banners(verbose: bool) -> None:
    """No library banners on a run's console; call before Prefect is imported. Prefect
    logs warnings and up unless ``verbose`` (not "Starting temporary server ..."),
    neither it nor Ray collects usage statistics, and with Prefect's analytics off its
    first-run telemetry notice (printed unless DO_NOT_TRACK is set) is off too. A user's
    own setting of any of these variables wins. Ray's token-auth notice: ``ray_runtime``."""
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"].strip().lower() in ("false", "0", "no"):
        os.environ.setdefault("DO_NOT_TRACK", "1")


def server_phase() -> str:
    """What the wait before the flow's first snapshot is: Prefect's temporary server
    starting (no ``PREFECT_API_URL``), else the flow run being created on the server."""
    return "flow start" if os.environ.get("PREFECT_API_URL") else "server"


def column_lines(fields: list[dict[str, Any]], *, text: bool, width: int = 80) -> list[str]:
    """The data's columns, wrapped to ``width`` between columns; a text job's lineage and
    bookkeeping columns (``column__seed``, ``prompt_tokens`` ...) are counted, not listed."""
    from synthfactory_flows.preview_view import TEXT_BOOKKEEPING

    shown = [
        f
        for f in fields
        if not text or ("__" not in f["name"] and f["name"] not in TEXT_BOOKKEEPING)
    ]
    items = [f"{f['name']}: {f['type']}," for f in shown]
    if items:
        items[-1] = items[-1].rstrip(",")
    if len(shown) < len(fields):
        items.append(f"(+{len(fields) - len(shown)} lineage columns)")
    lines = ["  columns:"]
    for item in items:
        if len(lines[-1]) + 1 + len(item) > width and lines[-1].strip() != "columns:":
            lines.append("   ")
        lines[-1] += " " + item
    return lines
