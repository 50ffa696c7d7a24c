"""A child with two keys to one parent (a transfer's sender and receiver accounts) gets
one report entry per key: neither relationship's scores overwrite the other's."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthfactory.metrics.tabular.relational import relational_report


def tables(orphans: int, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    accounts = pd.DataFrame({"account_id": range(40), "balance": rng.normal(100, 20, 40)})
    branches = pd.DataFrame({"branch_id": range(5), "size": rng.integers(1, 9, 5)})
    transfers = pd.DataFrame(
        {
            "transfer_id": range(200),
            "sender": rng.integers(0, 40, 200),
            "receiver": rng.integers(0, 40, 200),
            "branch_id": rng.integers(0, 5, 200),
            "amount": rng.exponential(30, 200),
        }
    )
    transfers.loc[: orphans - 1, "receiver"] = 999  # no such account
    return {"accounts": accounts, "branches": branches, "transfers": transfers}


def test_two_keys_to_one_parent_are_two_entries() -> None:
    relationships = [
        {"parent": "accounts", "child": "transfers", "foreign_key": "sender"},
        {"parent": "accounts", "child": "transfers", "foreign_key": "receiver"},
        {"parent": "branches", "child": "transfers", "foreign_key": "branch_id"},
    ]
    keys = {"accounts": "account_id", "branches": "branch_id", "transfers": "transfer_id"}
    report = relational_report(tables(0, 1), tables(20, 2), keys, relationships)
    links = report["relationships"]
    assert set(links["accounts"]) == {"transfers.sender", "transfers.receiver"}
    assert set(links["branches"]) == {"transfers"}  # one key: named by the child alone
    assert links["accounts"]["transfers.sender"]["referential_integrity"] == 1.0
    assert links["accounts"]["transfers.receiver"]["referential_integrity"] == 0.9
    assert links["branches"]["transfers"]["referential_integrity"] == 1.0


def test_declared_types_reach_each_table_and_dates_as_text_are_dates() -> None:
    """A table's ``column_types`` decide how its columns are scored (as the single-table
    report does); dates written as text and declared datetime score as dates, the same as
    the parsed column (SDMetrics parses a datetime column's strings)."""
    from synthfactory.metrics.tabular.quality import quality_report

    def opened(start: str, seed: int) -> dict[str, pd.DataFrame]:
        frame = tables(0, seed)
        days = pd.date_range(start, periods=40, freq="D")
        frame["accounts"]["opened"] = days.strftime("%Y-%m-%d")
        frame["accounts"]["tier"] = np.arange(40) % 3  # integer codes, declared numbers
        return frame

    relationships = [{"parent": "accounts", "child": "transfers", "foreign_key": "sender"}]
    keys = {"accounts": "account_id", "branches": "branch_id", "transfers": "transfer_id"}
    declared = {"accounts": {"opened": "datetime", "tier": "numerical"}}
    real, synthetic = opened("2024-01-01", 1), opened("2024-01-15", 2)
    report = relational_report(real, synthetic, keys, relationships, sdtypes=declared)
    accounts = report["tables"]["accounts"]["quality"]
    assert accounts["sdtypes"]["opened"] == "numerical"
    assert accounts["sdtypes"]["tier"] == "numerical"  # detected alone: categorical codes
    parsed = quality_report(
        real["accounts"].assign(opened=pd.to_datetime(real["accounts"]["opened"])),
        synthetic["accounts"].assign(opened=pd.to_datetime(synthetic["accounts"]["opened"])),
    )
    assert accounts["columns"]["opened"] == parsed["columns"]["opened"]
    assert 0 < accounts["columns"]["opened"]["score"] < 1
    undeclared = relational_report(real, synthetic, keys, relationships)
    assert undeclared["tables"]["accounts"]["quality"]["sdtypes"]["tier"] == "categorical"
