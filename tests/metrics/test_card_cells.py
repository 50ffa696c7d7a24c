"""A card's sample rows show a missing value as ``(null)`` (as its plots label it), never as
``nan``, ``None`` or ``<NA>``: a value for nothing. Rendered in-process from a manifest."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from synthfactory.dataset.manifest import ShardEntry
from synthfactory.metrics.card import missing, render

from .manifests import manifest

#: what pandas or Python print for nothing, as a whole cell or a whole list value
NOTHING = re.compile(r"\| (nan|NaN|None|<NA>|NaT) (?=\|)|`: (nan|NaN|None|<NA>|NaT)$", re.M)


def with_gaps() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "island": pd.Series(["Dream", None, pd.NA], dtype="string"),
            "sex": pd.Series(["male", None, np.nan], dtype=object),
            "mass": [3750.0, np.nan, 3800.0],
            "seen": pd.Series([1, None, 2], dtype="Int64"),
            "day": pd.to_datetime(["2024-01-02", None, "2024-01-03"]),
        }
    )


def shard(index: int) -> ShardEntry:
    return ShardEntry(
        index=index, row_start=3 * index, seed=0, rows=3, path=f"data/{index}.parquet",
        bytes=1, sha256="0" * 64,
    )  # fmt: skip


def test_missing_is_one_scalar_holding_nothing() -> None:
    for nothing in (None, np.nan, float("nan"), pd.NA, pd.NaT, np.float32("nan")):
        assert missing(nothing), nothing
    for something in ("nan", "None", 0, 0.0, False, "", [None], np.array([np.nan]), {"a": None}):
        assert not missing(something), something


def test_a_tables_sample_shows_null_for_nothing() -> None:
    text = render(manifest(shards=[shard(0)]), None, with_gaps(), [])
    sample = text.split("## Sample rows", 1)[1]
    assert not NOTHING.search(sample), sample
    assert sample.count("(null)") == 7, sample  # the middle row: five gaps; the last: two
    assert "| Dream | male | 3750.0 | 1 |" in sample
    assert "- rows: 3 in 1 Parquet shard (" in text  # one shard, not "1 Parquet shards"
    two = render(manifest(shards=[shard(0), shard(1)], rows=6), None, with_gaps(), [])
    assert "- rows: 6 in 2 Parquet shards (" in two


def test_every_tables_sample_shows_null_for_nothing() -> None:
    frames = {"islands": with_gaps(), "colonies": with_gaps()[["sex", "seen"]]}
    text = render(manifest(), None, pd.DataFrame(), [], tables=frames)
    sample = text.split("## Sample rows", 1)[1]
    assert "### `islands`" in sample and "### `colonies`" in sample
    assert not NOTHING.search(sample), sample
    assert sample.count("(null)") == 7 + 3, sample


def test_a_pipelines_row_blocks_show_null_for_nothing() -> None:
    spec = {
        "generator": {
            "kind": "pipeline",
            "columns": [
                {"name": "topic", "kind": "category", "values": ["a", "b"]},
                {"name": "answer", "kind": "llm_text", "prompt": "About {{ topic }}."},
            ],
        }
    }
    sample = pd.DataFrame({"topic": ["a", None], "answer": [None, "fine"]})
    text = render(manifest(modality="text", spec=spec), None, sample, [])
    blocks = text.split("## Sample rows", 1)[1]
    assert "- `answer`: (null)" in blocks and "- `topic`: (null)" in blocks, blocks
    assert "- `answer`: fine" in blocks
    assert not NOTHING.search(blocks), blocks
