"""The dataset card (README.md beside the data): built in-process from a manifest and a
report (no job run), except the last test, which runs `synthfactory metrics` twice."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner

from synthfactory.dataset import layout, parquet
from synthfactory.dataset.manifest import Manifest, SchemaInfo, ShardEntry, TableFile, TableInfo
from synthfactory.metrics import card_plots
from synthfactory.metrics.card import render
from synthfactory.metrics.card_plots import COLOURS, LABELS, plots, sample_images, thumbnails
from synthfactory.metrics.catalogue import meanings
from synthfactory.metrics.gates import evaluate as evaluate_gates
from synthfactory.metrics.report import merge
from synthfactory.spec import load_spec
from synthfactory.storage import LocalStore

from .manifests import manifest

ROOT = Path(__file__).resolve().parents[2]
PENGUINS = ROOT / "examples" / "data" / "penguins.csv"
ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def cells(line: str) -> list[str]:
    """A markdown table row's cells, split where GitHub/Hugging Face markdown splits them:
    at every `|` that no backslash escapes."""
    body = line.strip()
    assert body.startswith("|") and body.endswith("|"), line
    out, current, i = [], "", 1
    while i < len(body) - 1:
        if body[i] == "\\":
            current += body[i : i + 2]
            i += 2
            continue
        if body[i] == "|":
            out.append(current.strip())
            current = ""
        else:
            current += body[i]
        i += 1
    return [*out, current.strip()]


def tables(text: str) -> list[list[str]]:
    """Every markdown table of a card, as its lines (header, rule, rows)."""
    found: list[list[str]] = []
    current: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append(current)
            current = []
    return found


def assert_tables_whole(text: str) -> None:
    for table in tables(text):
        width = len(cells(table[0]))
        for line in table[1:]:
            assert len(cells(line)) == width, f"a cell was cut: {line}"


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The matplotlib figures the card's plots make, kept (not rendered to PNG) to inspect."""
    import matplotlib.pyplot as plt

    seen: list[Any] = []

    def keep(fig: Any) -> bytes:
        seen.append(fig)
        return b"png"

    monkeypatch.setattr(card_plots, "_png", keep)
    yield seen
    plt.close("all")


def legend_colours(fig: Any) -> dict[str, str]:
    """label -> face colour of every legend entry of the figure's axes."""
    from matplotlib.colors import to_hex

    out: dict[str, str] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            patches = list(getattr(handle, "patches", [handle]))
            if patches:
                out[label] = to_hex(patches[0].get_facecolor(), keep_alpha=False)
    return out


