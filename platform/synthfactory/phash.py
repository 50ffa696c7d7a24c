"""Perceptual hash (pHash): 64 bits from the low frequencies of a 32x32 grayscale DCT.
Near-identical images differ in few bits; the Hamming distance measures it."""

from __future__ import annotations

from typing import Any

import numpy as np


def phash(image: Any) -> int:
    """``image``: a PIL image."""
    from PIL import Image
    from scipy.fft import dctn

    gray = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.LANCZOS), float)
    low = dctn(gray, norm="ortho")[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return int("".join("1" if b else "0" for b in bits), 2)


def hamming(a: int, b: int) -> int:
    return int((a ^ b).bit_count())
