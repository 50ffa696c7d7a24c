"""Image metrics: sizes and formats, blank and near-duplicate (pHash) rates, and the
distributions of brightness, contrast and sharpness (variance of the Laplacian)."""

from __future__ import annotations

import io
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.phash import hamming, phash

if TYPE_CHECKING:
    import pandas as pd


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values)
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std()),
        "p05": float(np.quantile(arr, 0.05)),
        "p50": float(np.median(arr)),
        "p95": float(np.quantile(arr, 0.95)),
    }


def image_report(
    synthetic: pd.DataFrame,
    blank_std: float = 2.0,
    max_distance: int = 4,
    sample: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    from PIL import Image
    from scipy.ndimage import laplace

    if "image" not in synthetic.columns:
        return {"not_applicable": "no image column"}
    values = synthetic["image"].tolist()
    if len(values) > sample:
        rng = np.random.default_rng(seed)
        values = [values[i] for i in rng.choice(len(values), sample, replace=False)]
    sizes: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    brightness, contrast, sharpness, hashes = [], [], [], []
    blank = 0
    for value in values:
        data: bytes = (value.get("bytes") if isinstance(value, dict) else value) or b""
        image = Image.open(io.BytesIO(data))
        sizes[f"{image.width}x{image.height}"] += 1
        formats[str(image.format)] += 1
        gray = np.asarray(image.convert("L"), dtype=float)
        brightness.append(float(gray.mean()))
        contrast.append(float(gray.std()))
        sharpness.append(float(laplace(gray).var()))
        blank += gray.std() < blank_std
        hashes.append(phash(image))
    dupes = sum(
        any(hamming(h, k) <= max_distance for k in hashes[:i]) for i, h in enumerate(hashes)
    )
    n = max(len(values), 1)
    return {
        "modality": "image",
        "quality": {
            "images_scored": len(values),
            "sizes": dict(sizes),
            "formats": dict(formats),
            "blank_rate": blank / n,
            "near_duplicate_rate": dupes / n,
            "brightness": _summary(brightness),
            "contrast": _summary(contrast),
            "sharpness": _summary(sharpness),
        },
        "privacy": {"not_applicable": "image privacy metrics are not implemented yet"},
        "bias": {"not_applicable": "image bias metrics are not implemented yet"},
    }
