"""CTGAN and TVAE: the shared data transform, training, sampling, saving, conditions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_iris

from synthfactory.column_detection import detect_types
from synthfactory.errors import ConfigError
from synthfactory_workers.tabular.ctgan import CTGAN, CondSampler
from synthfactory_workers.tabular.generator import synthesizer_class
from synthfactory_workers.tabular.neural import MAGIC
from synthfactory_workers.tabular.transformer import DataTransformer
from synthfactory_workers.tabular.tvae import TVAE

from .tables import TINY_CTGAN, TINY_TVAE, assert_like_mixed, mixed_table

TINY = {"ctgan": TINY_CTGAN, "tvae": TINY_TVAE}


def iris() -> pd.DataFrame:
    """scikit-learn's bundled iris table, with the class as text."""
    df = load_iris(as_frame=True).frame
    df["target"] = df["target"].map({0: "setosa", 1: "versicolor", 2: "virginica"})
    return df


def test_mode_specific_normalisation_round_trips() -> None:
    real = mixed_table()
    transformer = DataTransformer(max_modes=10, seed=0)
    transformer.fit(real, detect_types(real))
    encoded = transformer.transform(real, np.random.default_rng(0))
    assert encoded.shape == (len(real), transformer.output_dim)
    spans = transformer.spans()
    alphas = [s.start for s in spans if s.activation == "tanh"]
    assert np.abs(encoded[:, alphas]).max() <= 0.99
    for s in spans:
        if s.activation == "softmax":
            np.testing.assert_array_equal(encoded[:, s.start : s.start + s.width].sum(axis=1), 1)
    back = transformer.inverse(encoded, enforce_min_max=True)
    back["customer_id"] = real["customer_id"]
    # alphas are clipped at 0.99 (4 sigma): the few values further out come back nearer
    close = np.isclose(back["amount"], real["amount"], atol=0.011)
    assert close.mean() > 0.98
    pd.testing.assert_series_equal(back["score"].isna(), real["score"].isna())
    assert np.allclose(back["score"].dropna(), real["score"].dropna(), atol=1e-6, rtol=1e-6)
    assert (back["count"] == real["count"]).mean() > 0.98
    assert back["plan"].astype(object).where(back["plan"].notna(), None).tolist() == (
        real["plan"].astype(object).where(real["plan"].notna(), None).tolist()
    )
    assert (back["active"] == real["active"]).all()
    assert (back["signup"] == real["signup"]).mean() > 0.98


def test_variational_mixture_finds_the_modes() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, 700), rng.normal(20, 2, 300)])
    transformer = DataTransformer(max_modes=10, seed=0)
    transformer.fit(pd.DataFrame({"x": x}), {"x": "numerical"})
    modes = transformer.columns[0]["modes"]
    assert len(modes["means"]) == 2, modes
    order = np.argsort(modes["means"])
    assert np.allclose(np.asarray(modes["means"])[order], [0, 20], atol=0.5)
    assert np.allclose(np.asarray(modes["weights"])[order], [0.7, 0.3], atol=0.05)


def test_training_by_sampling_and_log_frequency() -> None:
    onehot = np.zeros((10, 2), dtype=np.float32)
    onehot[:9, 0] = 1  # category 0 in 9 rows, category 1 in 1 row
    onehot[9, 1] = 1
    sampler = CondSampler([(0, 2)], [[9, 1]])
    sampler.index_rows(onehot)
    np.testing.assert_allclose(sampler.log_probs[0], np.log([10, 2]) / np.log(20))
    rng = np.random.default_rng(0)
    cond, mask, column, category = sampler.train_vectors(4000, rng)
    assert (mask[:, 0] == 1).all() and (cond.sum(axis=1) == 1).all()
    assert abs((category == 1).mean() - np.log(2) / np.log(20)) < 0.03  # rare class boosted
    rows = sampler.real_rows(column, category, rng)
    assert (onehot[rows].argmax(axis=1) == category).all()


