"""Whole-dataset dedup and topping up to an accepted-row target."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from synthfactory.dataset import open_dataset
from synthfactory_flows.generate import run_job

from .helpers import sequence_spec

pytestmark = pytest.mark.usefixtures("ray_local", "prefect_server")


def test_duplicates_across_shards_are_dropped_and_topped_up(
    tmp_path: Path, readers_agree: Callable[[str], None]
) -> None:
    spec = sequence_spec(str(tmp_path / "out"), rows=1000, shard_rows=250, duplicate_every=10)
    run_job(spec)
    ds = open_dataset(str(tmp_path / "out"))
    readers_agree(ds.uri)  # the shards dedup rewrote are out of data/
    ids = np.asarray(ds.to_arrow()["id"].to_pylist())
    assert len(ids) == ds.manifest.rows == 1000 and ds.manifest.target_met
    planted = ids[(ids % 10 == 0) & (ids > 0)]
    assert len(planted) == 0, "a planted duplicate survived"
    assert 250 not in ids and 500 not in ids, "cross-shard duplicates need the global pass"
    assert len(np.unique(ids)) == 1000
    assert ds.manifest.stats["dropped_exact_duplicate"] >= 99
    assert ds.manifest.stats["top_up_rounds"] >= 1
    assert len(ds.manifest.shards) > 4
    rejected = [
        pq.read_table(Path(ds.uri) / s.rejected_path) for s in ds.manifest.shards if s.rejected_path
    ]
    reasons = {r for t in rejected for r in t["reason"].to_pylist()}
    assert reasons == {"duplicate_across_dataset"}
    assert "__exact" not in ds.to_arrow().column_names


def test_filtered_rows_are_replaced_until_the_target_is_met(
    tmp_path: Path, readers_agree: Callable[[str], None]
) -> None:
    spec = sequence_spec(str(tmp_path / "out"), rows=800, shard_rows=200, reject_every=4)
    result = run_job(spec)
    ds = open_dataset(result["uri"])
    readers_agree(ds.uri)  # the top-up's surplus, trimmed, is out of data/
    ids = np.asarray(ds.to_arrow()["id"].to_pylist())
    assert len(ids) == 800 and not (ids % 4 == 0).any()
    assert ds.manifest.target_met
    assert ds.manifest.rejected_rows >= 200


def test_spent_budget_publishes_what_there_is_and_says_so(
    tmp_path: Path, readers_agree: Callable[[str], None]
) -> None:
    spec = sequence_spec(str(tmp_path / "out"), rows=400, shard_rows=100, reject_every=2)
    spec["top_up_rounds"] = 0
    result = run_job(spec)
    ds = open_dataset(result["uri"])
    assert ds.manifest.rows == 200 and not ds.manifest.target_met
    readers_agree(ds.uri)
    assert ds.manifest.target_rows == 400
    assert result["rows"] == 200


def test_a_top_up_round_stops_scheduling_once_it_kept_enough(
    tmp_path: Path, readers_agree: Callable[[str], None]
) -> None:
    """Round 2 plans for the missing rows with a 20 % margin; once the shards that finished
    kept what was missing, it schedules no more (only those already queued run)."""
    spec = sequence_spec(str(tmp_path / "out"), rows=200, shard_rows=10, reject_every=2)
    spec["resources"]["actors"] = 1
    ds = open_dataset(run_job(spec)["uri"])
    assert ds.manifest.rows == 200 and ds.manifest.target_met
    readers_agree(ds.uri)
    # round 1: 20 shards of 10 keep 5 each (100); round 2 plans ceil(100 / 0.5 * 1.2) + 1
    # = 241 rows (25 shards, 121 kept rows) but needs 20 shards: at most 2 more were queued
    # when it had enough. rows_generated counts the rows the shards kept.
    kept = ds.manifest.stats["rows_generated"]
    assert 200 <= kept <= 210, kept
    assert ds.manifest.stats["top_up_rounds"] == 1
