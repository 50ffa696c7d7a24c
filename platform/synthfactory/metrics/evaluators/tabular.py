"""Tabular metrics: SDMetrics-style quality over every row (shard summaries), privacy,
utility, detection and bias on a seeded sample, against the reference (source) table,
split (``synthfactory.metrics.holdout``) into the rows the synthesizer trained on and the
holdout it never saw, exactly as the fit split it."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from synthfactory.metrics import holdout, relational
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
        "privacy.dcr_closer_to_train_share",
        "privacy.dcr_closer_to_train_expected",
        "privacy.dcr_overfitting_protection",
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
        *relational.NAMES,  # relational jobs (generator kind relational)
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

    @property
    def is_relational(self) -> bool:
        return bool(self.job.generator.kind == "relational")

    def summary(self) -> TabularSummary | relational.RowCount:
        return relational.RowCount() if self.is_relational else self.plan

    def report(self, merged: dict[str, Any], models: dict[str, Any]) -> dict[str, Any]:
        if self.is_relational:
            return self.relational_report(merged)
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

    def relational_report(self, merged: dict[str, Any]) -> dict[str, Any]:
        """Per-table quality, cardinality and referential integrity per relationship
        (``metrics.relational``), from the tables under ``self.uri``. The single-table
        metrics (privacy, utility, detection) are not computed for relational jobs."""
        from synthfactory.storage import open_store

        config: Any = self.job.generator
        assert self.uri is not None, "relational metrics read the tables: give the uri"
        primary = {name: t.primary_key for name, t in config.tables.items()}
        links = [r.model_dump(mode="json") for r in config.relationships]
        keys: dict[str, list[str]] = {n: [k] if k else [] for n, k in primary.items()}
        for link in links:
            keys[link["child"]].append(link["foreign_key"])
        real = {
            name: read_table(t.source, self.job.storage).to_pandas()
            for name, t in config.tables.items()
        }
        samples, every = relational.read_synthetic_tables(
            open_store(self.uri, self.job.storage),
            self.entries,
            keys,
            self.config.max_rows,
            self.config.seed,
        )
        report = relational.relational_report(
            real,
            samples,
            primary,
            links,
            synthetic_keys=every,
            max_pairs=self.config.max_pairs,
            seed=self.config.seed,
        )
        report["reference"] = {name: t.source for name, t in config.tables.items()}
        report["rows_scored"] = merged["rows"]
        return report

    def figures(self, synthetic: pd.DataFrame) -> dict[str, bytes]:
        from synthfactory.metrics.card import plots

        return plots(self.real if reference_uri(self.job) else None, synthetic)
