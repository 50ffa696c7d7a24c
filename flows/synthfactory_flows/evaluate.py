"""After generation: metrics, gates, the dataset card, and Prefect artifacts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from synthfactory.dataset import layout, parquet
from synthfactory.sources import read_table
from synthfactory.spec import JobSpec

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.dataset import Manifest, ShardEntry
    from synthfactory.storage import ObjectStore


def read_synthetic(
    store: ObjectStore, entries: list[ShardEntry], max_rows: int, seed: int
) -> pd.DataFrame:
    import pyarrow as pa

    table = pa.concat_tables(
        [parquet.decode(store.get_bytes(e.path)) for e in entries], promote_options="default"
    )
    df = table.to_pandas()
    return df.sample(max_rows, random_state=seed) if len(df) > max_rows else df


def reference_uri(job: JobSpec) -> str | None:
    return job.metrics.reference or getattr(job.generator, "source", None)


@task(name="compute-metrics", cache_policy=NO_CACHE)
def compute_metrics(job: JobSpec, store: ObjectStore, entries: list[ShardEntry]) -> dict[str, Any]:
    from synthfactory.metrics.report import tabular_report

    if job.modality != "tabular":
        return {
            "modality": job.modality,
            "not_applicable": f"{job.modality} metrics are not implemented yet",
        }
    reference = reference_uri(job)
    if reference is None:
        return {
            "modality": "tabular",
            "not_applicable": "no reference table: set metrics.reference",
        }
    real = read_table(reference, job.storage).to_pandas()
    synthetic = read_synthetic(store, entries, job.metrics.max_rows, job.metrics.seed)
    report = tabular_report(real, synthetic, job.metrics)
    report["reference"] = reference
    report["rows_scored"] = len(synthetic)
    return report


def write_report(store: ObjectStore, report: dict[str, Any]) -> None:
    from synthfactory.metrics.report import to_arrow, to_json

    store.put_text(layout.METRICS, to_json(report))
    store.put_bytes("metrics.parquet", parquet.encode(to_arrow(report)))


def write_card(
    job: JobSpec, store: ObjectStore, manifest: Manifest, report: dict[str, Any] | None
) -> None:
    from synthfactory.metrics.card import plots, render

    entries = manifest.shards
    sample = (
        parquet.decode(store.get_bytes(entries[0].path)).slice(0, 5).to_pandas()
        if entries
        else None
    )
    real = None
    reference = reference_uri(job)
    if job.modality == "tabular" and reference:
        real = read_table(reference, job.storage).to_pandas()
    names: list[str] = []
    if job.modality == "tabular" and entries:
        synthetic = read_synthetic(store, entries, 200_000, job.metrics.seed)
        for name, png in plots(real, synthetic).items():
            store.put_bytes(name, png)
            names.append(name)
    import pandas as pd

    store.put_text(
        layout.CARD,
        render(manifest, report, sample if sample is not None else pd.DataFrame(), names),
    )


def publish_artifacts(manifest: Manifest, report: dict[str, Any] | None) -> None:
    """The report in the Prefect UI: a markdown summary and a table of every metric."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from synthfactory.metrics.report import flatten

    key = "".join(c if c.isalnum() else "-" for c in manifest.name.lower())
    lines = [
        f"# {manifest.name} {manifest.version}: {manifest.status}",
        "",
        f"{manifest.rows:,} rows, {len(manifest.shards)} shards",
        "",
    ]
    for gate in manifest.gates:
        mark = "pass" if gate["passed"] else "FAIL"
        why = f", {gate['reason']}" if "reason" in gate else ""
        lines.append(
            f"- {mark}: `{gate['metric']} {gate['condition']}` (value {gate.get('value')}{why})"
        )
    create_markdown_artifact(
        "\n".join(lines), key=f"{key}-summary", description="synthfactory dataset summary"
    )
    if report:
        rows = [
            {"metric": k, "value": round(float(v), 6)}
            for k, v in flatten(report)
            if not k.startswith(("quality.columns.", "quality.pairs."))
        ]
        create_table_artifact(rows, key=f"{key}-metrics", description="synthfactory metrics")
