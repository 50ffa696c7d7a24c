"""Tables for the tabular tests: a mixed-type table with missing values, the same with
personal data, a writer that puts a table where a spec can read it, and spec helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
PENGUINS = ROOT / "examples" / "data" / "penguins.csv"

FIRST = ["Alice", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas"]
LAST = ["Moreau", "Okafor", "Lindqvist", "Tanaka", "Silva", "Novak", "Haddad", "Kowalski"]
STREETS = ["Maple Street", "Oak Avenue", "Harbor Road", "Elm Lane", "Hill Drive"]


def mixed_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Numbers (correlated, with nulls), counts, a category (with nulls), booleans, dates."""
    rng = np.random.default_rng(seed)
    x = rng.normal(50, 10, n)
    df = pd.DataFrame(
        {
            "customer_id": np.arange(1000, 1000 + n),
            "amount": np.round(x * 3 + rng.normal(0, 5, n), 2),
            "score": x,
            "count": rng.poisson(4, n),
            "plan": rng.choice(["basic", "pro", "team"], n, p=[0.6, 0.3, 0.1]),
            "active": rng.random(n) < 0.7,
            "signup": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D"),
        }
    )
    df.loc[rng.random(n) < 0.15, "score"] = np.nan
    df.loc[rng.random(n) < 0.1, "plan"] = None
    return df


def assert_like_mixed(syn: pd.DataFrame, real: pd.DataFrame, rows: int) -> None:
    """``rows`` sampled rows of a synthesizer fitted on ``mixed_table``: its columns, ids left
    to the generator, the source's dtypes, whole days, ranges, precision and categories."""
    assert list(syn.columns) == list(real.columns) and len(syn) == rows
    assert syn["customer_id"].isna().all(), "ids are left to the generator to regenerate"
    assert syn["active"].dtype == bool
    assert pd.api.types.is_integer_dtype(syn["count"])
    assert pd.api.types.is_datetime64_any_dtype(syn["signup"])
    assert (syn["signup"] == syn["signup"].dt.normalize()).all(), "dates stay whole days"
    assert syn["amount"].between(real["amount"].min(), real["amount"].max()).all()
    assert np.allclose(syn["amount"], syn["amount"].round(2))
    assert set(syn["plan"].dropna()) <= set(real["plan"].dropna())


def people_table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A mixed table with personal data: names, emails, phones, street addresses, an id."""
    rng = np.random.default_rng(seed)
    first = rng.choice(FIRST, n)
    last = rng.choice(LAST, n)
    df = mixed_table(n, seed).drop(columns=["customer_id"])
    df.insert(0, "account_ref", [f"ACC-{i:05d}" for i in range(n)])
    df["full_name"] = [f"{a} {b}" for a, b in zip(first, last, strict=True)]
    df["contact"] = [
        f"{a.lower()}.{b.lower()}{i}@corp-mail.test"
        for i, (a, b) in enumerate(zip(first, last, strict=True))
    ]
    df["phone_number"] = [
        f"+44 20 {rng.integers(1000, 9999)} {rng.integers(1000, 9999)}" for _ in range(n)
    ]
    df["home"] = [f"{rng.integers(1, 999)} {rng.choice(STREETS)}" for _ in range(n)]
    df.loc[rng.random(n) < 0.05, "phone_number"] = None
    return df


def write(df: pd.DataFrame, folder: Path, name: str = "source.parquet") -> Path:
    """Put ``df`` where a spec can read it (Parquet, or CSV by the name's suffix)."""
    path = folder / name
    if name.endswith(".csv"):
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return path


def spec_dict(
    source: Path, output: Path, kind: str = "gaussian_copula", rows: int = 1000, **generator: Any
) -> dict[str, Any]:
    return {
        "name": "t",
        "modality": "tabular",
        "rows": rows,
        "shard_rows": 500,
        "output": str(output),
        "generator": {"kind": kind, "source": str(source), **generator},
    }


#: tiny networks and few epochs: the tests check the machinery, not the model's quality
TINY_CTGAN = {
    "epochs": 3,
    "batch_size": 100,
    "embedding_dim": 16,
    "generator_dims": [32],
    "discriminator_dims": [32],
    "pac": 5,
}
TINY_TVAE = {
    "epochs": 3,
    "batch_size": 100,
    "embedding_dim": 16,
    "compress_dims": [32],
    "decompress_dims": [32],
}


def loaded_generator(tmp_path: Path, spec: dict[str, Any]) -> Any:
    """The spec's generator as an actor builds it: preflight, fit (prepare) into
    ``tmp_path/artifacts``, then load."""
    from synthfactory.spec import load_spec
    from synthfactory.storage import LocalStore
    from synthfactory_workers.contract import GeneratorContext, generator_class

    job = load_spec(spec)
    cls = generator_class(job)
    cls.preflight(job)
    artifacts = LocalStore(tmp_path / "artifacts")
    gen = cls(job, GeneratorContext(artifacts=artifacts, prepared=cls.prepare(job, artifacts)))
    gen.load()
    return gen
