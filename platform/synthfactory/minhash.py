"""MinHash signatures and LSH bands for near-duplicate text (Broder 1997; Leskovec et al.,
Mining of Massive Datasets, ch. 3). Shingles are byte 5-grams of case- and space-folded
text; band hashes go in the `__lsh_bands` sidecar used by the whole-dataset dedup pass."""

from __future__ import annotations

import re
import zlib

import numpy as np

PRIME = np.uint64((1 << 61) - 1)
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    return _SPACE.sub(" ", text.lower()).strip()


def exact_key(text: str) -> int:
    """A stable 64-bit key of the normalised text (two CRC32s)."""
    data = normalize(text).encode()
    return (zlib.crc32(data) << 32) | zlib.crc32(data[::-1] + b"\x01")


def _shingles(text: str, k: int = 5) -> np.ndarray:
    data = np.frombuffer(normalize(text).encode() or b" ", dtype=np.uint8).astype(np.uint64)
    if len(data) < k:
        data = np.pad(data, (0, k - len(data)))
    grams = np.zeros(len(data) - k + 1, dtype=np.uint64)
    for i in range(k):
        grams |= data[i : len(data) - k + 1 + i] << np.uint64(8 * i)
    return np.unique(grams)


def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, (1 << 31) - 1, num_perm, dtype=np.uint64)
    b = rng.integers(0, (1 << 31) - 1, num_perm, dtype=np.uint64)
    return a, b


def signatures(texts: list[str], num_perm: int = 64, seed: int = 1) -> np.ndarray:
    """(len(texts), num_perm) uint64 MinHash signatures."""
    a, b = _permutations(num_perm, seed)
    out = np.empty((len(texts), num_perm), dtype=np.uint64)
    for i, text in enumerate(texts):
        x = _shingles(text) % PRIME
        # (a*x + b) mod p, kept in 64 bits by splitting x into 31-bit halves
        lo, hi = x & np.uint64((1 << 31) - 1), x >> np.uint64(31)
        prod = (
            (a[:, None] * hi[None, :]) % PRIME * np.uint64(1 << 31) % PRIME
            + a[:, None] * lo[None, :] % PRIME
            + b[:, None]
        ) % PRIME
        out[i] = prod.min(axis=1)
    return out


def bands_for(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) with bands*rows <= num_perm whose S-curve crosses 0.5 near threshold."""
    best = (num_perm, 1)
    best_err = float("inf")
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if bands == 0:
            break
        err = abs((1 / bands) ** (1 / rows) - threshold)
        if err < best_err:
            best, best_err = (bands, rows), err
    return best


def band_hashes(sigs: np.ndarray, threshold: float) -> np.ndarray:
    """(n, bands) uint64: one hash per band of each signature."""
    bands, rows = bands_for(threshold, sigs.shape[1])
    mult = np.random.default_rng(7).integers(1, 1 << 62, rows, dtype=np.uint64) | np.uint64(1)
    out = np.empty((len(sigs), bands), dtype=np.uint64)
    for band in range(bands):
        part = sigs[:, band * rows : (band + 1) * rows]
        out[:, band] = (part * mult).sum(axis=1, dtype=np.uint64) ^ np.uint64(band)
    return out


def jaccard_estimate(a: np.ndarray, b: np.ndarray) -> float:
    return float((a == b).mean())
