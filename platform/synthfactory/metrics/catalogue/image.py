"""The image metrics (``metrics.evaluators.image``): row-level ones over every image
(``image.sharded``) and the encoder-based ones on a sample
(``synthfactory_workers.metrics.image_embeddings``). The card shows them in this order."""

from __future__ import annotations

from synthfactory.metrics.catalogue import Metric, hidden, shown

ENCODER = "jobs with metrics.image_encoder"
REFERENCE = "jobs with metrics.image_encoder and metrics.reference"
CLIP = "jobs whose metrics.image_encoder is a CLIP model, with a prompt column"

METRICS: tuple[Metric, ...] = (
    hidden("quality.images_scored", "images read"),
    shown("quality.blank_rate", "share of images with (almost) no variation"),
    shown("quality.near_duplicate_rate", "share of images within 4 bits (pHash) of an earlier one"),
    shown("quality.brightness.mean", "mean grey level (0-255)"),
    hidden("quality.brightness.*", "the grey level's other statistics"),
    shown("quality.contrast.mean", "mean standard deviation of grey levels"),
    hidden("quality.contrast.*", "the contrast's other statistics"),
    shown("quality.sharpness.mean", "mean variance of the Laplacian (higher = sharper)"),
    hidden("quality.sharpness.*", "the sharpness's other statistics"),
    hidden("quality.sizes.*", "images by width x height"),
    hidden("quality.formats.*", "images by file format"),
    shown(
        "quality.embedding.diversity",
        "mean pairwise cosine distance of image-encoder embeddings",
        when=ENCODER,
    ),
    shown(
        "quality.embedding.similarity_to_reference",
        "mean best cosine similarity to a reference",
        when=REFERENCE,
    ),
    shown(
        "quality.embedding.frechet_distance",
        "Frechet distance to the reference images on the image encoder's features (FID only "
        "if that encoder is Inception-v3)",
        when=REFERENCE,
    ),
    hidden("quality.embedding.*", "the encoder's other numbers", when=ENCODER),
    shown(
        "quality.clip_score.mean",
        "mean CLIPScore of images vs their prompts: 100*max(cos, 0)",
        when=CLIP,
    ),
    hidden("quality.clip_score.*", "the CLIP score's other statistics", when=CLIP),
    hidden("rows_scored", "rows the metrics read (every row)"),
)