def dp_like(rows: int = 200) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The penguins, and a 'synthetic' table as the README's DP snippet produced it: every
    value of island and sex suppressed, a numeric column all null, year 60% null."""
    real = pd.read_csv(PENGUINS)
    synthetic = real.sample(rows, random_state=0, replace=True).reset_index(drop=True)
    synthetic["island"] = pd.Series([None] * rows, dtype="str")
    synthetic["sex"] = pd.Series([None] * rows, dtype=object)
    synthetic["bill_depth_mm"] = np.nan
    synthetic.loc[: int(rows * 0.6), "year"] = np.nan
    return real, synthetic


# -- all-null columns ------------------------------------------------------------------------


def test_all_null_columns_are_plotted_not_a_crash(figures: list[Any]) -> None:
    real, synthetic = dp_like()
    names = plots(real, synthetic)
    for column in ("island", "sex", "bill_depth_mm", "year"):
        assert f"plots/column_{column}.png" in names
    island = next(f for f in figures if f.axes[0].get_title().startswith("island"))
    assert "synthetic 100%" in island.axes[0].get_title()  # nulls: said on the plot
    labels = [t.get_text() for t in island.axes[0].get_xticklabels()]
    assert "(null)" in labels and "Biscoe" in labels


def test_the_card_of_a_version_with_all_null_columns_is_written(tmp_path: Path) -> None:
    """As the flow writes it (``write_card``: sample, plots, card), with no Ray."""
    from synthfactory_flows.evaluate import write_card

    _, synthetic = dp_like()
    spec = {
        "name": "penguins",
        "modality": "tabular",
        "rows": len(synthetic),
        "output": str(tmp_path),
        "generator": {"kind": "gaussian_copula", "source": str(PENGUINS)},
    }
    store = LocalStore(tmp_path / "v1")
    table = pa.Table.from_pandas(synthetic, preserve_index=False)
    data = parquet.encode(table)
    store.put_bytes(layout.data_key(0), data)
    entry = ShardEntry(
        index=0, row_start=0, seed=0, rows=len(synthetic), path=layout.data_key(0),
        bytes=len(data), sha256="0" * 64,
    )  # fmt: skip
    m = manifest(
        name="penguins",
        rows=len(synthetic),
        shards=[entry],
        schema=SchemaInfo.from_arrow(table.schema),
        spec=spec,
    )
    report = {"modality": "tabular", "quality": {"overall": 0.53}}
    write_card(load_spec(spec), store, m, report)
    text = store.get_text(layout.CARD)
    assert "![plots/column_island.png](plots/column_island.png)" in text
    assert store.exists("plots/column_island.png") and store.exists("plots/correlation.png")
    assert "| `quality.overall` | 0.5300 |" in text


# -- table cells -----------------------------------------------------------------------------


def test_every_table_cell_is_escaped() -> None:
    """A `|` or a line break in a meaning, a gate, a mechanism or a sample value never ends
    a cell early: every row has as many cells as its header."""
    report = {
        "quality": {"overall": 0.8},
        "sequential": {"overall": 0.7, "lag1_autocorrelation_similarity": 0.9},
    }
    budget = {
        "epsilon": 1.0,
        "delta": 1e-6,
        "mechanisms": [
            {
                "statistic": "counts(a|b)",
                "mechanism": "laplace",
                "epsilon": 1.0,
                "delta": 0.0,
                "sensitivity": 2.0,
                "noise_scale": 2.0,
            }
        ],
    }
    gates = [{"metric": "quality.overall", "condition": ">= 0.5", "value": 0.8, "passed": True}]
    sample = pd.DataFrame({"a|b": ["x | y\nz", "one\r\ntwo"], "n": [1, 2]})
    text = render(manifest(gates=gates, privacy_budget=budget), report, sample, [])
    assert_tables_whole(text)
    lag = next(line for line in text.splitlines() if "lag1_autocorrelation_similarity" in line)
    meaning = meanings("tabular")["sequential.lag1_autocorrelation_similarity"]
    assert cells(lag)[2].replace("\\|", "|") == meaning  # the whole description, one cell
    assert "| x \\| y z | 1 |" in text  # the line break folded, the pipe escaped


# -- not applicable --------------------------------------------------------------------------


def test_metrics_with_nothing_scored_read_not_applicable_and_fail_no_gate_silently() -> None:
    report = {
        "modality": "text",
        "quality": {
            "rows": 0,
            "refusal_rate": None,
            "not_applicable": "no rows with a 'answer' text",
            "embedding": {"not_applicable": "no texts to embed", "embedded": 0},
        },
        "privacy": {"pii_email_rate": None},
    }
    gates = evaluate_gates({"quality.embedding.diversity": ">= 0.2"}, report)
    assert gates == [
        {
            "metric": "quality.embedding.diversity",
            "condition": ">= 0.2",
            "value": None,
            "passed": False,
            "not_applicable": True,
            "reason": "not applicable: no texts to embed",
        }
    ]
    text = render(manifest(modality="text", gates=gates), report, pd.DataFrame(), [])
    assert "| `quality.embedding.diversity` | n/a: no texts to embed |" in text
    assert "| `quality.refusal_rate` | n/a: no rows with a 'answer' text |" in text
    assert "| `privacy.pii_email_rate` | n/a |" in text
    assert (
        "| `quality.embedding.diversity >= 0.2` | no texts to embed | "
        "**not applicable** (not passed) |" in text
    )
    assert "1.0000" not in text


def test_dcr_overfitting_protection_says_what_is_computed() -> None:
    """At an 80/20 split p0 is 0.8, not SDMetrics' 1/2: the card gives our formula."""
    from synthfactory.metrics.privacy.closeness import privacy_report

    rng = np.random.default_rng(0)
    real = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    synthetic = pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(size=300)})
    got = privacy_report(real.iloc[:400], real.iloc[400:], synthetic, seed=0)
    p, p0 = got["dcr_closer_to_train_share"], got["dcr_closer_to_train_expected"]
    assert p0 == pytest.approx(0.8)
    assert got["dcr_overfitting_protection"] == pytest.approx(min(1.0, (1 - p) / (1 - p0)))
    meaning = meanings("tabular")["privacy.dcr_overfitting_protection"]
    assert "min(1, (1 - p)/(1 - p0))" in meaning and "2*(1 - share" not in meaning
    assert "privacy.dcr_closer_to_train_share" in meanings("tabular")  # what p is, on the card


