"""Shard-by-shard metrics give the numbers the whole-table definitions give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthfactory.metrics.privacy.closeness import exact_copy_rate
from synthfactory.metrics.sampling import quotas
from synthfactory.metrics.tabular.quality import quality_report
from synthfactory.metrics.tabular.sharded import TabularSummary
from synthfactory.spec.model import MetricsConfig


def mixed(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "x": x,
            "y": 3 * x + rng.normal(size=n),
            "k": rng.integers(0, 5, n),  # ties everywhere: the KS points matter
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 400, n), "D"),
            "group": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
            "flag": rng.random(n) < 0.2,
        }
    )
    df.loc[rng.random(n) < 0.1, "y"] = np.nan
    df.loc[rng.random(n) < 0.05, "group"] = None
    return df


def sharded(real: pd.DataFrame, synthetic: pd.DataFrame, shards: int, **config: object):
    cfg = MetricsConfig(sensitive_columns=["group"], **config)  # type: ignore[arg-type]
    parts = np.array_split(np.arange(len(synthetic)), shards)
    sizes = {i: len(p) for i, p in enumerate(parts)}
    plan = TabularSummary.plan(real, list(synthetic.columns), cfg, quotas(sizes, cfg.max_rows))
    partials = [plan.partial(synthetic.iloc[p], i) for i, p in enumerate(parts)]
    return plan, plan.partial(real, -1), TabularSummary.merge(partials[::-1])


@pytest.mark.parametrize("shards", [1, 7])
def test_sharded_quality_equals_the_whole_table_definitions(shards: int) -> None:
    real, synthetic = mixed(3000, 0), mixed(5000, 1)
    synthetic["x"] = synthetic["x"] * 1.3 + 0.2  # a visible difference
    plan, real_summary, merged = sharded(real, synthetic, shards)
    got = plan.quality(real_summary, merged)
    want = quality_report(real, synthetic)
    for name in ("columns", "pairs"):
        assert got[name].keys() == want[name].keys()
        for key, value in want[name].items():
            assert got[name][key]["metric"] == value["metric"], key
            assert got[name][key]["score"] == pytest.approx(value["score"], abs=1e-9), key
    assert got["overall"] == pytest.approx(want["overall"], abs=1e-9)
    assert got["columns"]["x"]["score"] < 0.95


def test_exact_copies_representation_and_sample_over_shards() -> None:
    real = mixed(500, 0)
    synthetic = pd.concat([mixed(900, 2), real.iloc[:100]], ignore_index=True)
    plan, real_summary, merged = sharded(real, synthetic, 4, max_rows=200)
    assert merged["copies"] / merged["rows"] == pytest.approx(exact_copy_rate(real, synthetic))
    assert merged["copies"] == 100
    rep = plan.representation(real_summary, merged)["group"]
    shares = synthetic["group"].astype(str).value_counts(normalize=True)
    assert rep["synthetic_share"] == pytest.approx(shares.to_dict())
    assert len(merged["sample"]) == 200
    again = sharded(real, synthetic, 4, max_rows=200)[2]["sample"]
    assert merged["sample"].equals(again)  # seeded: the same rows every time


def test_quotas_are_proportional_and_exact() -> None:
    assert quotas({0: 10, 1: 30}, 100) == {0: 10, 1: 30}
    q = quotas({0: 100, 1: 300, 2: 1}, 40)
    assert sum(q.values()) == 40 and q[1] == 30 and q[0] == 10


def test_hash_near_duplicates_match_brute_force() -> None:
    from synthfactory.metrics.image.sharded import near_duplicates

    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, 300, dtype=np.uint64)
    flips = [np.uint64(1 << int(b)) for b in rng.integers(0, 64, 200)]
    near = np.array([base[i] ^ flips[i] ^ flips[i + 1] for i in range(100)], dtype=np.uint64)
    hashes = rng.permutation(np.concatenate([base, near, base[:20]]))
    want = [
        any(int(hashes[i] ^ hashes[j]).bit_count() <= 4 for j in range(i))
        for i in range(len(hashes))
    ]
    got = near_duplicates(hashes, 4)
    assert got.tolist() == want and sum(want) >= 120
