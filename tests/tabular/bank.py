"""A bank database built in code (after the Czech "Berka" bank schema), 9 tables, depth 4,
two tables with two parents and one lookup table:

    districts -> clients -> accounts -> dispositions -> cards
                         \\          \\-> loans, orders, transactions <- merchants
    districts ----------------> accounts            (accounts: clients and districts)
    clients ------------------------------> dispositions   (accounts and clients)

Every column depends on its parents the way a bank's would: rich districts have more
clients, an account's branch is mostly its owner's district, a weekly account makes more
transactions of smaller amounts and bigger loans, a disponent is a client of the owner's
district, gold cards and premium clients come from rich districts, the account fee follows
the branch's salaries, travel merchants take big amounts. Import it from the tests
(``from .bank import ...``) or, as a plain module, from bench/relational.py;
``python tests/tabular/bank.py DIR`` writes the CSVs.
No dependency beyond numpy and pandas, no I/O at import.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REGIONS = ["Prague", "central", "south", "west", "north", "east", "south-east", "north-east"]

#: (parent, child, foreign key, context) in spec order
RELATIONSHIPS: list[tuple[str, str, str, bool | None]] = [
    ("districts", "clients", "district_id", None),
    ("clients", "accounts", "client_id", None),  # the nearest parent: the context
    ("districts", "accounts", "district_id", None),  # matched: the branch's district
    ("accounts", "dispositions", "account_id", None),  # the nearest parent: the context
    ("clients", "dispositions", "client_id", None),  # matched: who may use the account
    ("dispositions", "cards", "disp_id", None),
    ("accounts", "loans", "account_id", None),
    ("accounts", "orders", "account_id", None),
    ("accounts", "transactions", "account_id", True),  # two unrelated parents: say which
    ("merchants", "transactions", "merchant_id", None),  # a lookup table, generated whole
]

PRIMARY_KEYS = {
    "districts": "district_id",
    "clients": "client_id",
    "accounts": "account_id",
    "dispositions": "disp_id",
    "cards": "card_id",
    "loans": "loan_id",
    "orders": "order_id",
    "transactions": "trans_id",
    "merchants": "merchant_id",
}


def _ids(n: int, start: int = 1) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.int64)


def _people(rng: np.random.Generator, districts: int) -> dict[str, pd.DataFrame]:
    population = np.round(rng.lognormal(11, 0.6, districts)).astype(np.int64)
    salary = np.round(7000 + 3000 * (population / population.max()) + rng.normal(0, 600, districts))
    d = pd.DataFrame(
        {
            "district_id": _ids(districts),
            "region": rng.choice(REGIONS, districts),
            "population": population,
            "avg_salary": salary,
            "unemployment": np.round(rng.gamma(4, 0.8, districts) - salary / 10000, 2).clip(0.2),
        }
    )
    per = rng.poisson(4 + 10 * population / population.max())
    home = np.repeat(d["district_id"].to_numpy(), per)
    c = pd.DataFrame(
        {
            "client_id": _ids(len(home)),
            "district_id": home,
            "birth_year": rng.integers(1930, 2000, len(home)),
            "gender": rng.choice(["F", "M"], len(home)),
        }
    )
    wealth = c["district_id"].map(d.set_index("district_id")["avg_salary"].rank(pct=True))
    premium = rng.random(len(c)) < 0.05 + 0.7 * wealth.to_numpy() ** 2
    c["segment"] = np.where(premium, "premium", "retail")
    return {"districts": d, "clients": c}


def _accounts(rng: np.random.Generator, d: pd.DataFrame, c: pd.DataFrame) -> pd.DataFrame:
    young = (c["birth_year"] > 1975).to_numpy()
    per = rng.choice([0, 1, 2], len(c), p=[0.1, 0.75, 0.15]) + young * rng.integers(0, 2, len(c))
    owner = np.repeat(np.arange(len(c)), per)
    same = rng.random(len(owner)) < 0.8  # the branch is mostly the owner's own district
    weights = d["population"].to_numpy() / d["population"].sum()
    branch = np.where(
        same,
        c["district_id"].to_numpy()[owner],
        rng.choice(d["district_id"].to_numpy(), len(owner), p=weights),
    )
    out = pd.DataFrame(
        {
            "account_id": _ids(len(owner)),
            "client_id": c["client_id"].to_numpy()[owner],
            "district_id": branch,
            "frequency": rng.choice(
                ["monthly", "weekly", "after_tx"], len(owner), p=[0.7, 0.2, 0.1]
            ),
            "opened_year": np.clip(
                np.round(1993 + (c["birth_year"].to_numpy()[owner] - 1930) / 14)
                + rng.integers(-1, 2, len(owner)),
                1993,
                1998,
            ).astype(np.int64),
        }
    )
    salary = pd.Series(branch).map(d.set_index("district_id")["avg_salary"]).to_numpy()
    out["fee"] = np.round(salary / 400 + rng.normal(0, 0.8, len(owner)), 1)
    return out


def _dispositions(rng: np.random.Generator, a: pd.DataFrame, c: pd.DataFrame) -> pd.DataFrame:
    second = rng.random(len(a)) < 0.2
    account = np.concatenate([a["account_id"].to_numpy(), a["account_id"].to_numpy()[second]])
    owner = a["client_id"].to_numpy()
    by_district = c.groupby("district_id")["client_id"].apply(np.asarray).to_dict()
    home = c.set_index("client_id")["district_id"]
    user = [rng.choice(by_district[home[o]]) for o in owner[second]]  # same district
    return pd.DataFrame(
        {
            "disp_id": _ids(len(account)),
            "account_id": account,
            "client_id": np.concatenate([owner, np.asarray(user, dtype=np.int64)]),
            "type": ["OWNER"] * len(a) + ["DISPONENT"] * int(second.sum()),
        }
    )


def _money(rng: np.random.Generator, a: pd.DataFrame, d: pd.DataFrame) -> dict[str, pd.DataFrame]:
    salary = a["district_id"].map(d.set_index("district_id")["avg_salary"]).to_numpy()
    weekly = np.where(a["frequency"].to_numpy() == "weekly", 3.0, 1.0)
    has_loan = rng.random(len(a)) < 0.18
    loans = pd.DataFrame(
        {
            "loan_id": _ids(int(has_loan.sum())),
            "account_id": a["account_id"].to_numpy()[has_loan],
            "amount": np.round(
                salary[has_loan] * weekly[has_loan] * rng.uniform(5, 15, int(has_loan.sum())), -2
            ),
            "duration": rng.choice([12, 24, 36, 48, 60], int(has_loan.sum())),
            "status": rng.choice(["A", "B", "C", "D"], int(has_loan.sum()), p=[0.5, 0.1, 0.3, 0.1]),
        }
    )
    per = rng.poisson(1.2, len(a))
    acc = np.repeat(np.arange(len(a)), per)
    orders = pd.DataFrame(
        {
            "order_id": _ids(len(acc)),
            "account_id": a["account_id"].to_numpy()[acc],
            "amount": np.round(rng.lognormal(7.5, 0.8, len(acc)) * salary[acc] / 9000, 1),
            "k_symbol": rng.choice(["household", "insurance", "leasing", "loan"], len(acc)),
        }
    )
    return {"loans": loans, "orders": orders}


def _transactions(rng: np.random.Generator, a: pd.DataFrame, m: pd.DataFrame) -> pd.DataFrame:
    rate = a["frequency"].map({"monthly": 3.0, "weekly": 9.0, "after_tx": 5.0}).to_numpy()
    per = rng.poisson(rate)
    acc = np.repeat(np.arange(len(a)), per)
    kind = rng.choice(["credit", "withdrawal"], len(acc), p=[0.4, 0.6])
    big = m["category"].to_numpy() == "travel"
    weights = np.where(big, 0.5, 1.5)
    shop = rng.choice(len(m), len(acc), p=weights / weights.sum())
    small = np.repeat((a["frequency"] == "weekly").to_numpy(), per)
    amount = rng.lognormal(np.where(kind == "credit", 8.0, 6.5) + 1.5 * big[shop] - small, 0.5)
    return pd.DataFrame(
        {
            "trans_id": _ids(len(acc)),
            "account_id": a["account_id"].to_numpy()[acc],
            "merchant_id": m["merchant_id"].to_numpy()[shop],
            "type": kind,
            "amount": np.round(amount, 1),
            "balance": np.round(rng.lognormal(10, 0.6, len(acc)), 1),
        }
    )


def bank_tables(seed: int = 0, districts: int = 30) -> dict[str, pd.DataFrame]:
    """The nine tables (about 3,500 rows with 30 districts), keys as integers."""
    rng = np.random.default_rng(seed)
    out = _people(rng, districts)
    d, c = out["districts"], out["clients"]
    a = _accounts(rng, d, c)
    disp = _dispositions(rng, a, c)
    owners = disp[disp["type"] == "OWNER"]
    rich = (
        owners["account_id"]
        .map(a.set_index("account_id")["district_id"])
        .map(d.set_index("district_id")["avg_salary"])
    )
    has_card = rng.random(len(owners)) < 0.3
    cards = pd.DataFrame(
        {
            "card_id": _ids(int(has_card.sum())),
            "disp_id": owners["disp_id"].to_numpy()[has_card],
            "type": np.where(rich.to_numpy()[has_card] > rich.median(), "gold", "classic"),
            "issued_year": rng.integers(1994, 1999, int(has_card.sum())),
        }
    )
    m = pd.DataFrame(
        {
            "merchant_id": _ids(30, start=500),
            "category": rng.choice(["grocery", "fuel", "travel", "online"], 30),
        }
    )
    tables = {
        "districts": d,
        "clients": c,
        "accounts": a,
        "dispositions": disp,
        "cards": cards,
        **_money(rng, a, d),
        "transactions": _transactions(rng, a, m),
        "merchants": m,
    }
    return {name: tables[name] for name in PRIMARY_KEYS}


def write_bank(
    folder: Path, tables: dict[str, pd.DataFrame] | None = None, ext: str = "parquet"
) -> dict[str, str]:
    """The tables as files in ``folder`` (parquet or csv); table name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in (tables or bank_tables()).items():
        path = folder / f"{name}.{ext}"
        frame.to_parquet(path, index=False) if ext == "parquet" else frame.to_csv(path, index=False)
        paths[name] = str(path)
    return paths


def bank_generator(paths: dict[str, str]) -> dict[str, Any]:
    """The relational generator section for the tables at ``paths``."""
    return {
        "kind": "relational",
        "tables": {
            name: {"source": paths[name], "primary_key": key} for name, key in PRIMARY_KEYS.items()
        },
        "relationships": [
            {"parent": p, "child": c, "foreign_key": k, **({} if ctx is None else {"context": ctx})}
            for p, c, k, ctx in RELATIONSHIPS
        ],
    }


def bank_spec(paths: dict[str, str], output: str, **extra: Any) -> dict[str, Any]:
    """A job over the bank: ``rows`` districts, each with its clients and everything below."""
    return {
        "name": "bank",
        "modality": "tabular",
        "rows": 30,
        "shard_rows": 10,
        "seed": 5,
        "output": output,
        "metrics": {"enabled": False},
        "generator": bank_generator(paths),
        **extra,
    }


if __name__ == "__main__":
    for name, path in write_bank(Path(sys.argv[1]), ext="csv").items():
        print(name, path)