# -- plots -----------------------------------------------------------------------------------


def test_one_colour_per_role_on_every_chart(figures: list[Any]) -> None:
    """Real and synthetic keep their colours on histograms, bar charts and heatmaps."""
    real = pd.read_csv(PENGUINS)
    synthetic = real.sample(200, random_state=1, replace=True)
    plots(real, synthetic)
    charts = [f for f in figures if f.axes[0].get_legend() is not None]
    kinds = {f.axes[0].get_ylabel() for f in charts}
    assert kinds == {"density", "share of rows"}  # both histograms and bar charts
    for fig in charts:
        assert legend_colours(fig) == {"real": COLOURS["real"], "synthetic": COLOURS["synthetic"]}
    heatmap = figures[-1]
    titles = {ax.get_title(): ax.title.get_color() for ax in heatmap.axes if ax.get_title()}
    assert titles == {
        "real correlations": COLOURS["real"],
        "synthetic correlations": COLOURS["synthetic"],
    }
    assert [ax.get_title() for ax in heatmap.axes][:2] == list(titles)  # real on the left


def test_a_combined_output_is_not_called_synthetic(figures: list[Any]) -> None:
    """augment.combined writes source rows too (an is_synthetic column): its plots say
    output, in the output's colour, and the flag column is not plotted."""
    real = pd.read_csv(PENGUINS)
    combined = pd.concat([real, real.sample(100, random_state=0)], ignore_index=True)
    combined["is_synthetic"] = [False] * len(real) + [True] * 100
    names = plots(real, combined)
    assert "plots/column_is_synthetic.png" not in names
    for fig in figures:
        colours = legend_colours(fig)
        if colours:
            assert colours == {"real": COLOURS["real"], LABELS["output"]: COLOURS["output"]}
    assert figures[-1].axes[1].get_title() == f"{LABELS['output']} correlations"


def test_heatmap_labels_never_overlap(figures: list[Any]) -> None:
    rng = np.random.default_rng(0)
    names = [f"a rather long measurement name {i:02d}" for i in range(14)]
    real = pd.DataFrame(rng.normal(size=(100, 14)), columns=names)
    synthetic = pd.DataFrame(rng.normal(size=(100, 14)), columns=names)
    plots(real, synthetic, max_columns=14)
    heatmap = figures[-1]
    heatmap.canvas.draw()
    renderer = heatmap.canvas.get_renderer()
    labelled = []
    for ax in heatmap.axes:
        for text in [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.title]:
            if text.get_text() and text.get_visible():
                labelled.append((ax, text.get_window_extent(renderer)))
    assert len(labelled) > 24
    for i, (ax, box) in enumerate(labelled):
        for _, other in labelled[i + 1 :]:
            assert not box.overlaps(other), "two labels overlap"
        for axes in heatmap.axes:  # nor does a label lie over another heatmap
            if axes is not ax:
                assert not box.overlaps(axes.get_window_extent(renderer))


