"""Relational synthesis of a 9-table bank (tests/tabular/bank.py): tables with two parents
(one context parent, the other key matched), depth 4, a lookup table generated whole whose
keys cross shards; integrity, cardinality, lineage, resume, and a whole job read back with
DuckDB along every key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from synthfactory.errors import ConfigError
from synthfactory.metrics.tabular.relational import (
    cardinality_shape_similarity,
    referential_integrity,
)
from synthfactory.spec import load_spec
from synthfactory_workers.contract import ShardTask, generator_class

from .bank import PRIMARY_KEYS, RELATIONSHIPS, bank_spec, bank_tables, write_bank
from .tables import loaded_generator


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return write_bank(tmp_path_factory.mktemp("bank"))


def links() -> list[dict[str, Any]]:
    paths = dict.fromkeys(PRIMARY_KEYS, "unused")
    relationships: list[dict[str, Any]] = bank_spec(paths, "x")["generator"]["relationships"]
    return relationships


def preflight_error(paths: dict[str, str], relationships: list[dict[str, Any]]) -> str:
    spec = bank_spec(paths, "unused")
    spec["generator"]["relationships"] = relationships
    job = load_spec(spec)
    with pytest.raises(ConfigError) as info:
        generator_class(job).preflight(job)
    return str(info.value)


def test_context_parents_and_order(paths: dict[str, str]) -> None:
    config: Any = load_spec(bank_spec(paths, "unused")).generator
    assert config.root == "districts"
    context = {t: (r.parent if (r := config.parent_of(t)) else None) for t in config.tables}
    assert context == {
        "districts": None,
        "clients": "districts",
        "accounts": "clients",  # nearest of clients and districts (districts is above clients)
        "dispositions": "accounts",  # nearest of accounts and clients
        "cards": "dispositions",
        "loans": "accounts",
        "orders": "accounts",
        "transactions": "accounts",  # marked: accounts and merchants are unrelated
        "merchants": None,
    }
    assert [r.parent for r in config.others_of("accounts")] == ["districts"]
    assert [r.parent for r in config.others_of("transactions")] == ["merchants"]
    assert config.is_whole("merchants") and not config.is_whole("transactions")
    order = config.order()
    assert order[0] == "districts" and len(order) == 9
    for p, c, _, _ in RELATIONSHIPS:
        assert order.index(p) < order.index(c)


def test_preflight_names_the_field_and_the_fix(paths: dict[str, str]) -> None:
    rel = links()
    rel[8] = {**rel[8], "context": None}  # transactions: accounts or merchants?
    message = preflight_error(paths, rel)
    assert "table 'transactions' has several parents" in message
    assert "accounts (relationships[8]), merchants (relationships[9])" in message
    assert "set context: true" in message
    cycle = [*links(), {"parent": "cards", "child": "clients", "foreign_key": "card_id"}]
    message = preflight_error(paths, cycle)
    assert "cycle" in message and "remove one link" in message
    missing = [*links(), {"parent": "branches", "child": "accounts", "foreign_key": "branch_id"}]
    message = preflight_error(paths, missing)
    assert "generator.relationships[10].parent: unknown table 'branches'" in message
    assert "use one of generator.tables" in message
    no_key = [*links(), {"parent": "clients", "child": "loans", "foreign_key": "client_id"}]
    message = preflight_error(paths, no_key)
    assert "relationships[10].foreign_key 'client_id' (of clients -> loans)" in message
    assert "is not a column" in message and "use one of loans's columns" in message
    whole = links()
    whole[8] = {**whole[8], "context": False}
    whole[9] = {**whole[9], "context": True}  # transactions under merchants: generated whole
    message = preflight_error(paths, whole)
    assert "under the lookup table 'merchants'" in message and "references 'accounts'" in message
    alone = links()
    alone[5] = {**alone[5], "context": False}  # cards' only parent
    assert "only parent of 'cards'" in preflight_error(paths, alone)
    twice = [*links(), {"parent": "clients", "child": "accounts", "foreign_key": "client_id"}]
    assert "is already the foreign key" in preflight_error(paths, twice)


def shard_tables(gen: Any, index: int, start: int, rows: int) -> dict[str, pd.DataFrame]:
    out = gen.generate(ShardTask(index, start, rows, 700 + index))
    return {name: t.to_pandas() for name, t in out.tables.items()}


def test_shards_integrity_lineage_and_resume(paths: dict[str, str], tmp_path: Path) -> None:
    gen = loaded_generator(tmp_path, bank_spec(paths, str(tmp_path / "out")))
    shards = [shard_tables(gen, i, i * 10, 10) for i in range(3)]
    again = shard_tables(gen, 1, 10, 10)  # a re-run shard (resume) is the same shard
    for name in shards[1]:
        pd.testing.assert_frame_equal(shards[1][name], again[name])
    out = {n: pd.concat([s[n] for s in shards], ignore_index=True) for n in shards[0]}
    real = bank_tables()
    for name, key in PRIMARY_KEYS.items():
        assert out[name][key].is_unique, name
    # the lookup table: generated whole in every shard, each shard writes its slice once
    assert len(out["merchants"]) == len(real["merchants"])
    written = [set(s["merchants"]["merchant_id"]) for s in shards]
    crossing = ~shards[2]["transactions"]["merchant_id"].isin(written[2])
    assert crossing.any(), "no key of shard 2 points into another shard's merchants"
    for p, c, k, _ in RELATIONSHIPS:
        pk = PRIMARY_KEYS[p]
        assert referential_integrity(out[p][pk], out[c][k]) == 1.0, (p, c)
        shape = cardinality_shape_similarity(real[p][pk], real[c][k], out[p][pk], out[c][k])
        assert shape >= 0.75, (p, c, shape)
    # lineage: an account's branch is mostly its owner's district, as in the source
    for tables in (real, out):
        acc = tables["accounts"].merge(tables["clients"], on="client_id", suffixes=("", "_home"))
        tables["same"] = pd.DataFrame(
            {"v": [(acc["district_id"] == acc["district_id_home"]).mean()]}
        )
    assert abs(out["same"]["v"][0] - real["same"]["v"][0]) < 0.12
    assert out["same"]["v"][0] > 0.5  # 10 districts per shard: chance would be ~0.1


def bank_job(paths: dict[str, str], output: str) -> dict[str, Any]:
    gates = {f"relationships.{p}.{c}.referential_integrity": "== 1" for p, c, _, _ in RELATIONSHIPS}
    gates["quality.cardinality"] = ">= 0.8"
    return bank_spec(
        paths,
        output,
        resources={"actors": 1},
        metrics={"enabled": True, "max_rows": 20_000},
        gates=gates,
    )


@pytest.mark.slow
@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_bank_job_joins_along_every_key(
    paths: dict[str, str], tmp_path: Path, actor_killer: Any, readers_agree: Any
) -> None:
    """The whole bank as one job, its actor SIGKILLed once the first of three shards has
    committed: the retried shards regenerate whole subtrees, so every key is unique, every
    child joins its parents, and pandas, DuckDB and the manifest agree on every table."""
    import duckdb

    from synthfactory.dataset import open_dataset
    from synthfactory_flows.generate import run_job

    killed = actor_killer(tmp_path / "bank")
    result = run_job(bank_job(paths, str(tmp_path / "bank")))
    assert killed, "no actor was killed"
    assert result["status"] == "published" and result["rows"] == 30
    ds = open_dataset(result["uri"])
    assert sorted(ds.table_names) == sorted(PRIMARY_KEYS)
    assert all(g["passed"] for g in ds.manifest.gates)
    root = result["uri"]
    readers_agree(root)
    for name, pk in PRIMARY_KEYS.items():
        keys = ds.table(name).column(pk).to_pylist()
        assert len(keys) == len(set(keys)) == ds.manifest.tables[name].rows, name

    def table(name: str) -> str:
        return f"'{root}/data/{name}/*.parquet'"

    for p, c, k, _ in RELATIONSHIPS:
        pk = PRIMARY_KEYS[p]
        joined, children = duckdb.sql(
            f"select count(p.{pk}), count(*) from {table(c)} c "
            f"left join {table(p)} p on c.{k} = p.{pk}"
        ).fetchall()[0]
        assert joined == children == ds.manifest.tables[c].rows, (p, c)
    chain = duckdb.sql(
        f"select count(*) from {table('transactions')} t "
        f"join {table('accounts')} a using (account_id) "
        f"join {table('clients')} c using (client_id) "
        f"join {table('districts')} d on d.district_id = c.district_id "
        f"join {table('merchants')} m using (merchant_id)"
    ).fetchall()[0][0]
    assert chain == ds.manifest.tables["transactions"].rows
    report = json.loads((Path(root) / "metrics.json").read_text())
    for p, c, _, _ in RELATIONSHIPS:
        link = report["relationships"][p][c]
        assert link["referential_integrity"] == 1.0
        assert link["cardinality_shape_similarity"] >= 0.7, (p, c)
    for name in ("clients", "accounts", "dispositions", "orders", "transactions"):
        assert report["tables"][name]["quality"]["overall"] > 0.8, name
    assert report["quality"]["intertable_trends"] > 0.5
    # the matched key keeps its parent's trend: the account fee follows the branch's salaries
    pairs = report["relationships"]["districts"]["accounts"]["intertable_pairs"]
    assert pairs["parent.avg_salary | fee"]["score"] > 0.75
