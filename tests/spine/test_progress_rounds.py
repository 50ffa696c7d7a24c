"""The run's summary says how many rounds it took and what each top-up round said, also
when no progress view was shown (output to a pipe or a file, ``--quiet``): synthetic
snapshots, no Prefect, no Ray."""

from __future__ import annotations

from synthfactory_flows.progress import Progress, Snapshot
from synthfactory_flows.progress_view import ProgressView, summary_lines

from .helpers import Clock


def progress(clock: Clock, target: int, shards: int) -> Progress:
    snap = Snapshot(
        name="job", version="v-1", uri="/tmp/job/v-1", target_rows=target,
        shards_total=shards, actors=1, started_at=clock(), phase_started_at=clock(),
    )  # fmt: skip
    return Progress(snap, clock=clock)


def run_with_rounds(view: ProgressView, clock: Clock, said: list[str]) -> None:
    """A run of 40 rows in 4 shards that keeps half its rows: two top-up rounds."""
    p = progress(clock, target=40, shards=4)
    p.update(state="running", phase="generating")
    for _ in range(4):
        clock.tick(1)
        p.shard_done(5, {})
    for n, message in enumerate(said, start=2):
        p.update(
            shards_total=p.snap.shards_total + 3,
            rows_done=20,
            message=message,
            phase=f"top-up round {n}",
        )
        clock.tick(1)
        p.shard_done(5, {})
    p.update(state="done", phase="done", force=True)


def test_a_view_not_shown_still_reports_each_round_in_the_summary() -> None:
    clock = Clock()
    said = [
        "round 2: 20 of 40 rows kept; up to 3 more shard(s)",
        "round 3: 35 of 40 rows kept; up to 2 more shard(s) for the last rows of a very "
        "long message that has to wrap",
    ]
    with ProgressView(enabled=False, clock=clock) as view:  # a pipe: nothing drawn
        run_with_rounds(view, clock, said)
    lines = view.summary_lines()
    assert all(len(line) <= 80 for line in lines), lines
    text = "\n".join(lines)
    assert "  rounds: 3 (10 shards in all)" in text, text
    assert "    round 2: 20 of 40 rows kept; up to 3 more shard(s)" in lines
    folded = " ".join(" ".join(lines).split())
    assert said[1] in folded
    # the rounds come after the phases' times (where "top-up round 2" took its seconds)
    assert text.index("  time:") < text.index("rounds:")


def test_one_round_says_nothing_about_rounds() -> None:
    clock = Clock()
    with ProgressView(enabled=False, clock=clock) as view:
        run_with_rounds(view, clock, [])
    assert not any("rounds" in line for line in view.summary_lines())


def test_rounds_are_counted_from_the_phases_when_no_message_was_seen() -> None:
    """A view that subscribed late (or a resumed run) still counts the rounds that ran."""
    snap = Snapshot(name="j", version="v", uri="u", shards_total=7)
    phases = {"generating": 2.0, "top-up round 2": 1.0, "top-up round 3": 0.5}
    lines = summary_lines(snap, phases)
    assert lines[-1] == "  rounds: 3 (7 shards in all)", lines
    assert summary_lines(Snapshot(name="j", version="v", uri="u"), phases)[-1] == "  rounds: 3"
