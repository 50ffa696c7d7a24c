"""Sampling under constraints (rejection with counts) and class balancing plans."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.errors import ConfigError
from synthfactory.jsonsafe import plain
from synthfactory_workers.tabular.base import MAX_TRIES_PER_ROW, Synthesizer, child_seed
from synthfactory_workers.tabular.column_types import key

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory_workers.tabular.constraints import Checker

Fill = Callable[["pd.DataFrame", int], None]


@dataclass
class Sampled:
    accepted: pd.DataFrame
    rejected: list[pd.DataFrame] = field(default_factory=list)
    """Rejected candidates, each with a ``reason`` column."""
    candidates: int = 0
    """Candidates drawn (surplus rows of the last round included)."""

    @property
    def rejections(self) -> int:
        return sum(len(r) for r in self.rejected)


def sample_valid(
    model: Synthesizer,
    n: int,
    seed: int,
    conditions: dict[str, Any],
    checker: Checker,
    fill: Fill,
) -> Sampled:
    """``n`` rows meeting ``conditions`` and every constraint, deterministic from ``seed``.

    Candidates are drawn in rounds sized by the acceptance rate so far; ``fill`` completes
    a batch first (fake personal data) so constraints see the final values.
    """
    import pandas as pd

    kept: list[pd.DataFrame] = []
    out = Sampled(accepted=pd.DataFrame())
    have = 0
    rate = 1.0
    round_ = 0
    while have < n:
        want = n - have
        size = want if round_ == 0 else int(min(max(want / rate * 1.1 + 8, 32), 50 * n + 1000))
        batch_seed = child_seed(seed, round_)
        batch = model.sample(size, batch_seed, conditions)
        fill(batch, batch_seed)
        if not checker.constraints:  # nothing to check: the whole batch is accepted
            kept.append(batch)
            have += len(batch)
            out.candidates += size
            break
        batch = checker.transform(batch)
        reasons = checker.check(batch)
        ok = reasons == ""
        accepted = batch[ok].head(want)
        kept.append(accepted)
        have += len(accepted)
        out.candidates += size
        if (~ok).any():
            bad = batch[~ok].copy()
            bad["reason"] = reasons[~ok]
            out.rejected.append(bad)
        rate = max(have / out.candidates, 1e-4)
        round_ += 1
        if have < n and out.candidates > MAX_TRIES_PER_ROW * n + 10_000:
            raise ConfigError(
                f"the constraints rejected {out.candidates - have} of {out.candidates} "
                f"candidates ({have} of {n} rows found)",
                fix="loosen the constraints, or check they can hold together on this data",
            )
    if len(kept) == 1:
        out.accepted = kept[0].reset_index(drop=True)
    else:
        out.accepted = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame()
    return out


def balance_plan(series: pd.Series) -> list[tuple[Any, int]]:
    """(class value, rows needed) bringing each class up to the largest one; nulls are
    not a class. Ordered by class value so every worker agrees on the layout."""
    counts = series.dropna().astype(object).map(plain).value_counts()
    if counts.empty:
        raise ConfigError("the balance column has no values", fix="balance a label column")
    top = int(counts.max())
    plan = [(plain(value), top - int(count)) for value, count in counts.items()]
    return sorted(plan, key=lambda vc: key(vc[0]))


def segments(start: int, rows: int, plan: list[tuple[Any, int]]) -> list[tuple[int, Any, int]]:
    """Split global synthetic rows [start, start + rows) by class: (class index, value,
    rows) in order. Class i owns the rows after classes 0..i-1 in the plan."""
    out = []
    bounds = np.concatenate([[0], np.cumsum([need for _, need in plan])])
    for i, (value, _) in enumerate(plan):
        lo, hi = max(start, int(bounds[i])), min(start + rows, int(bounds[i + 1]))
        if hi > lo:
            out.append((i, value, hi - lo))
    return out
