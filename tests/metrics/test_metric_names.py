"""Gate names are checked against the metrics a modality reports, before any work starts;
the evaluators' declared names cover every number their reports really hold."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from synthfactory.errors import SpecError
from synthfactory.metrics.evaluators import evaluator_class, unknown_gates
from synthfactory.metrics.report import flatten
from synthfactory.spec import load_spec
from synthfactory_flows.preflight import preflight

ROOT = Path(__file__).resolve().parents[2]
PENGUINS = ROOT / "examples" / "data" / "penguins.csv"


def tabular_job(tmp_path: Path, gates: dict[str, str]) -> object:
    return load_spec(
        {
            "name": "penguins",
            "modality": "tabular",
            "generator": {"kind": "gaussian_copula", "source": str(PENGUINS)},
            "rows": 100,
            "output": str(tmp_path),
            "metrics": {"target_column": "species", "sensitive_columns": ["sex"]},
            "gates": gates,
        }
    )


def test_a_misspelt_gate_is_refused_with_the_closest_name(tmp_path: Path) -> None:
    job = tabular_job(tmp_path, {"quality.overal": ">= 0.8", "privacy.dcr_ratio": ">= 0.9"})
    with pytest.raises(SpecError) as info:
        preflight(job)  # type: ignore[arg-type]
    text = str(info.value)
    assert "gates.quality.overal" in text and "did you mean 'quality.overall'?" in text
    assert "dcr_ratio" not in text  # a known name passes


def test_per_column_gates_and_other_modalities(tmp_path: Path) -> None:
    assert unknown_gates("tabular", {"quality.columns.bill_length_mm.score": ">= 0.5"}) == []
    assert unknown_gates("text", {"quality.distinct_2": ">= 0.3"}) == []
    [message] = unknown_gates("image", {"quality.overall": ">= 0.8"})
    assert "image datasets report no such metric" in message


def tabular_names() -> list[str]:
    """Every name of a penguins report (a categorical target and a sensitive column)."""
    real = pd.read_csv(PENGUINS)
    synthetic = real.sample(300, replace=True, random_state=0).reset_index(drop=True)
    job = load_spec(
        {
            "name": "p",
            "modality": "tabular",
            "generator": {"kind": "gaussian_copula", "source": str(PENGUINS)},
            "rows": 300,
            "output": "/tmp/unused",
            "metrics": {"target_column": "species", "sensitive_columns": ["sex"]},
        }
    )
    cls = evaluator_class("tabular")
    evaluator = cls(job, [str(c) for c in synthetic.columns], {0: len(synthetic)})
    summary = evaluator.summary()
    merged = type(summary).merge([summary.partial(synthetic, 0)])
    return [name for name, _ in flatten(evaluator.report(merged, {}))]


def test_tabular_names_cover_a_real_report() -> None:
    cls = evaluator_class("tabular")
    names = tabular_names()
    assert len(names) > 40
    unknown = [n for n in names if not cls.knows(n)]
    assert not unknown, f"reported but not declared in the tabular catalogue: {unknown}"


def text_names() -> list[str]:
    """Every name of a text report with groups (the model-based parts as the task gives them)."""
    texts = [f"Review {i}: the kettle works well, mail me at a{i}@example.com." for i in range(30)]
    frame = pd.DataFrame({"prompt": ["Write a review."] * 30, "completion": texts})
    frame["completion_tokens"] = 12
    job = load_spec(
        {
            "name": "t",
            "modality": "text",
            "generator": {
                "kind": "llm",
                "model": "builtin:smollm2",
                "prompt": {"template": "Write a review."},
            },
            "rows": 30,
            "output": "/tmp/unused",
            "metrics": {"groups": {"f": ["she"], "m": ["he"]}},
        }
    )
    cls = evaluator_class("text")
    evaluator = cls(job, list(frame.columns), {0: 30})
    summary = evaluator.summary()
    merged = type(summary).merge([summary.partial(frame, 0)])
    models = {
        "embedding": {"diversity": 0.5, "embedded": 30, "similarity_to_reference": 0.4},
        "perplexity": {"mean": 12.0, "median": 11.0},
        "counterfactual": {"sentiment_gap": 0.1, "refusal_gap": 0.0, "length_ratio": 0.9},
    }
    return [name for name, _ in flatten(evaluator.report(merged, models))]


def test_text_names_cover_a_real_report() -> None:
    cls = evaluator_class("text")
    unknown = [n for n in text_names() if not cls.knows(n)]
    assert not unknown, f"reported but not declared in the text catalogue: {unknown}"


def test_sequential_names_cover_a_real_report(tmp_path: Path) -> None:
    """A sequential dataset's report (the Grunfeld panel scored against itself, through the
    evaluator that reads the dataset's tables) holds only declared names."""
    import pyarrow as pa
    from statsmodels.datasets import grunfeld

    from synthfactory.dataset.shards import write_shard
    from synthfactory.sequences import entity_table
    from synthfactory.storage import LocalStore

    steps = grunfeld.load_pandas().data
    source = tmp_path / "grunfeld.csv"
    steps.to_csv(source, index=False)
    job = load_spec(
        {
            "name": "g",
            "modality": "tabular",
            "generator": {
                "kind": "sequential",
                "source": str(source),
                "sequence_key": "firm",
                "sequence_index": "year",
            },
            "rows": 11,
            "output": str(tmp_path / "out"),
        }
    )
    entities = entity_table(steps, "firm", [], "sequence_length")
    tables = {"entities": pa.Table.from_pandas(entities), "sequences": pa.Table.from_pandas(steps)}
    version = tmp_path / "version"
    entry = write_shard(
        LocalStore(version),
        index=0,
        row_start=0,
        seed=0,
        max_rows=11,
        table=tables["entities"],
        tables=tables,
    )
    cls = evaluator_class("tabular")
    evaluator = cls(job, list(entities.columns), {0: 11}, uri=str(version), entries=[entry])
    summary = evaluator.summary()
    merged = type(summary).merge([summary.partial(entities, 0)])
    report = evaluator.report(merged, {})
    assert report["sequential"]["overall"] == pytest.approx(1.0)
    assert report["tables"]["sequences"]["rows"] == 220
    names = [name for name, _ in flatten(report)]
    assert any(n.startswith("sequential.lag1_autocorrelation.invest") for n in names)
    unknown = [n for n in names if not cls.knows(n)]
    assert not unknown, f"reported but not declared in the tabular catalogue: {unknown}"


