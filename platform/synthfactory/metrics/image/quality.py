"""Image metrics: sizes and formats, blank and near-duplicate (pHash) rates, and the
distributions of brightness, contrast and sharpness (variance of the Laplacian); see
``sharded`` for how they are computed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def image_report(
    synthetic: pd.DataFrame, blank_std: float = 2.0, max_distance: int = 4, seed: int = 0
) -> dict[str, Any]:
    """Every image metric on one in-memory table (a job computes the same shard by shard)."""
    from synthfactory.metrics.image.sharded import ImageSummary

    if "image" not in synthetic.columns:
        return {"not_applicable": "no image column"}
    summary = ImageSummary({}, seed, blank_std, max_distance)
    return {
        "modality": "image",
        "quality": summary.finish(ImageSummary.merge([summary.partial(synthetic, 0)])),
        "privacy": {"not_applicable": "no image privacy metric is defined yet"},
        "bias": {"not_applicable": "no image bias metric is defined yet"},
    }
