"""Image metrics over every image, one shard at a time (parallel Ray tasks), merged exactly:
size and format counts, blank count, per-image brightness, contrast and sharpness (variance
of the Laplacian), and one 64-bit perceptual hash per image.

Near duplicates are found across the whole dataset from the hashes: two images whose hashes
differ in at most ``max_distance`` of 64 bits agree exactly on at least one of
``max_distance + 1`` bit-slices (pigeonhole), so only images sharing a slice value are
compared. Embedding metrics use a seeded sample of ``metrics.model_sample`` images.
"""

from __future__ import annotations

import io
import itertools
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.metrics.sampling import take

if TYPE_CHECKING:
    import pandas as pd

#: images sharing one slice value beyond this are compared only with their sorted neighbours
MAX_BUCKET = 2048
#: the columns the model-based metrics read from the sample (the prompt for CLIP score)
SAMPLE_COLUMNS = ("image", "prompt")


def image_bytes(value: Any) -> bytes:
    return (value.get("bytes") if isinstance(value, dict) else value) or b""


@dataclass
class ImageSummary:
    quota: dict[int, int]
    seed: int
    blank_std: float = 2.0
    max_distance: int = 4

    def partial(self, df: pd.DataFrame, shard: int) -> dict[str, Any]:
        from PIL import Image
        from scipy.ndimage import laplace

        from synthfactory.phash import phash

        sizes: Counter[str] = Counter()
        formats: Counter[str] = Counter()
        stats = np.zeros((len(df), 3))
        hashes = np.zeros(len(df), np.uint64)
        blank = 0
        for i, value in enumerate(df["image"].tolist()):
            image = Image.open(io.BytesIO(image_bytes(value)))
            sizes[f"{image.width}x{image.height}"] += 1
            formats[str(image.format)] += 1
            gray = np.asarray(image.convert("L"), dtype=float)
            stats[i] = gray.mean(), gray.std(), laplace(gray).var()
            blank += int(gray.std() < self.blank_std)
            hashes[i] = phash(image)
        return {
            "order": [(shard, len(df))],
            "sizes": sizes,
            "formats": formats,
            "blank": blank,
            "stats": stats,
            "hashes": hashes,
            "sample": take(
                df[[c for c in SAMPLE_COLUMNS if c in df.columns]],
                self.quota.get(shard, len(df)),
                self.seed,
                shard,
            ),
        }

    @staticmethod
    def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
        import pandas as pd

        parts = sorted(parts, key=lambda p: p["order"][0][0])  # shard order: deterministic
        return {
            "rows": sum(len(p["hashes"]) for p in parts),
            "order": [o for p in parts for o in p["order"]],
            "sizes": sum((p["sizes"] for p in parts), Counter()),
            "formats": sum((p["formats"] for p in parts), Counter()),
            "blank": sum(p["blank"] for p in parts),
            "stats": np.vstack([p["stats"] for p in parts]) if parts else np.zeros((0, 3)),
            "hashes": np.concatenate([p["hashes"] for p in parts]) if parts else np.zeros(0),
            "sample": pd.concat([p["sample"] for p in parts], ignore_index=True) if parts else None,
        }

    def finish(self, merged: dict[str, Any]) -> dict[str, Any]:
        stats, n = merged["stats"], len(merged["hashes"])
        dupes = near_duplicates(merged["hashes"], self.max_distance)
        return {
            "images_scored": n,
            "sizes": dict(merged["sizes"]),
            "formats": dict(merged["formats"]),
            "blank_rate": merged["blank"] / n if n else 0.0,
            "near_duplicate_rate": float(dupes.mean()) if n else 0.0,
            "brightness": _summary(stats[:, 0]),
            "contrast": _summary(stats[:, 1]),
            "sharpness": _summary(stats[:, 2]),
        }


def near_duplicates(hashes: np.ndarray, max_distance: int) -> np.ndarray:
    """For each image: is there an earlier one within ``max_distance`` bits?"""
    hashes = np.asarray(hashes, dtype=np.uint64)
    n = len(hashes)
    first = np.full(n, n, dtype=np.int64)  # earliest index of a near duplicate, n = none
    slices = max_distance + 1
    bounds = np.linspace(0, 64, slices + 1).astype(int)
    for lo, hi in itertools.pairwise(bounds):
        mask = np.uint64((1 << (hi - lo)) - 1)
        keys = (hashes >> np.uint64(lo)) & mask
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], n]
        for s, e in zip(starts, ends, strict=True):
            if e - s < 2:
                continue
            members = np.sort(order[s:e])
            if len(members) > MAX_BUCKET:  # many near-identical images: neighbours only
                window = [members[k : k + MAX_BUCKET] for k in range(0, len(members), MAX_BUCKET)]
            else:
                window = [members]
            for group in window:
                h = hashes[group]
                close = np.bitwise_count(h[:, None] ^ h[None, :]) <= max_distance
                np.fill_diagonal(close, False)
                close = np.triu(close)  # (earlier, later) pairs
                has = close.any(axis=0)
                earliest = np.where(has, group[close.argmax(axis=0)], n)
                first[group] = np.minimum(first[group], earliest)
    return first < n


def _summary(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {}
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "p05": float(np.quantile(values, 0.05)),
        "p50": float(np.median(values)),
        "p95": float(np.quantile(values, 0.95)),
    }
