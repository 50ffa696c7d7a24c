"""Image fidelity from encoder embeddings: the Fréchet distance between the generated and
the reference images, and the CLIP score of images against their prompts.

Pure maths on embedding matrices (numpy and scipy); the encoders run in the workers
(``synthfactory_workers.metrics.image_embeddings``).

Fréchet distance: each set of embeddings is summarised by its mean and covariance and
d² = |μ1 - μ2|² + Tr(Σ1 + Σ2 - 2(Σ1Σ2)^½), as in FID (Heusel et al. 2017) and the
pytorch-fid reference implementation. On Inception-v3 pool features that is FID; on any
other encoder it is the same formula on that encoder's features, and its numbers are not
comparable with published FIDs. It is biased upwards at small sample sizes (the more so
the larger the embedding dimension): compare numbers computed at the same sample sizes.

CLIP score (Hessel et al. 2021, with w = 100 as in torchmetrics): the mean over images of
100 · max(cos(image embedding, text embedding of its prompt), 0).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

#: added to the covariance diagonals when (Σ1Σ2)^½ is not finite (singular product)
EPS = 1e-6
#: the largest imaginary part of the square root's diagonal taken for rounding noise
IMAGINARY_TOLERANCE = 1e-3


def mean_and_covariance(embeddings: Any) -> tuple[np.ndarray, np.ndarray]:
    """μ and Σ (unbiased, rows are observations) of an (n, dim) matrix, n >= 2."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need an (n, dim) matrix with n >= 2, got shape {x.shape}")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def frechet_distance_from_moments(
    mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, eps: float = EPS
) -> float:
    """d² = |μ1 - μ2|² + Tr(Σ1 + Σ2 - 2(Σ1Σ2)^½) of two Gaussians.

    As in pytorch-fid: when the square root of Σ1Σ2 is not finite, ``eps`` is added to both
    diagonals; a complex result whose diagonal has imaginary parts within
    ``IMAGINARY_TOLERANCE`` is rounding noise and its real part is taken (a larger one is
    retried with ``eps``, then refused). Rounding below zero is clipped to 0.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, float)), np.atleast_1d(np.asarray(mu2, float))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, float)), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"dimensions differ: {mu1.shape} vs {mu2.shape}")
    if sigma1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"covariance shape {sigma1.shape} does not match mean {mu1.shape}")
    diff = mu1 - mu2

    def root(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)  # singular: checked below
            covmean = np.asarray(linalg.sqrtm(a @ b))
        if not np.isfinite(covmean).all():
            return None
        if np.iscomplexobj(covmean):
            if not np.allclose(np.diagonal(covmean).imag, 0, atol=IMAGINARY_TOLERANCE):
                return None
            covmean = covmean.real
        return covmean

    covmean = root(sigma1, sigma2)
    if covmean is None:
        offset = np.eye(len(mu1)) * eps
        covmean = root(sigma1 + offset, sigma2 + offset)
    if covmean is None:
        raise ValueError("the square root of Σ1Σ2 is not real even with eps on the diagonal")
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return max(float(value), 0.0)


def frechet_distance(embeddings: Any, reference: Any, eps: float = EPS) -> float:
    """The Fréchet distance between two (n, dim) embedding matrices (n >= 2 each)."""
    mu1, sigma1 = mean_and_covariance(embeddings)
    mu2, sigma2 = mean_and_covariance(reference)
    return frechet_distance_from_moments(mu1, sigma1, mu2, sigma2, eps)


def frechet_report(embeddings: Any, reference: Any) -> dict[str, Any]:
    """{"frechet_distance", "reference_images_scored"}; the distance is None, with
    "frechet_not_applicable" saying why, when either set has fewer than two images (or
    the square root of Σ1Σ2 is not real)."""
    x, y = np.asarray(embeddings, float), np.asarray(reference, float)
    out: dict[str, Any] = {"reference_images_scored": len(y)}
    if len(x) < 2 or len(y) < 2:
        out.update(
            frechet_distance=None,
            frechet_not_applicable="needs at least 2 generated and 2 reference images",
        )
        return out
    try:
        out["frechet_distance"] = frechet_distance(x, y)
    except ValueError as exc:
        out.update(frechet_distance=None, frechet_not_applicable=str(exc))
    return out


def clip_scores(image_embeddings: Any, text_embeddings: Any, w: float = 100.0) -> np.ndarray:
    """Per pair (row i of each matrix): w · max(cos(image_i, text_i), 0)."""
    a = np.asarray(image_embeddings, dtype=np.float64)
    b = np.asarray(text_embeddings, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two (n, dim) matrices of one shape, got {a.shape}, {b.shape}")
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return w * np.maximum((a * b).sum(axis=1), 0.0)


def clip_score(image_embeddings: Any, text_embeddings: Any, w: float = 100.0) -> dict[str, Any]:
    """{"mean", "std", "min", "max", "images_scored"} of the CLIP scores of image/prompt
    pairs (row i of each matrix is one pair); values are None when there are none."""
    n = len(image_embeddings)
    scores = clip_scores(image_embeddings, text_embeddings, w) if n else np.zeros(0)
    stats = (
        {
            "mean": float(np.mean(scores)),
            "std": float(np.std(scores)),
            "min": float(np.min(scores)),
            "max": float(np.max(scores)),
        }
        if n
        else dict.fromkeys(("mean", "std", "min", "max"))
    )
    return {**stats, "images_scored": n}
