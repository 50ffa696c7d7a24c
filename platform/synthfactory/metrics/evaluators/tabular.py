"""Tabular metrics: SDMetrics-style quality over every row (shard summaries), privacy,
utility, detection and bias on a seeded sample, against the reference (source) table,
split (``synthfactory.metrics.tabular.holdout``) into the rows the synthesizer trained on and the
holdout it never saw, exactly as the fit split it."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from synthfactory.metrics.evaluators.base import Evaluator
from synthfactory.metrics.sampling import quotas
from synthfactory.metrics.tabular import holdout, relational, sequential
from synthfactory.metrics.tabular.report import tabular_report
from synthfactory.metrics.tabular.sharded import SYNTHETIC_FLAG, TabularSummary
from synthfactory.sources import read_table
from synthfactory.spec.generators.relational import RelationalConfig
from synthfactory.spec.generators.sequential import SequentialConfig
from synthfactory.spec.generators.tabular import TabularConfigBase

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.spec import JobSpec


SOURCED = (TabularConfigBase, SequentialConfig, RelationalConfig)
"""The tabular generators that fit a source table (a ``python`` one has none)."""


def reference_uri(job: JobSpec) -> str | None:
    """The table synthetic rows are compared with: ``metrics.reference``, else the source."""
    generator = job.generator
    value = job.metrics.reference or (generator.source if isinstance(generator, SOURCED) else None)
    return str(value) if value else None


class TabularEvaluator(Evaluator):
    modality = "tabular"

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
        generator = self.job.generator
        sdtypes = generator.column_types if isinstance(generator, TabularConfigBase) else None
        return TabularSummary.plan(
            self.real, self.columns, self.config, quota, train=train, sdtypes=sdtypes
        )

    @property
    def is_relational(self) -> bool:
        return bool(self.job.generator.kind == "relational")

    @property
    def is_sequential(self) -> bool:
        return bool(self.job.generator.kind == "sequential")

    def summary(self) -> TabularSummary | relational.RowCount:
        if self.is_relational or self.is_sequential:
            return relational.RowCount()
        return self.plan

    def report(self, merged: dict[str, Any], models: dict[str, Any]) -> dict[str, Any]:
        if self.is_relational:
            return self.relational_report(merged)
        if self.is_sequential:
            return self.sequential_report(merged)
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
            sdtypes={name: dict(t.column_types) for name, t in config.tables.items()},
        )
        report["reference"] = {name: t.source for name, t in config.tables.items()}
        report["rows_scored"] = merged["rows"]
        return report

    def sequential_report(self, merged: dict[str, Any]) -> dict[str, Any]:
        """The sequential metrics (``metrics.sequential``) of whole synthetic entities, and
        per-table quality as for relational jobs: the entity table (context and length, one
        row per entity) and the step table (keys left out) against the same views of the
        source. Privacy, utility and detection are not computed for sequential jobs."""
        from synthfactory.metrics.tabular.quality import quality_report
        from synthfactory.spec.generators.sequential import ENTITIES, SEQUENCES
        from synthfactory.storage import open_store

        config: Any = self.job.generator
        assert self.uri is not None, "sequential metrics read the steps: give the uri"
        key = config.sequence_key
        synthetic = sequential.read_sequences(
            open_store(self.uri, self.job.storage), self.entries, SEQUENCES, self.config.max_rows
        )
        context = self.sequence_context
        report: dict[str, Any] = {
            "sequential": sequential.sequential_report(
                self.real, synthetic, key, config.sequence_index, context
            )
        }
        views = {
            ENTITIES: (self.real_entities, self.entities_of(synthetic)),
            SEQUENCES: (self.real, synthetic),
        }
        tables: dict[str, Any] = {}
        for name, (real, synth) in views.items():
            tables[name] = {
                "quality": quality_report(
                    real.drop(columns=[key]),
                    synth.drop(columns=[key], errors="ignore"),
                    max_pairs=self.config.max_pairs,
                    seed=self.config.seed,
                ),
                "rows": sum(e.tables[name].rows for e in self.entries if name in e.tables),
                "rows_scored": len(synth),
            }
        overall = [t["quality"]["overall"] for t in tables.values()]
        scored = [v for v in overall if v is not None]
        report["quality"] = {"overall": sum(scored) / len(scored) if scored else None}
        report["tables"] = tables
        report["reference"] = reference_uri(self.job)
        report["rows_scored"] = merged["rows"]
        return report

    @cached_property
    def sequence_context(self) -> list[str]:
        """A sequential job's context columns: the spec's, else those constant within
        every entity of the reference."""
        from synthfactory.sequences import constant_columns

        config: Any = self.job.generator
        if config.context_columns is not None:
            return list(config.context_columns)
        roles = (config.sequence_key, config.sequence_index)
        others = [str(c) for c in self.real.columns if c not in roles]
        return constant_columns(self.real, config.sequence_key, others)

    def entities_of(self, steps: pd.DataFrame) -> pd.DataFrame:
        """One row per entity of a step table: key, context, length."""
        from synthfactory.sequences import entity_table
        from synthfactory.spec.generators.sequential import LENGTH_COLUMN

        config: Any = self.job.generator
        return entity_table(steps, config.sequence_key, self.sequence_context, LENGTH_COLUMN)

    @cached_property
    def real_entities(self) -> pd.DataFrame:
        return self.entities_of(self.real)

    def figures(self, synthetic: pd.DataFrame) -> dict[str, bytes]:
        """Per column, real against synthetic (see ``card.plots``). A sequential job: its
        entities (the dataset's rows) and, when the version is given (``uri``), its steps
        under ``plots/sequences/``; a relational job: every table against its own source
        under ``plots/<table>/``."""
        from synthfactory.metrics.card_plots import plots

        if self.is_relational and self.uri is not None and self.entries:
            return self.table_figures()
        if self.is_sequential:  # the dataset's rows are its entities (keys: regenerated)
            config: Any = self.job.generator
            key = config.sequence_key
            out = plots(
                self.real_entities.drop(columns=[key]),
                synthetic.drop(columns=[key], errors="ignore"),
            )
            if self.uri is not None and self.entries:
                from synthfactory.spec.generators.sequential import SEQUENCES
                from synthfactory.storage import open_store

                steps = sequential.read_sequences(
                    open_store(self.uri, self.job.storage), self.entries, SEQUENCES, 200_000
                )
                out.update(
                    plots(
                        self.real.drop(columns=[key]),
                        steps.drop(columns=[key], errors="ignore"),
                        prefix=f"plots/{SEQUENCES}/",
                    )
                )
            return out
        return plots(self.real if reference_uri(self.job) else None, synthetic)

    def table_figures(self) -> dict[str, bytes]:
        """A relational job's plots: each table (keys left out) against its source."""
        from synthfactory.metrics.card_plots import plots
        from synthfactory.storage import open_store

        config: Any = self.job.generator
        assert self.uri is not None
        keys: dict[str, list[str]] = {
            n: [t.primary_key] if t.primary_key else [] for n, t in config.tables.items()
        }
        for link in config.relationships:
            keys[link.child].append(link.foreign_key)
        samples, _ = relational.read_synthetic_tables(
            open_store(self.uri, self.job.storage), self.entries, keys, 200_000, self.config.seed
        )
        out: dict[str, bytes] = {}
        for name, frame in samples.items():
            drop = keys.get(name, [])
            real = read_table(config.tables[name].source, self.job.storage).to_pandas()
            out.update(
                plots(
                    real.drop(columns=[c for c in drop if c in real.columns]),
                    frame.drop(columns=[c for c in drop if c in frame.columns]),
                    prefix=f"plots/{name}/",
                )
            )
        return out
