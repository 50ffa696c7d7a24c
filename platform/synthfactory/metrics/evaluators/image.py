"""Image metrics: blank and near-duplicate rates (pHash), brightness, contrast and
sharpness over every image; encoder-embedding diversity, Fréchet distance to the reference
images and CLIP score (images against their prompts) on a sample."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from synthfactory.metrics.evaluators.base import Evaluator, reference_values
from synthfactory.metrics.image.sharded import ImageSummary, image_bytes
from synthfactory.metrics.sampling import quotas

if TYPE_CHECKING:
    import pandas as pd


class ImageEvaluator(Evaluator):
    modality = "image"
    model_task = "synthfactory_workers.metrics.tasks:image_model_metrics"
    figure_rows = 20_000  # a contact sheet shows 16 of them

    @cached_property
    def plan(self) -> ImageSummary:
        return ImageSummary(quotas(self.sizes, self.config.model_sample), self.config.seed)

    def summary(self) -> ImageSummary:
        return self.plan

    def model_inputs(self, merged: dict[str, Any]) -> tuple[pd.DataFrame, list[Any] | None]:
        reference = reference_values(self.job, "image")
        return merged["sample"], [image_bytes(v) for v in reference] if reference else None

    def report(self, merged: dict[str, Any], models: dict[str, Any]) -> dict[str, Any]:
        report: dict[str, Any] = {
            "modality": "image",
            "quality": self.plan.finish(merged),
            "privacy": {"not_applicable": "no image privacy metric is defined yet"},
            "bias": {"not_applicable": "no image bias metric is defined yet"},
        }
        report["quality"]["embedding"] = models["embedding"]
        report["quality"]["clip_score"] = models.get(
            "clip_score", {"not_applicable": "not computed by the model task"}
        )
        report["rows_scored"] = merged["rows"]
        return report

    def figures(self, synthetic: pd.DataFrame) -> dict[str, bytes]:
        from synthfactory.metrics.card_plots import thumbnails

        if "image" not in synthetic.columns:
            return {}
        return thumbnails([image_bytes(v) for v in synthetic["image"].head(16)])
