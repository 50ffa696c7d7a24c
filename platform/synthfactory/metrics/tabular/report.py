"""The tabular report: quality, privacy, detection, utility and bias of synthetic rows
against the real (reference) table, split into the rows the synthesizer trained on and the
holdout it never saw (``metrics.holdout``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synthfactory.jsonsafe import clean
from synthfactory.metrics.privacy import closeness
from synthfactory.metrics.tabular import bias, holdout, model_scores
from synthfactory.metrics.tabular import quality as tabular_quality

if TYPE_CHECKING:
    import pandas as pd

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
    ``representation``; see ``tabular.sharded``).

    ``split`` divides ``real`` into the rows the synthesizer trained on and the holdout it
    never saw (default: ``holdout.for_config`` stratified by the target). Quality and
    representation compare synthetic rows with every real row; privacy, detection and
    utility use train and holdout as their definitions require. ``target`` defaults to
    ``metrics.target_column``."""
    seed = config.seed
    target = target or config.target_column
    real = real.reset_index(drop=True)
    split = split or holdout.for_config(real, config, target)
    train, held = split.parts(real)
    exact = exact or {
        "quality": tabular_quality.quality_report(
            real, synthetic, max_pairs=config.max_pairs, seed=seed
        ),
        "exact_copy_rate": closeness.exact_copy_rate(train, synthetic),
        "representation": bias.representation(real, synthetic, list(config.sensitive_columns)),
    }
    off = None if split.enabled else holdout.off_reason(split, len(real))
    report: dict[str, Any] = {
        "modality": "tabular",
        "quality": exact["quality"],
        "privacy": privacy_part(train, held, synthetic, config, exact, split, off),
    }
    detection = model_scores.detection_score(train, synthetic, seed)
    report["quality"]["detection"] = {**detection, "compared": "synthetic vs real-train"}
    bias_part = representation_part(exact["representation"])
    report["utility"] = utility_part(train, held, synthetic, config, target, off)
    bias_part.update(fairness_part(report["utility"], config, target, off))
    report["bias"] = bias_part
    return clean(report)


def privacy_part(
    train: pd.DataFrame,
    held: pd.DataFrame,
    synthetic: pd.DataFrame,
    config: MetricsConfig,
    exact: dict[str, Any],
    split: holdout.Split,
    off: str | None,
) -> dict[str, Any]:
    """The privacy scores against the holdout (not applicable without one), the exact copy
    rate and the split."""
    if off is None:
        part = closeness.privacy_report(
            train, held, synthetic, sample=config.privacy_sample, seed=config.seed
        )
    else:
        part = {"not_applicable": off}
    part["exact_copy_rate"] = exact["exact_copy_rate"]
    part["split"] = split.info()
    return part


def representation_part(representation: dict[str, Any]) -> dict[str, Any]:
    """Each sensitive group's share, source and output, and the largest change."""
    part: dict[str, Any] = {"representation": representation}
    changes = [v["max_share_change"] for v in representation.values() if "max_share_change" in v]
    if changes:
        part["max_share_change"] = max(changes)
    return part


def utility_part(
    train: pd.DataFrame,
    held: pd.DataFrame,
    synthetic: pd.DataFrame,
    config: MetricsConfig,
    target: str | None,
    off: str | None,
) -> dict[str, Any]:
    """TSTR utility (with its models' fairness) and augmentation lift on the target, or
    why not."""
    if not target:
        return {"not_applicable": "no metrics.target_column declared"}
    if off is not None:
        return {"not_applicable": off}
    seed = config.seed
    sensitive = list(config.sensitive_columns)
    utility = model_scores.tstr(train, held, synthetic, target, sensitive, seed)
    utility["target"] = target
    utility["augmentation_lift"] = model_scores.augmentation_lift(
        train, held, synthetic, target, seed
    )
    return utility


def fairness_part(
    utility: dict[str, Any], config: MetricsConfig, target: str | None, off: str | None
) -> dict[str, Any]:
    """The utility models' fairness by sensitive group, its worst gaps and ratio, or why
    not."""
    part: dict[str, Any] = {}
    if target and off is None:
        fair = utility.get("fairness", {})
        part["fairness"] = fair
        for key in ("demographic_parity_difference", "equalized_odds_difference"):
            values = [v[key] for v in fair.values() if key in v]
            if values:
                part[key] = max(values)
        ratios = [
            v["demographic_parity_ratio"] for v in fair.values() if "demographic_parity_ratio" in v
        ]
        if ratios:
            part["demographic_parity_ratio"] = min(ratios)
    if not config.sensitive_columns:
        part["not_applicable"] = "no metrics.sensitive_columns declared"
    elif not target:
        part["fairness"] = {"not_applicable": "fairness needs metrics.target_column"}
    elif off is not None:
        part["fairness"] = {"not_applicable": off}
    return part
