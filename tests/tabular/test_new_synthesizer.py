"""Adding a tabular synthesizer is one module and one registration: ``kind: shuffle`` below
(each column drawn on its own from the training rows) is a config, a ``Synthesizer`` and
its ``TabularGenerator``; registered with ``@GENERATORS.register``, specs can name it, it
passes preflight and runs the shared machinery (fit cache, ids, conditions, shards) as a
job's preview does, in this process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pydantic import Field

from synthfactory.errors import ConfigError
from synthfactory.jsonsafe import plain
from synthfactory.spec import JobSpec, load_spec
from synthfactory.spec.base import GENERATORS
from synthfactory.spec.generators.tabular import TabularConfigBase
from synthfactory_workers.tabular.base import Synthesizer
from synthfactory_workers.tabular.column_types import describe
from synthfactory_workers.tabular.generator import TabularGenerator, synthesizer_class

from .tables import PENGUINS, spec_dict

# -- the new synthesizer: what a module adding one holds ------------------------------------


class ShuffleConfig(TabularConfigBase):
    """Every column drawn independently from the training rows (no correlations kept)."""

    kind: Literal["shuffle"] = Field(
        "shuffle", description="Each column sampled on its own from the training rows."
    )


class Shuffle(Synthesizer):
    name: ClassVar[str] = "shuffle"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.columns: list[dict[str, Any]] = []
        self.values: dict[str, list[Any]] = {}

    def fit(self, df: pd.DataFrame, column_types: dict[str, str]) -> None:
        self.columns = [describe(c, df[c], column_types[c]) for c in df.columns]
        self.values = {str(c): [plain(v) for v in df[c].astype(object)] for c in df.columns}
        for col in self.columns:
            if col["type"] in ("numerical", "datetime"):
                numbers = pd.to_numeric(df[col["name"]], errors="coerce").dropna()
                col.update(min=float(numbers.min()), max=float(numbers.max()))

    def categories(self, column: dict[str, Any]) -> list[Any]:
        return sorted({v for v in self.values[column["name"]] if v is not None}, key=str)

    def _sample(self, n: int, seed: int, conditions: dict[str, Any]) -> pd.DataFrame:
        rng = np.random.default_rng([self.seed, seed])
        out = {}
        for col in self.columns:
            name, pool = col["name"], self.values[col["name"]]
            if col["type"] == "id":
                out[name] = [None] * n
            elif name in conditions:
                out[name] = [conditions[name]] * n
            else:
                out[name] = [pool[i] for i in rng.integers(0, len(pool), n)]
        return pd.DataFrame(out, columns=[c["name"] for c in self.columns])

    def save(self) -> bytes:
        return json.dumps(
            {"seed": self.seed, "columns": self.columns, "values": self.values}
        ).encode()

    @classmethod
    def load(cls, data: bytes, device: str = "cpu") -> Shuffle:
        raw = json.loads(data)
        model = cls(raw["seed"])
        model.columns, model.values = raw["columns"], raw["values"]
        return model


class ShuffleGenerator(TabularGenerator):
    synthesizer: ClassVar[type[Synthesizer]] = Shuffle

    @classmethod
    def new_model(
        cls, spec: JobSpec, types: dict[str, str], schema: pa.Schema | None = None
    ) -> Synthesizer:
        return Shuffle(spec.generator.fit_seed)


# -- the registration, undone after each test ----------------------------------------------


@pytest.fixture
def shuffle_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``@GENERATORS.register(...)`` as the new module would do at import, and the spec's
    ``generator`` union rebuilt from the registry (done once at import for the built-in
    kinds); the registry and the union are restored afterwards."""
    GENERATORS.register(f"{__name__}:ShuffleGenerator")(ShuffleConfig)
    monkeypatch.setattr(JobSpec.model_fields["generator"], "annotation", GENERATORS.union())
    JobSpec.model_rebuild(force=True)
    yield
    GENERATORS.remove("shuffle")
    monkeypatch.undo()
    JobSpec.model_rebuild(force=True)


@pytest.mark.usefixtures("shuffle_kind")
def test_a_registered_synthesizer_passes_preflight_and_runs(tmp_path: Path) -> None:
    from synthfactory_flows.preview import preview

    spec = spec_dict(PENGUINS, tmp_path / "out", "shuffle", rows=40, fit_seed=3)
    spec["shard_rows"] = 16
    spec["storage"] = {"artifacts": str(tmp_path / "artifacts")}
    assert isinstance(load_spec(spec).generator, ShuffleConfig)
    assert synthesizer_class("shuffle") is Shuffle
    first = preview(spec, n=40)
    rows = first.rows.to_pandas()
    source = pd.read_csv(PENGUINS)
    assert len(rows) == 40 and list(rows.columns) == list(source.columns)
    for column in ("species", "island", "sex"):  # every value is one the source holds
        assert set(rows[column].dropna()) <= set(source[column].dropna())
    assert rows["body_mass_g"].dropna().between(2700, 6300).all()
    again = preview(spec, n=40)  # the fit is cached and reused: the same rows
    assert again.rows.equals(first.rows)
    assert len(list((tmp_path / "artifacts").rglob("meta.json"))) == 1
    conditioned = preview(
        {**spec, "generator": {**spec["generator"], "conditions": {"island": "Dream"}}}, n=20
    )
    assert set(conditioned.rows.column("island").to_pylist()) == {"Dream"}


@pytest.mark.usefixtures("shuffle_kind")
def test_a_registered_synthesizer_gets_the_shared_preflight_errors(tmp_path: Path) -> None:
    from synthfactory_flows.preview import preview

    spec = spec_dict(PENGUINS, tmp_path / "out", "shuffle", rows=10, conditions={"island": "Mars"})
    with pytest.raises(ConfigError, match="'Mars' never occurs"):
        preview(spec, n=10)


def test_an_unregistered_kind_is_no_synthesizer() -> None:
    with pytest.raises(ConfigError, match="unknown generator 'shuffle'"):
        synthesizer_class("shuffle")
    with pytest.raises(ConfigError, match="'llm' is not a tabular synthesizer"):
        synthesizer_class("llm")
