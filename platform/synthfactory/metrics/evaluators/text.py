"""Text metrics: lengths, diversity, duplicates, refusals, PII and verbatim overlap over
every row; MiniLM embeddings, perplexity and the counterfactual bias test on a sample."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from synthfactory.metrics.evaluators.base import Evaluator, reference_values
from synthfactory.metrics.sampling import quotas
from synthfactory.metrics.text import pipeline
from synthfactory.metrics.text.bias import mention_counts, mention_shares
from synthfactory.metrics.text.pipeline import PipelineSummary
from synthfactory.metrics.text.sharded import (
    TextSummary,
    job_text_column,
    json_columns,
    reference_grams,
)
from synthfactory.spec.generators.text import llm_config

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.spec import JobSpec


class TextEvaluator(Evaluator):
    modality = "text"
    model_task = "synthfactory_workers.metrics.tasks:text_model_metrics"

    @classmethod
    def job_names(cls, job: JobSpec) -> tuple[str, ...]:
        return pipeline.metric_names(job)

    @cached_property
    def column(self) -> str | None:
        return job_text_column(self.job, self.columns)

    @cached_property
    def other_columns(self) -> list[str]:
        """A pipeline's llm_text columns other than the main one: each gets the same
        row-level text metrics and group mentions (not the model-based ones), under
        ``columns.<name>``."""
        llm = llm_config(self.job.generator)
        columns = (llm.columns if llm else None) or []
        names = [c.name for c in columns if c.text]
        return [n for n in names if n != self.column and n in self.columns]

    def not_applicable(self) -> str | None:
        if self.column:
            return None
        llm = llm_config(self.job.generator)
        if llm is not None and llm.columns is not None:
            return f"the dataset has no column {llm.main_text_column!r} (generator.text_column)"
        return "no completion or text column"

    @cached_property
    def reference(self) -> list[str] | None:
        assert self.column is not None
        values = reference_values(self.job, self.column)
        return [str(t) for t in values if t is not None] if values else None

    @cached_property
    def plan(self) -> TextSummary:
        assert self.column is not None
        quota = quotas(self.sizes, self.config.model_sample)
        judges, validators = pipeline.judges_and_validators(self.job)
        return TextSummary(
            self.column,
            quota,
            self.config.seed,
            reference_grams(self.reference) if self.reference else None,
            dict(self.config.groups),
            ["prompt"],
            others={
                n: TextSummary(n, quota, self.config.seed, groups=dict(self.config.groups))
                for n in self.other_columns
            },
            pipeline=PipelineSummary(
                judges,
                validators,
                self.uri,
                self.job.storage.model_dump(mode="json"),
                {e.index: e.rejected_path for e in self.entries if e.rejected_path},
            )
            if judges or validators
            else None,
            json_columns=json_columns(self.job),
        )

    def summary(self) -> TextSummary:
        return self.plan

    def model_inputs(self, merged: dict[str, Any]) -> tuple[pd.DataFrame, list[Any] | None]:
        return merged["sample"], self.reference

    def report(self, merged: dict[str, Any], models: dict[str, Any]) -> dict[str, Any]:
        report: dict[str, Any] = {"modality": "text", **self.plan.finish(merged)}
        report["quality"]["embedding"] = models["embedding"]
        report["quality"]["perplexity"] = models["perplexity"]
        bias: dict[str, Any] = {"counterfactual": models["counterfactual"]}
        if self.config.groups:
            bias["mentions"] = mention_shares(merged["mentions"])
        else:
            bias["mentions"] = {"not_applicable": "no metrics.groups declared"}
        report["bias"] = bias
        report["reference"] = self.config.reference
        report["rows_scored"] = merged["rows"]
        if self.plan.others:
            report["columns"] = {}
            for n, summary in self.plan.others.items():
                part = merged["columns"][n]
                report["columns"][n] = summary.finish(part)
                if self.config.groups:  # who the column's texts mention, as for the main one
                    report["columns"][n]["bias"] = {
                        "mentions": mention_shares(
                            part.get("mentions") or mention_counts([], self.config.groups)
                        )
                    }
        if self.plan.pipeline is not None:
            report.update(self.plan.pipeline.finish(merged.get("pipeline", {})))
        return report

    def figures(self, synthetic: pd.DataFrame) -> dict[str, bytes]:
        from synthfactory.metrics.card_plots import text_plots

        column = self.column if self.column in synthetic.columns else None
        if not column:
            return {}
        return text_plots([str(t) for t in synthetic[column].fillna("")])