@pytest.mark.parametrize("name", ["ctgan", "tvae"])
def test_fit_sample_types_seeds_and_safe_file(name: str) -> None:
    real = mixed_table(400)
    model: Any = synthesizer_class(name)(TINY[name], seed=1)
    model.fit(real, detect_types(real))
    assert [h["epoch"] for h in model.history] == [1, 2, 3]
    syn = model.sample(1000, seed=5)
    assert_like_mixed(syn, real, 1000)
    data = model.save()
    assert data.startswith(MAGIC) and b"pickle" not in data[:200]
    again = synthesizer_class(name).load(data)
    pd.testing.assert_frame_equal(again.sample(300, 9), model.sample(300, 9))
    assert not again.sample(300, 9)["amount"].equals(again.sample(300, 10)["amount"])
    only_team = again.sample(50, 2, {"plan": "team"})
    assert (only_team["plan"] == "team").all() and len(only_team) == 50


def test_tvae_learns_iris() -> None:
    real = iris()
    options = {
        "epochs": 150,
        "batch_size": 50,
        "embedding_dim": 32,
        "compress_dims": [64, 64],
        "decompress_dims": [64, 64],
    }
    model = TVAE(options)
    model.fit(real, detect_types(real))
    assert model.history[-1]["loss"] < model.history[0]["loss"] - 5
    syn = model.sample(2000, 1)
    for column in real.columns[:4]:
        assert stats.ks_2samp(real[column], syn[column]).statistic < 0.15, column
    shares = syn["target"].value_counts(normalize=True)
    assert set(shares.index) == set(real["target"]) and shares.min() > 0.15
    means = syn.groupby("target")["petal length (cm)"].mean()
    assert means["setosa"] < means["versicolor"] < means["virginica"] + 0.5


def test_ctgan_conditional_vector_steers_the_generator() -> None:
    real = iris()
    options = {
        "epochs": 100,
        "batch_size": 50,
        "embedding_dim": 32,
        "generator_dims": [64, 64],
        "discriminator_dims": [64, 64],
        "pac": 10,
    }
    model = CTGAN(options)
    model.fit(real, detect_types(real))
    for value in ("setosa", "virginica"):
        # before rejection: the share produced for the conditional vector alone
        share = (model._sample(1000, 3, {"target": value})["target"] == value).mean()
        assert share > 0.5, (value, share)


def test_bad_options_and_foreign_files_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown ctgan option"):
        CTGAN({"epoch": 3})
    with pytest.raises(ConfigError, match="not in synthfactory's format"):
        TVAE.load(b"\x80\x04pickle")
    real = mixed_table(100)
    model = TVAE(TINY_TVAE)
    model.fit(real, detect_types(real))
    with pytest.raises(ConfigError, match="is a tvae, not a ctgan"):
        CTGAN.load(model.save())


def test_training_epochs_travel_the_telemetry_channel() -> None:
    """A fit's epochs go to the job's telemetry collector as they end (in order), through
    the same meter as the live request counters; outside a job's fit (no collector) and
    after the prepare task detached, nothing is sent."""
    from types import SimpleNamespace

    from synthfactory_workers.telemetry import Meter, Telemetry

    collector = Telemetry()
    sink = SimpleNamespace(epoch=SimpleNamespace(remote=collector.epoch))
    meter = Meter()
    meter.epoch({"epoch": 1, "loss": 2.0})  # not attached: nowhere to go
    meter.sink = sink
    meter.epoch({"epoch": 1, "loss": 2.0})
    meter.epoch({"epoch": 2, "loss": 1.5})
    meter.detach()
    meter.epoch({"epoch": 3, "loss": 1.0})
    assert collector.epochs() == [{"epoch": 1.0, "loss": 2.0}, {"epoch": 2.0, "loss": 1.5}]
    assert collector.epochs(1) == [{"epoch": 2.0, "loss": 1.5}]


def test_a_fit_reports_each_epoch_to_the_meter(monkeypatch: pytest.MonkeyPatch) -> None:
    from synthfactory_workers.telemetry import METER

    seen: list[dict[str, float]] = []
    monkeypatch.setattr(METER, "epoch", seen.append)
    real = mixed_table(60)
    TVAE({**TINY_TVAE, "epochs": 3}).fit(real, detect_types(real))
    assert [int(e["epoch"]) for e in seen] == [1, 2, 3]
