"""Class quotas (class balancing): what is missing per class, per-class trimming, top-up
shards that carry their class, and one spelling of a class value however it was read."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from synthfactory.dataset import ShardEntry, parquet
from synthfactory.spec import load_spec
from synthfactory.storage import LocalStore
from synthfactory_flows.generate import shortfall, top_up_plan
from synthfactory_flows.select import ClassLabels, Selection
from synthfactory_workers.contract import Quotas, ShardTask, quota_key


def _entry(store: LocalStore, index: int, labels: list[object]) -> ShardEntry:
    blob = parquet.encode(pa.table({"label": labels, "x": list(range(len(labels)))}))
    path = f"data/{index}.parquet"
    store.put_bytes(path, blob)
    return ShardEntry(
        index=index, row_start=0, seed=0, rows=len(labels), path=path, bytes=len(blob), sha256=""
    )


def test_quota_key_spells_a_value_once() -> None:
    assert quota_key(np.int64(3)) == quota_key(3) == "3"
    assert quota_key(np.bool_(True)) == quota_key(True) == "true"
    assert quota_key(float("nan")) == quota_key(pd.NA) == quota_key(None) == "null"
    assert json.loads(quota_key("fraud")) == "fraud"


def test_missing_and_trim_per_class(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    entries = [_entry(store, 0, ["a", "a", "b", None]), _entry(store, 1, ["b", "b", "a", "c"])]
    quotas = Quotas("label", {quota_key("a"): 2, quota_key("b"): 3, quota_key(None): 1})
    classes = ClassLabels(store, quotas)
    keep = {0: np.array([True, False, True, True]), 1: np.array([True, True, True, True])}
    selection = Selection(keep, accepted=7, produced=8)
    assert classes.missing(selection, entries) == {}
    keep[0][2] = False  # one "b" dropped by dedup: b is short by one
    assert classes.missing(Selection(keep, 6, 8), entries) == {quota_key("b"): 1}
    final = classes.trim(Selection(keep, 6, 8), entries)
    # earliest rows first; "c" has no quota; the surplus "a" in shard 1 goes
    assert final[0].tolist() == [True, False, False, True]
    assert final[1].tolist() == [True, True, True, False]


def test_top_up_shards_carry_their_class(tmp_path: Path) -> None:
    job = load_spec(
        {
            "name": "q",
            "modality": "tabular",
            "rows": 100,
            "shard_rows": 30,
            "output": str(tmp_path / "o"),
            "generator": {"kind": "gaussian_copula", "source": str(tmp_path / "s.csv")},
        }
    )
    known = [ShardTask(i, 30 * i, min(30, 100 - 30 * i), i) for i in range(4)]
    selection = Selection({}, accepted=80, produced=100)
    quotas = Quotas("label", {quota_key("a"): 50, quota_key(1): 50})
    missing = {quota_key("a"): 15, quota_key(1): 5}
    extra = top_up_plan(job, known, selection, missing, quotas)
    assert [t.index for t in extra] == list(range(4, 4 + len(extra)))
    assert extra[0].row_start == 100  # after every planned row: no source rows, fresh ids
    by_class: dict[object, int] = {}
    for t in extra:
        ((column, value),) = t.conditions
        assert column == "label"
        by_class[value] = by_class.get(value, 0) + t.rows
    assert by_class[1] >= 5 / 0.8 and by_class["a"] >= 15 / 0.8  # sized by the accept rate
    assert all(b.row_start == a.row_start + a.rows for a, b in itertools.pairwise(extra))
    # no quotas: one plain top-up of the total
    plain = top_up_plan(job, known, selection, {"": 20})
    assert all(t.conditions == () for t in plain) and sum(t.rows for t in plain) >= 25
    assert shortfall(job, selection, [], None) == {"": 20}
