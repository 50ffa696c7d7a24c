"""The interface every tabular synthesizer shares, and conditional sampling (exact where a
synthesizer supports it, by rejection otherwise).

Synthesizers are found through the one generator registry
(``synthfactory.spec.base.GENERATORS``): a config's ``kind`` names a ``TabularGenerator``
whose ``synthesizer`` is the synthesizer class (``generator.synthesizer_class``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from synthfactory.errors import ConfigError
from synthfactory.jsonsafe import plain
from synthfactory_workers.tabular.column_types import NUMERIC_TYPES, as_float, key

if TYPE_CHECKING:
    import pandas as pd

#: candidates tried per requested row before a condition counts as unsatisfiable
MAX_TRIES_PER_ROW = 200


class Synthesizer(ABC):
    """Fit once on a table, then sample any number of rows from any seed.

    ``columns`` describes every source column after ``fit``: ``name``, ``type``
    (numerical, categorical, boolean, datetime, id, text), ``dtype`` and, for columns a
    condition may name, their ``categories`` or ``min``/``max``. Id columns are sampled as
    nulls: the caller regenerates them.
    """

    name: ClassVar[str]
    exact_conditions: ClassVar[bool] = False
    """True when ``_sample`` honours conditions itself; otherwise ``sample`` rejects."""

    columns: list[dict[str, Any]]
    history: Sequence[dict[str, float]] = ()
    """Per-epoch training losses (none for a model fitted in closed form)."""
    privacy_budget: dict[str, Any] | None = None
    """What a differentially private fit spent, per mechanism (None: not private)."""

    @abstractmethod
    def fit(self, df: pd.DataFrame, column_types: dict[str, str]) -> None: ...

    @abstractmethod
    def _sample(self, n: int, seed: int, conditions: dict[str, Any]) -> pd.DataFrame:
        """``n`` rows from ``seed``; ``conditions`` are already resolved (may be a hint)."""

    @abstractmethod
    def categories(self, column: dict[str, Any]) -> list[Any]:
        """The values a categorical-like column can take."""

    @abstractmethod
    def save(self) -> bytes: ...

    @classmethod
    @abstractmethod
    def load(cls, data: bytes, device: str = "cpu") -> Synthesizer:
        """The model ``save`` wrote, on ``device`` (ignored by CPU-only synthesizers)."""

    def column(self, name: str) -> dict[str, Any]:
        for col in self.columns:
            if col["name"] == name:
                return col
        raise ConfigError(
            f"column {name!r} is not in the fitted table",
            fix=f"use one of {[c['name'] for c in self.columns]}",
        )

    def resolve_conditions(self, conditions: dict[str, Any]) -> dict[str, Any]:
        """Conditions in the fitted columns' terms; ConfigError when one can never hold."""
        resolved: dict[str, Any] = {}
        for name, value in conditions.items():
            col = self.column(name)
            kind = col["type"]
            if kind == "id":
                raise ConfigError(
                    f"condition on id column {name!r}: ids are regenerated, never sampled",
                    fix="drop the condition or override the column's type",
                )
            if col.get("all_null"):
                raise ConfigError(f"condition on {name!r}, which is empty in the source")
            if kind in NUMERIC_TYPES:
                resolved[name] = _numeric_condition(col, value)
                continue
            options = self.categories(col)
            match = [c for c in options if key(plain(c)) == key(plain(value))] or [
                c for c in options if c is not None and str(c).lower() == str(value).lower()
            ]
            if not match:
                shown = [c for c in options if c is not None][:20]
                raise ConfigError(
                    f"condition {name}={value!r} never occurs in the source",
                    fix=f"use one of the source's values: {shown}",
                )
            resolved[name] = match[0]
        return resolved

    def sample(self, n: int, seed: int, conditions: dict[str, Any] | None = None) -> pd.DataFrame:
        """``n`` rows from ``seed``; with ``conditions`` every row has those values."""
        import pandas as pd

        resolved = self.resolve_conditions(conditions or {})
        if not resolved or self.exact_conditions:
            return self._sample(n, seed, resolved)
        kept: list[pd.DataFrame] = []
        have = tried = 0
        rate = 1.0
        for round_ in range(1_000_000):
            want = n - have
            if want <= 0:
                break
            size = int(min(max(want / max(rate, 1e-3) * 1.2 + 16, 64), 20 * n + 1000))
            batch = self._sample(size, child_seed(seed, round_), resolved)
            ok = matches(batch, resolved, self)
            tried += size
            have += int(ok.sum())
            kept.append(batch[ok])
            rate = max(have / tried, 1e-4)
            if tried > MAX_TRIES_PER_ROW * n + 10_000 and have < n:
                raise ConfigError(
                    f"{self.name} produced {have} rows matching {resolved} in {tried} "
                    f"candidates: the condition is too rare for this model to satisfy",
                    fix="condition on a categorical column, retrain with more epochs, or use "
                    "gaussian_copula, which conditions exactly",
                )
        out = pd.concat(kept, ignore_index=True).head(n).reset_index(drop=True)
        return out


def matches(df: pd.DataFrame, conditions: dict[str, Any], model: Synthesizer) -> np.ndarray:
    """Rows of ``df`` that hold every (resolved) condition."""
    ok = np.ones(len(df), dtype=bool)
    for name, value in conditions.items():
        col = model.column(name)
        series = df[name]
        if col["type"] in NUMERIC_TYPES:
            ok &= np.isclose(
                as_float(series, datetime=col["type"] == "datetime"), value, rtol=0, atol=1e-9
            )
        else:
            wanted = key(plain(value))
            ok &= np.array([key(plain(v)) == wanted for v in series.astype(object)], dtype=bool)
    return ok


def _numeric_condition(col: dict[str, Any], value: Any) -> float:
    import pandas as pd

    try:
        number = float(pd.Timestamp(value).value) if col["type"] == "datetime" else float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"condition {col['name']}={value!r} is not a {col['type']} value",
            fix="give a number (or a date for a datetime column)",
        ) from None
    if not col["min"] <= number <= col["max"]:
        raise ConfigError(
            f"condition {col['name']}={value!r} is outside the source's range "
            f"[{col['min']}, {col['max']}]",
            fix="condition on a value the source contains",
        )
    return number


def child_seed(seed: int, round_: int) -> int:
    """A 63-bit seed for round ``round_`` of sampling from ``seed``."""
    return int(np.random.SeedSequence([seed, round_, 0xC0]).generate_state(1, np.uint64)[0] >> 1)
