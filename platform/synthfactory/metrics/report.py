"""The metrics report as a document, for any modality: flattened to (name, number) rows,
as JSON and as an Arrow table (metrics.json and metrics.parquet beside the data), and merged
over an earlier report."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


def flatten(report: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in report.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            rows.extend(flatten(value, name))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append((name, value))
    return rows


def to_arrow(report: dict[str, Any]) -> pa.Table:
    import pyarrow as pa

    rows = flatten(report)
    return pa.table(
        {
            "metric": [r[0] for r in rows],
            "value": pa.array([float(r[1]) for r in rows], pa.float64()),
        }
    )


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True)


def merge(earlier: dict[str, Any], newer: dict[str, Any]) -> dict[str, Any]:
    """``newer`` over ``earlier``, part by part: the newer value wins, except that what the
    newer run did not compute keeps the earlier result. So a value it reports as None, or a
    section it reports not applicable (``{"not_applicable": why}``, e.g. utility without a
    target column) where the earlier one holds numbers, leaves the earlier numbers in place;
    parts only the earlier report has are kept. A ``not_applicable`` note stays only where
    the merged part holds no earlier numbers."""
    out: dict[str, Any] = {k: v for k, v in earlier.items() if k != "not_applicable"}
    for key, value in newer.items():
        if key == "not_applicable":
            continue
        old = earlier.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            out[key] = merge(old, value)
        elif not _not_computed(value) or old is None:
            out[key] = value
    if "not_applicable" in newer and not (
        _has_numbers(earlier) and "not_applicable" not in earlier
    ):
        out["not_applicable"] = newer["not_applicable"]
    return out


def _not_computed(value: Any) -> bool:
    return value is None or (isinstance(value, dict) and "not_applicable" in value)


def _has_numbers(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_numbers(v) for k, v in value.items() if k != "not_applicable")
    return isinstance(value, int | float) and not isinstance(value, bool)
