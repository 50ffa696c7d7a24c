"""Builders shared by the spine tests."""

from __future__ import annotations

from typing import Any

SEQUENCE = "synthfactory_workers.demo:SequenceGenerator"
T0 = 1_000_000.0
"""Where a progress test's ``Clock`` starts."""


class Clock:
    """A settable clock for progress tests: starts at ``T0``, moves only by ``tick``."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def sequence_spec(
    output: str, rows: int = 1000, shard_rows: int = 250, actors: int = 2, **options: Any
) -> dict[str, Any]:
    return {
        "name": "seq",
        "modality": "tabular",
        "generator": {"kind": "python", "factory": SEQUENCE, "options": options},
        "rows": rows,
        "shard_rows": shard_rows,
        "seed": 11,
        "output": output,
        "resources": {"actors": actors, "num_cpus": 0.5},
        "retries": {"shard_retries": 3, "retry_delay_seconds": 0.2},
    }
