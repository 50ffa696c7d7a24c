"""Deterministic shard planning: shard i always covers the same rows with the same seed."""

from __future__ import annotations

from typing import Any

import numpy as np

from synthfactory.errors import SpecError
from synthfactory.spec import JobSpec
from synthfactory.spec.model import shard_count_problem
from synthfactory_workers.contract import ShardTask

SEED_DERIVATION = "numpy.random.SeedSequence(seed, spawn_key=(shard_index,)).generate_state(1, uint64)[0] & (2**63 - 1)"  # noqa: E501


def shard_seed(master: int, index: int) -> int:
    state = np.random.SeedSequence(master, spawn_key=(index,)).generate_state(1, np.uint64)[0]
    return int(state) & (2**63 - 1)


def plan_shards(
    spec: JobSpec,
    *,
    start_index: int = 0,
    rows: int | None = None,
    row_start: int = 0,
    conditions: tuple[tuple[str, Any], ...] = (),
) -> list[ShardTask]:
    """Shards for ``rows`` rows (default: the spec's), numbered from ``start_index``.

    Top-up rounds plan more shards with later indices, so their seeds never repeat; a
    class short of its quota gets shards whose rows all take that class (``conditions``).
    """
    total = spec.target_rows if rows is None else rows
    problem = shard_count_problem(total, spec.shard_rows)
    if problem:
        raise SpecError(problem, fix="raise shard_rows")
    tasks = []
    for offset in range(0, total, spec.shard_rows):
        index = start_index + offset // spec.shard_rows
        size = min(spec.shard_rows, total - offset)
        tasks.append(
            ShardTask(index, row_start + offset, size, shard_seed(spec.seed, index), conditions)
        )
    return tasks