def test_small_images_are_enlarged_with_nearest_neighbour() -> None:
    """A 16x16 digit fills its 64 px cell of the contact sheet, its pixels kept sharp."""
    from PIL import Image

    digit = Image.fromarray(((np.indices((16, 16)).sum(0) % 2) * 255).astype(np.uint8))
    buf = io.BytesIO()
    digit.save(buf, format="PNG")
    sheet = Image.open(io.BytesIO(thumbnails([buf.getvalue()])["plots/thumbnails.png"]))
    cell = sheet.convert("L").crop((0, 0, 64, 64))
    assert set(np.asarray(cell).ravel().tolist()) == {
        0,
        255,
    }  # nothing white padding, nothing blurred
    assert cell.getpixel((0, 0)) == cell.getpixel((3, 3)) != cell.getpixel((4, 0))


def test_sample_images_show_as_thumbnails() -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(buf, format="PNG")
    sample = pd.DataFrame({"image": [{"bytes": buf.getvalue(), "path": None}], "label": [7]})
    files = sample_images(sample)
    assert list(files) == ["plots/sample/row1_image.png"]
    assert Image.open(io.BytesIO(files["plots/sample/row1_image.png"])).size == (64, 64)
    text = render(manifest(modality="image"), None, sample, [*files, "plots/thumbnails.png"])
    assert "| ![image 1](plots/sample/row1_image.png) | 7 |" in text
    assert "(image)" not in text
    plotted = text.split("## Plots")[1]
    assert "thumbnails.png" in plotted and "plots/sample/" not in plotted


# -- multi-table datasets --------------------------------------------------------------------


def test_relational_card_shows_every_table_and_relationship() -> None:
    report = {
        "quality": {"overall": 0.75},
        "tables": {
            "islands": {"quality": {"overall": 0.9, "column_shapes": 0.95}, "rows": 3},
            "penguins": {
                "quality": {"overall": 0.6, "column_shapes": 0.7, "column_pair_trends": 0.5},
                "rows": 340,
                "rows_scored": 340,
            },
        },
        "relationships": {
            "islands": {
                "penguins": {
                    "cardinality_shape_similarity": 0.8,
                    "referential_integrity": 1.0,
                    "children_per_parent": {"real_mean": 114.7, "synthetic_mean": 113.3},
                }
            }
        },
    }
    text = render(manifest(), report, pd.DataFrame(), [])
    assert_tables_whole(text)
    assert "mean of the tables' quality.overall" in text
    assert "| `islands` | 3 | n/a | 0.9000 | 0.9500 | n/a |" in text
    assert "| `penguins` | 340 | 340 | 0.6000 | 0.7000 | 0.5000 |" in text
    assert "| `islands.penguins` | 0.8000 | 1.0000 | n/a | 114.7000 / 113.3000 |" in text


def grunfeld_version(tmp_path: Path) -> tuple[Any, LocalStore, Manifest]:
    """A sequential version on disk (its steps: the first firms of the panel), by hand."""
    from synthfactory.sequences import entity_table
    from synthfactory.spec.generators.sequential import ENTITIES, LENGTH_COLUMN, SEQUENCES

    from ..tabular.sequential_tables import grunfeld, sequential_spec, write

    real = grunfeld()
    spec = sequential_spec(write(real, tmp_path, "g"), str(tmp_path / "out"))
    steps = real[real["firm"].isin(sorted(real["firm"].unique())[:4])]
    frames = {ENTITIES: entity_table(steps, "firm", [], LENGTH_COLUMN), SEQUENCES: steps}
    store = LocalStore(tmp_path / "out" / "v1")
    files, infos = {}, {}
    for name, frame in frames.items():
        table = pa.Table.from_pandas(frame, preserve_index=False)
        data = parquet.encode(table)
        store.put_bytes(layout.table_key(name, 0), data)
        files[name] = TableFile(
            path=layout.table_key(name, 0), rows=len(frame), bytes=len(data), sha256="0" * 64
        )
        infos[name] = TableInfo(rows=len(frame), schema=SchemaInfo.from_arrow(table.schema))
    entry = ShardEntry(
        index=0, row_start=0, seed=0, rows=len(frames[ENTITIES]), path=files[ENTITIES].path,
        bytes=files[ENTITIES].bytes, sha256="0" * 64, tables=files,
    )  # fmt: skip
    m = manifest(
        name="grunfeld",
        rows=len(frames[ENTITIES]),
        shards=[entry],
        schema=infos[ENTITIES].data_schema,
        spec=spec,
        tables=infos,
    )
    store.put_text(layout.MANIFEST, m.to_json())
    return load_spec(spec), store, m


