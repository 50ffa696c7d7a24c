"""Known answers for the Fréchet distance and CLIPScore on embedding matrices (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from synthfactory.metrics.image.fidelity import (
    clip_score,
    clip_scores,
    frechet_distance,
    frechet_distance_from_moments,
    frechet_report,
    mean_and_covariance,
)


def spd(dim: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(dim, dim))
    return a @ a.T + 0.1 * np.eye(dim)


def psd_sqrt(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def test_one_dimensional_gaussians() -> None:
    # N(1, 4) vs N(-2, 9): (1 + 2)^2 + 4 + 9 - 2 * sqrt(36) = 9 + 1 = 10
    assert frechet_distance_from_moments([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(10.0)


def test_diagonal_covariances_closed_form() -> None:
    # commuting covariances: d^2 = |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = 1 + 0 + 9 + (1 - 3) ** 2 + (2 - 1) ** 2 + 0
    got = frechet_distance_from_moments(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(expected) and expected == 15


def test_full_covariances_against_the_symmetric_form() -> None:
    """Tr((S1 S2)^1/2) = Tr((S1^1/2 S2 S1^1/2)^1/2), computed independently with eigh."""
    s1, s2 = spd(6, 1), spd(6, 2)
    mu1, mu2 = np.arange(6.0), np.ones(6)
    r1 = psd_sqrt(s1)
    cross = np.trace(psd_sqrt(r1 @ s2 @ r1))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * cross
    got = frechet_distance_from_moments(mu1, s1, mu2, s2)
    assert got == pytest.approx(expected, rel=1e-9)
    assert frechet_distance_from_moments(mu2, s2, mu1, s1) == pytest.approx(got, rel=1e-9)


def test_samples_of_two_gaussians_approach_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    s1, s2 = spd(3, 3), spd(3, 4)
    mu1, mu2 = np.zeros(3), np.array([1.0, -2.0, 0.5])
    a = rng.multivariate_normal(mu1, s1, size=200_000)
    b = rng.multivariate_normal(mu2, s2, size=200_000)
    exact = frechet_distance_from_moments(mu1, s1, mu2, s2)
    assert frechet_distance(a, b) == pytest.approx(exact, rel=0.02)
    # from samples it is the closed form of the sample moments, exactly
    m1, c1 = mean_and_covariance(a)
    m2, c2 = mean_and_covariance(b)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance_from_moments(m1, c1, m2, c2))


@pytest.mark.parametrize("n", [50, 8])  # 8 < dim 16: singular covariances
def test_identical_and_shifted_sets(n: int) -> None:
    x = np.random.default_rng(5).normal(size=(n, 16))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    shift = np.linspace(-1, 1, 16)
    assert frechet_distance(x + shift, x) == pytest.approx(shift @ shift, abs=1e-5)
    assert frechet_distance(x, x + shift) == pytest.approx(shift @ shift, abs=1e-5)


def test_orthogonal_rank_one_covariances() -> None:
    """Points on two orthogonal lines: S1 S2 = 0, a singular product."""
    t = np.linspace(-1, 1, 20)[:, None]
    a = t * np.array([[1.0, 0.0, 0.0]])
    b = t * np.array([[0.0, 1.0, 0.0]]) * 2
    # Tr S1 + Tr S2 with orthogonal supports: Tr (S1 S2)^1/2 = 0
    expected = np.var(t, ddof=1) * (1 + 4)
    assert frechet_distance(a, b) == pytest.approx(expected, abs=1e-4)


def test_a_non_finite_root_is_retried_with_eps(monkeypatch: pytest.MonkeyPatch) -> None:
    from scipy import linalg

    real_sqrtm, seen = linalg.sqrtm, []

    def flaky(m: np.ndarray) -> np.ndarray:
        seen.append(m)
        return np.full_like(m, np.nan) if len(seen) == 1 else real_sqrtm(m)

    monkeypatch.setattr(linalg, "sqrtm", flaky)
    s = np.diag([1.0, 4.0])
    assert frechet_distance_from_moments([0, 0], s, [0, 0], s, eps=1e-3) == pytest.approx(
        0.0, abs=1e-2
    )
    assert len(seen) == 2 and seen[1] == pytest.approx(
        (s + 1e-3 * np.eye(2)) @ (s + 1e-3 * np.eye(2))
    )
    # a root with a large imaginary diagonal is refused (and reported so, not raised)
    monkeypatch.setattr(linalg, "sqrtm", lambda m: real_sqrtm(m) + 1j * np.eye(len(m)))
    with pytest.raises(ValueError, match="not real"):
        frechet_distance_from_moments([0, 0], s, [0, 0], s)
    report = frechet_report(np.eye(3)[:, :2], np.eye(3)[:, :2])
    assert report["frechet_distance"] is None and "not real" in report["frechet_not_applicable"]


def test_report_and_bad_inputs() -> None:
    x = np.random.default_rng(6).normal(size=(10, 4))
    report = frechet_report(x, x[:5])
    assert report["reference_images_scored"] == 5 and report["frechet_distance"] > 0
    few = frechet_report(x, x[:1])
    assert few["frechet_distance"] is None and "at least 2" in few["frechet_not_applicable"]
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance(x, x[:, :3])
    with pytest.raises(ValueError, match="n >= 2"):
        mean_and_covariance(x[:1])


def test_clip_score_by_hand() -> None:
    images = np.array([[1.0, 0.0], [1.0, 0.0], [2.0, 0.0], [1.0, 1.0]])
    texts = np.array([[3.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 0.0]])
    # cos: 1 (any scale), 0 (orthogonal), -1 clipped to 0, 1/sqrt(2)
    expected = [100.0, 0.0, 0.0, 100 / np.sqrt(2)]
    assert clip_scores(images, texts) == pytest.approx(expected)
    result = clip_score(images, texts)
    assert result["mean"] == pytest.approx(np.mean(expected))
    assert result["min"] == 0.0 and result["max"] == pytest.approx(100.0)
    assert result["images_scored"] == 4
    assert clip_score(images, texts, w=2.5)["mean"] == pytest.approx(np.mean(expected) / 40)
    empty = clip_score(np.zeros((0, 2)), np.zeros((0, 2)))
    assert empty == {"mean": None, "std": None, "min": None, "max": None, "images_scored": 0}
    with pytest.raises(ValueError, match="one shape"):
        clip_scores(images, texts[:2])
