"""The holdout: real rows split off before a synthesizer is fitted, so that privacy and
utility metrics can compare synthetic rows with rows the model never saw.

One function decides the split, ``split``; the fit (``synthfactory_workers.tabular``) and
the metrics (``evaluators.tabular``) both call it through ``for_job``, on the same table
read the same way, so they agree row for row.

- fraction: ``metrics.holdout``; unset ("auto") it is ``AUTO_FRACTION`` when the table has
  at least ``AUTO_MIN_ROWS`` rows, else 0 (no holdout: privacy and utility are then
  reported not applicable).
- seeded by ``metrics.seed``: one uniform key per row; the rows with the smallest keys are
  held out (within each stratum when stratified).
- stratified by ``metrics.target_column`` when set, else by ``generator.augment.balance``
  when the job balances a label (so every class the model must produce stays in training).
  Every stratum keeps at least one training row; a numeric column with more than
  ``MAX_STRATA`` values is stratified by its deciles.

A ``python`` generator has no source the platform can split before its "fit": for such
jobs the split is made on ``metrics.reference``, and a custom generator that learns from
real rows must learn from ``for_job(reference, job).train`` only (as
``synthfactory_workers.demo:Memoriser`` does) for the holdout to be one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.spec.model import MetricsConfig

AUTO_FRACTION = 0.2
AUTO_MIN_ROWS = 50
MAX_STRATA = 20


def resolve_fraction(holdout: float | None, rows: int) -> float:
    """``metrics.holdout`` as a fraction: None means AUTO_FRACTION from AUTO_MIN_ROWS rows."""
    if holdout is None:
        return AUTO_FRACTION if rows >= AUTO_MIN_ROWS else 0.0
    return float(holdout)


def _strata(values: pd.Series) -> np.ndarray:
    import pandas as pd

    from synthfactory.metrics.tabular.sdtypes import NUMERIC, kind

    if kind(values) == NUMERIC and values.nunique() > MAX_STRATA:
        ranks = values.rank(method="first")
        bins = pd.qcut(ranks, 10, labels=False)
        return bins.fillna(-1).astype(int).astype(str).to_numpy()
    return values.astype(object).where(values.notna(), "<null>").astype(str).to_numpy()


def split(
    df: pd.DataFrame, fraction: float, seed: int, stratify: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(train positions, holdout positions), both sorted, of ``df``'s rows.

    Deterministic in (row count, fraction, seed, the stratify column's values). About
    ``fraction`` of each stratum is held out (``round(fraction * size)``, leaving at least
    one row of every stratum in training). A ``stratify`` column not in ``df`` is ignored."""
    n = len(df)
    if not 0 <= fraction < 1:
        raise ValueError(f"holdout fraction must be in [0, 1), not {fraction}")
    everything = np.arange(n)
    if fraction == 0 or n < 2:
        return everything, everything[:0]
    keys = np.random.default_rng(seed).random(n)
    if stratify is not None and stratify in df.columns:
        groups = _strata(df[stratify].reset_index(drop=True))
    else:
        groups = np.zeros(n, dtype=np.int64)
    held = np.zeros(n, dtype=bool)
    for group in np.unique(groups):
        members = everything[groups == group]
        take = min(round(fraction * len(members)), len(members) - 1)
        if take > 0:
            held[members[np.argsort(keys[members], kind="stable")[:take]]] = True
    return everything[~held], everything[held]


def stratify_column(job: Any) -> str | None:
    """``metrics.target_column``, else the balanced label of ``generator.augment``."""
    if job.metrics.target_column:
        return str(job.metrics.target_column)
    from synthfactory.spec.generators.tabular import TabularConfigBase

    generator = job.generator
    augment = generator.augment if isinstance(generator, TabularConfigBase) else None
    return str(augment.balance) if augment is not None else None


def settings(job: Any) -> dict[str, Any]:
    """What decides a job's split besides the table: part of fitted-model cache keys and of
    the data's content hash (``metrics`` is otherwise left out of it)."""
    return {
        "fraction": job.metrics.holdout,  # None: auto, decided by the table's row count
        "seed": job.metrics.seed,
        "stratify": stratify_column(job),
    }


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    holdout: np.ndarray
    fraction: float
    seed: int
    stratified_by: str | None

    @property
    def enabled(self) -> bool:
        return len(self.holdout) > 0

    def info(self) -> dict[str, Any]:
        return {
            "train": len(self.train),
            "holdout": len(self.holdout),
            "fraction": self.fraction,
            "seed": self.seed,
            "stratified_by": self.stratified_by,
        }

    def parts(self, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        return df.iloc[self.train], df.iloc[self.holdout]


def for_config(df: pd.DataFrame, config: MetricsConfig, stratify: str | None) -> Split:
    fraction = resolve_fraction(config.holdout, len(df))
    column = stratify if stratify is not None and stratify in df.columns else None
    train, holdout = split(df, fraction, config.seed, column)
    return Split(train, holdout, fraction, config.seed, column)


def for_job(df: pd.DataFrame, job: Any) -> Split:
    """The job's split of ``df`` (its source, or its reference table)."""
    return for_config(df, job.metrics, stratify_column(job))


def off_reason(split: Split, rows: int) -> str:
    """Why a split holds nothing out (for the report)."""
    if split.fraction == 0 and rows < AUTO_MIN_ROWS:
        return (
            f"no holdout: the reference has {rows} rows (< {AUTO_MIN_ROWS}, so metrics.holdout "
            "defaults to 0); every real row was available to training"
        )
    return "no holdout (metrics.holdout is 0): every real row was available to training"
