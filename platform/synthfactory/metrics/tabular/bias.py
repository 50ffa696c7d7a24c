"""Bias in tabular output: group representation in the source vs the synthetic data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def representation(
    real: pd.DataFrame, synthetic: pd.DataFrame, sensitive: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in sensitive:
        if column not in real.columns or column not in synthetic.columns:
            out[column] = {"not_applicable": f"{column!r} is not in both tables"}
            continue
        r = real[column].astype(str).value_counts(normalize=True)
        s = synthetic[column].astype(str).value_counts(normalize=True)
        groups = r.index.union(s.index)
        if len(groups) < 2:
            out[column] = {"not_applicable": "only one group"}
            continue
        change = s.reindex(groups, fill_value=0) - r.reindex(groups, fill_value=0)
        out[column] = {
            "source_share": {str(k): float(v) for k, v in r.items()},
            "synthetic_share": {str(k): float(v) for k, v in s.items()},
            "max_share_change": float(change.abs().max()),
        }
    return out