def image_names() -> list[str]:
    """Every name of an image report: varied images, the model task's parts as it gives them
    without an encoder."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    images = []
    for _ in range(6):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(buf, "PNG")
        images.append({"bytes": buf.getvalue(), "path": None})
    frame = pd.DataFrame({"image": images, "prompt": ["a cat"] * 6})
    job = load_spec(
        {
            "name": "pics",
            "modality": "image",
            "rows": 6,
            "output": "/tmp/unused",
            "generator": {
                "kind": "python",
                "factory": "synthfactory_workers.demo:SequenceGenerator",
            },
        }
    )
    cls = evaluator_class("image")
    evaluator = cls(job, list(frame.columns), {0: 6})
    summary = evaluator.summary()
    merged = type(summary).merge([summary.partial(frame, 0)])
    models = {
        "embedding": {"diversity": 0.5, "similarity_to_reference": 0.4, "frechet_distance": 3.0},
        "clip_score": {"mean": 30.0, "min": 20.0, "max": 40.0, "images_scored": 6},
    }
    return [name for name, _ in flatten(evaluator.report(merged, models))]


def test_every_reported_name_is_declared_and_every_declared_name_is_reported() -> None:
    """The catalogue and the evaluators agree both ways: what a report holds is declared
    (so a gate may name it), and what is declared is reported, by every scored job of the
    modality or by the jobs its ``when`` names."""
    from synthfactory.metrics.catalogue import metrics

    reported = {"tabular": tabular_names(), "text": text_names(), "image": image_names()}
    for modality, names in reported.items():
        cls = evaluator_class(modality)
        unknown = [n for n in names if not cls.knows(n)]
        assert not unknown, f"{modality}: reported but not declared: {unknown}"
        silent = [
            m.name for m in metrics(modality) if not m.when and not any(map(m.matches, names))
        ]
        assert not silent, f"{modality}: declared for every job but not reported: {silent}"
        assert all(m.meaning for m in metrics(modality) if m.shown)


def test_the_readme_table_lists_what_the_card_shows() -> None:
    """``catalogue.markdown``: one row per metric the card shows, the same meaning, every
    ``|`` escaped so no cell ends early."""
    from synthfactory.metrics.catalogue import markdown, meanings

    for modality in ("tabular", "text", "image"):
        rows = markdown(modality).splitlines()[2:]
        assert [r.split("`")[1] for r in rows] == list(meanings(modality))
        assert all(r.replace("\\|", "").count("|") == 3 for r in rows)
