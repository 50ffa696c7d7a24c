"""Tabular metrics: SDMetrics-style quality over every row (shard summaries), privacy,
utility, detection and bias on a seeded sample, against the reference (source) table,
split (``synthfactory.metrics.holdout``) into the rows the synthesizer trained on and the
holdout it never saw, exactly as the fit split it."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from synthfactory.metrics import holdout
from synthfactory.metrics.evaluators.base import Evaluator
from synthfactory.metrics.report import tabular_report
from synthfactory.metrics.sampling import quotas
from synthfactory.metrics.tabular_sharded import SYNTHETIC_FLAG, TabularSummary
from synthfactory.sources import read_table

if TYPE_CHECKING:
    import pandas as pd


def reference_uri(job: Any) -> str | None:
    """The table synthetic rows are compared with: ``metrics.reference``, else the source."""
    value = job.metrics.reference or getattr(job.generator, "source", None)
    return str(value) if value else None


class TabularEvaluator(Evaluator):
    modality = "tabular"
    names = (
        "quality.overall",
        "quality.column_shapes",
        "quality.column_pair_trends",
        "quality.columns.*",
        "quality.pairs.*",
        "quality.detection",
        "quality.detection.score",
        "quality.detection.auc",
        "quality.detection.rows",
        "quality.pairs_sampled.*",
        "quality.thresholds.*",
        "quality.rows.*",
        "privacy.exact_copy_rate",
        "privacy.dcr_median",
        "privacy.dcr_p05",
        "privacy.dcr_holdout_median",
        "privacy.dcr_ratio",
        "privacy.nndr_median",
        "privacy.sample.*",
        "privacy.membership_inference_auc",
        "privacy.split.train",
        "privacy.split.holdout",
        "privacy.split.fraction",
        "privacy.split.seed",
        "privacy.membership_inference.*",
        "utility.score",
        "utility.train_synthetic_test_real",
        "utility.train_real_test_real",
        "utility.fairness.*",
        "utility.augmentation_lift.accuracy",
        "utility.augmentation_lift.macro_f1",
        "utility.augmentation_lift.r2",
        "utility.augmentation_lift.per_class_recall.*",
        "utility.augmentation_lift.real_only.*",
        "utility.augmentation_lift.real_plus_synthetic.*",
        "utility.augmentation_lift.rows.*",
        "bias.max_share_change",
        "bias.demographic_parity_difference",
        "bias.demographic_parity_ratio",
        "bias.equalized_odds_difference",
        "bias.representation.*",
        "bias.fairness.*",
        "rows_scored",
        "rows_sampled",
    )

    def not_applicable(self) -> str | None:
        return None if reference_uri(self.job) else "no reference table: set metrics.reference"

    @cached_property
    def real(self) -> pd.DataFrame:
        uri = reference_uri(self.job)
        assert uri is not None
        return read_table(uri, self.job.storage).to_pandas()

    @cached_property
    def split(self) -> holdout.Split:
        """The fit's split of the reference: train (seen by the synthesizer) and holdout."""
        return holdout.for_job(self.real, self.job)

    @cached_property
    def plan(self) -> TabularSummary:
        quota = quotas(self.sizes, self.config.max_rows)
        train = self.real.iloc[self.split.train]
        return TabularSummary.plan(self.real, self.columns, self.config, quota, train=train)

    def summary(self) -> TabularSummary:
        return self.plan

    def report(self, merged: dict[str, Any], models: dict[str, Any]) -> dict[str, Any]:
        plan = self.plan
        real_summary = plan.partial(self.real, -1)
        exact = {
            "quality": plan.quality(real_summary, merged),
            "exact_copy_rate": merged["copies"] / max(merged["rows"], 1),
            "representation": plan.representation(real_summary, merged),
        }
        report = tabular_report(
            self.real,
            merged["sample"],
            self.config,
            exact,
            split=self.split,
            target=holdout.stratify_column(self.job),
        )
        report["reference"] = reference_uri(self.job)
        report["rows_scored"] = merged["rows"]
        report["rows_sampled"] = len(merged["sample"])
        if SYNTHETIC_FLAG in self.columns:
            report["scored"] = f"synthetic rows only (the dataset's {SYNTHETIC_FLAG} column)"
        return report

    def figures(self, synthetic: pd.DataFrame) -> dict[str, bytes]:
        from synthfactory.metrics.card import plots

        return plots(self.real if reference_uri(self.job) else None, synthetic)