def test_sequential_card_and_datasets_show_show_the_steps(tmp_path: Path) -> None:
    from synthfactory_flows.cli import main
    from synthfactory_flows.evaluate import write_card

    job, store, m = grunfeld_version(tmp_path)
    write_card(job, store, m, {"modality": "tabular", "quality": {"overall": 0.7}})
    text = store.get_text(layout.CARD)
    steps = text.split("### `sequences` (the steps: one row per step of an entity)")[1]
    assert "| firm | year | invest | value | capital |" in steps
    assert "### `entities`" in text.split("### `sequences`")[0]
    assert store.exists("plots/sequences/column_invest.png")  # the steps, real vs synthetic
    shown = CliRunner().invoke(main, ["datasets", "show", store.uri, "-n", "3"])
    assert shown.exit_code == 0, shown.output
    assert "schema of table sequences (80 rows):" in shown.output
    assert "first 3 rows of table sequences:" in shown.output
    assert re.search(r"Chrysler\s+1935", shown.output)


# -- merging reports -------------------------------------------------------------------------


def test_a_newer_report_wins_and_keeps_what_it_did_not_compute() -> None:
    earlier = {
        "quality": {"overall": 0.8, "column_shapes": 0.85},
        "utility": {"score": 0.9, "target": "species"},
        "bias": {"not_applicable": "no metrics.sensitive_columns declared", "x": {}},
        "privacy": {"dcr_ratio": 0.97},
    }
    newer = {
        "quality": {"overall": 0.82},
        "utility": {"not_applicable": "no metrics.target_column declared"},
        "bias": {"max_share_change": 0.1},
        "privacy": {"dcr_ratio": None},
        "rows_scored": 10,
    }
    assert merge(earlier, newer) == {
        "quality": {"overall": 0.82, "column_shapes": 0.85},
        "utility": {"score": 0.9, "target": "species"},
        "bias": {"max_share_change": 0.1, "x": {}},
        "privacy": {"dcr_ratio": 0.97},
        "rows_scored": 10,
    }
    # a section both runs could not compute keeps the newer reason
    assert merge({"u": {"not_applicable": "a"}}, {"u": {"not_applicable": "b"}}) == {
        "u": {"not_applicable": "b"}
    }


# -- end to end ------------------------------------------------------------------------------


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_metrics_command_rewrites_the_card_and_keeps_earlier_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`metrics --target` then `metrics`: the utility numbers of the first run stay in
    metrics.json and on the card; both runs rewrite the card."""
    from synthfactory_flows.cli import main
    from synthfactory_flows.generate import run_job

    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    spec = {
        "name": "penguins",
        "modality": "tabular",
        "rows": 300,
        "shard_rows": 150,
        "output": str(tmp_path / "out"),
        "generator": {"kind": "gaussian_copula", "source": str(PENGUINS)},
        "metrics": {"enabled": False},
        "resources": {"actors": 1, "num_cpus": 0.5},
    }
    uri = run_job(spec)["uri"]
    card_path, metrics_path = Path(uri) / "README.md", Path(uri) / "metrics.json"
    assert "utility.score" not in card_path.read_text()
    first = CliRunner().invoke(main, ["metrics", uri, "--target", "species"])
    assert first.exit_code == 0, first.output
    score = json.loads(metrics_path.read_text())["utility"]["score"]
    assert f"| `utility.score` | {score:.4f} |" in card_path.read_text()
    second = CliRunner().invoke(main, ["metrics", uri, "--json"])
    assert second.exit_code == 0, second.output
    report = json.loads(metrics_path.read_text())
    assert report["utility"]["score"] == score and report["utility"]["target"] == "species"
    assert f"| `utility.score` | {score:.4f} |" in card_path.read_text()
    assert json.loads(second.output[second.output.index("{") :]) == report
