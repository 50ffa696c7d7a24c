"""Compute the metrics report for a dataset and store it beside the data."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from synthfactory.jsonsafe import clean
from synthfactory.metrics import bias, holdout, privacy, tabular_models, tabular_quality

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from synthfactory.spec.model import MetricsConfig


def tabular_report(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    config: MetricsConfig,
    exact: dict[str, Any] | None = None,
    split: holdout.Split | None = None,
    target: str | None = None,
) -> dict[str, Any]:
    """The tabular report. ``synthetic`` is the whole table, or a sample of it when ``exact``
    holds the parts computed over every row (``quality``, ``exact_copy_rate``,
    ``representation``; see ``tabular_sharded``).

    ``split`` divides ``real`` into the rows the synthesizer trained on and the holdout it
    never saw (default: ``holdout.for_config`` stratified by the target). Quality and
    representation compare synthetic rows with every real row; privacy, detection and
    utility use train and holdout as their definitions require. ``target`` defaults to
    ``metrics.target_column``."""
    seed = config.seed
    sensitive = list(config.sensitive_columns)
    target = target or config.target_column
    real = real.reset_index(drop=True)
    split = split or holdout.for_config(real, config, target)
    train, held = split.parts(real)
    exact = exact or {
        "quality": tabular_quality.quality_report(
            real, synthetic, max_pairs=config.max_pairs, seed=seed
        ),
        "exact_copy_rate": privacy.exact_copy_rate(train, synthetic),
        "representation": bias.representation(real, synthetic, sensitive),
    }
    off = None if split.enabled else holdout.off_reason(split, len(real))
    if off is None:
        privacy_part = privacy.privacy_report(
            train, held, synthetic, sample=config.privacy_sample, seed=seed
        )
    else:
        privacy_part = {"not_applicable": off}
    privacy_part["exact_copy_rate"] = exact["exact_copy_rate"]
    privacy_part["split"] = split.info()
    report: dict[str, Any] = {
        "modality": "tabular",
        "quality": exact["quality"],
        "privacy": privacy_part,
    }
    detection = tabular_models.detection_score(train, synthetic, seed)
    report["quality"]["detection"] = {**detection, "compared": "synthetic vs real-train"}
    bias_part: dict[str, Any] = {"representation": exact["representation"]}
    changes = [
        v["max_share_change"]
        for v in bias_part["representation"].values()
        if "max_share_change" in v
    ]
    if changes:
        bias_part["max_share_change"] = max(changes)
    if target and off is None:
        utility = tabular_models.tstr(train, held, synthetic, target, sensitive, seed)
        utility["target"] = target
        utility["augmentation_lift"] = tabular_models.augmentation_lift(
            train, held, synthetic, target, seed
        )
        report["utility"] = utility
        fair = utility.get("fairness", {})
        bias_part["fairness"] = fair
        for key in ("demographic_parity_difference", "equalized_odds_difference"):
            values = [v[key] for v in fair.values() if key in v]
            if values:
                bias_part[key] = max(values)
        ratios = [
            v["demographic_parity_ratio"] for v in fair.values() if "demographic_parity_ratio" in v
        ]
        if ratios:
            bias_part["demographic_parity_ratio"] = min(ratios)
    elif target:
        report["utility"] = {"not_applicable": off}
    else:
        report["utility"] = {"not_applicable": "no metrics.target_column declared"}
    if not sensitive:
        bias_part["not_applicable"] = "no metrics.sensitive_columns declared"
    elif not target:
        bias_part["fairness"] = {"not_applicable": "fairness needs metrics.target_column"}
    elif off is not None:
        bias_part["fairness"] = {"not_applicable": off}
    report["bias"] = bias_part
    return clean(report)


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
