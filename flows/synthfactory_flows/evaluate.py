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
def compute_metrics(
    job: JobSpec, uri: str, entries: list[ShardEntry], columns: list[str]
) -> dict[str, Any]:
    return dataset_report(job, uri, entries, columns)


def dataset_report(
    job: JobSpec, uri: str, entries: list[ShardEntry], columns: list[str]
) -> dict[str, Any]:
    """Every metric over every shard, as parallel Ray tasks whose summaries merge exactly;
    sample-based and model-based metrics on a seeded sample drawn evenly from the shards.
    Ray must be connected."""
    from synthfactory.metrics.report import clean

    if not entries:
        return {"modality": job.modality, "not_applicable": "the dataset has no rows"}
    if job.modality == "tabular":
        report = _tabular(job, uri, entries, columns)
    elif job.modality == "text":
        report = _text(job, uri, entries, columns)
    else:
        report = _image(job, uri, entries)
    return dict(clean(report))


def _summaries(job: JobSpec, summary: Any, uri: str, entries: list[ShardEntry]) -> dict[str, Any]:
    """Each shard summarised by a Ray task (as many at once as the cluster fits), merged."""
    import ray

    from synthfactory_workers.metrics_tasks import summarize_shard

    options = _task_options(job, gpu=False)
    remote = ray.remote(summarize_shard).options(**options)
    shared = ray.put(summary)
    storage = job.storage.model_dump(mode="json")
    refs = [remote.remote(shared, uri, storage, e.path, e.index) for e in entries]
    merged: dict[str, Any] = type(summary).merge(_get(refs))
    return merged


def _model_metrics(
    job: JobSpec, sample: pd.DataFrame, reference: list[Any] | None
) -> dict[str, Any]:
    import ray

    from synthfactory_workers.metrics_tasks import model_metrics

    gpu = job.resources.num_gpus > 0
    remote = ray.remote(model_metrics).options(**_task_options(job, gpu=gpu))
    device = "cuda" if gpu else "cpu"
    result: dict[str, Any] = _get(
        [remote.remote(job.model_dump(mode="json"), sample, reference, device)]
    )[0]
    return result


def _task_options(job: JobSpec, gpu: bool) -> dict[str, Any]:
    from synthfactory_workers.pool import actor_options

    options = actor_options(job)
    for key in ("max_restarts", "max_task_retries", "max_concurrency", "name", "lifetime"):
        options.pop(key, None)
    if not gpu:
        options.pop("num_gpus", None)
        options.pop("resources", None)
    options["max_retries"] = 2
    return options


def _get(refs: list[Any]) -> list[Any]:
    import ray

    from synthfactory_workers.pool import unwrap

    try:
        return list(ray.get(refs))
    except Exception as exc:
        raise unwrap(exc) from None


def _tabular(
    job: JobSpec, uri: str, entries: list[ShardEntry], columns: list[str]
) -> dict[str, Any]:
    from synthfactory.metrics.report import tabular_report
    from synthfactory.metrics.sampling import quotas
    from synthfactory.metrics.tabular_sharded import SYNTHETIC_FLAG, TabularSummary

    reference = reference_uri(job)
    if reference is None:
        return {
            "modality": "tabular",
            "not_applicable": "no reference table: set metrics.reference",
        }
    real = read_table(reference, job.storage).to_pandas()
    config = job.metrics
    sizes = {e.index: e.rows for e in entries}
    summary = TabularSummary.plan(real, columns, config, quotas(sizes, config.max_rows))
    merged = _summaries(job, summary, uri, entries)
    real_summary = summary.partial(real, -1)
    exact = {
        "quality": summary.quality(real_summary, merged),
        "exact_copy_rate": merged["copies"] / max(merged["rows"], 1),
        "representation": summary.representation(real_summary, merged),
    }
    report = tabular_report(real, merged["sample"], config, exact)
    report["reference"] = reference
    report["rows_scored"] = merged["rows"]
    report["rows_sampled"] = len(merged["sample"])
    if SYNTHETIC_FLAG in columns:
        report["scored"] = f"synthetic rows only (the dataset's {SYNTHETIC_FLAG} column)"
    return report


def _reference_values(job: JobSpec, column: str) -> list[Any] | None:
    """The reference table's texts (or images), when there is one."""
    from synthfactory.metrics.text_sharded import text_column

    uri = job.metrics.reference or (
        getattr(getattr(job.generator, "prompt", None), "source", None)
        if job.modality == "text"
        else None
    )
    if uri is None:
        return None
    table = read_table(uri, job.storage)
    names = [str(c) for c in table.column_names]
    name = column if column in names else text_column(names) if job.modality == "text" else None
    if name is None:
        strings = [f.name for f in table.schema if str(f.type) in ("string", "large_string")]
        name = strings[0] if strings and job.modality == "text" else None
    if name is None:
        return None
    values = table.column(name).to_pylist()
    if len(values) > job.metrics.model_sample * 10 and job.modality == "image":
        import numpy as np

        rng = np.random.default_rng(job.metrics.seed)
        values = [values[i] for i in rng.choice(len(values), job.metrics.model_sample, False)]
    return values


def _text(job: JobSpec, uri: str, entries: list[ShardEntry], columns: list[str]) -> dict[str, Any]:
    from synthfactory.metrics.sampling import quotas
    from synthfactory.metrics.text_sharded import TextSummary, reference_grams, text_column

    column = text_column(columns)
    if column is None:
        return {"modality": "text", "not_applicable": "no completion or text column"}
    config = job.metrics
    reference = _reference_values(job, column)
    reference = [str(t) for t in reference if t is not None] if reference else None
    summary = TextSummary(
        column,
        quotas({e.index: e.rows for e in entries}, config.model_sample),
        config.seed,
        reference_grams(reference) if reference else None,
        dict(config.groups),
        ["prompt"],
    )
    merged = _summaries(job, summary, uri, entries)
    report: dict[str, Any] = {"modality": "text", **summary.finish(merged)}
    models = _model_metrics(job, merged["sample"], reference)
    report["quality"]["embedding"] = models["embedding"]
    report["quality"]["perplexity"] = models["perplexity"]
    bias: dict[str, Any] = {"counterfactual": models["counterfactual"]}
    if config.groups:
        from synthfactory.metrics.text_bias import mention_shares

        bias["mentions"] = mention_shares(merged["mentions"])
    else:
        bias["mentions"] = {"not_applicable": "no metrics.groups declared"}
    report["bias"] = bias
    report["reference"] = job.metrics.reference
    report["rows_scored"] = merged["rows"]
    return report


def _image(job: JobSpec, uri: str, entries: list[ShardEntry]) -> dict[str, Any]:
    from synthfactory.metrics.image_sharded import ImageSummary, image_bytes
    from synthfactory.metrics.sampling import quotas

    config = job.metrics
    summary = ImageSummary(
        quotas({e.index: e.rows for e in entries}, config.model_sample), config.seed
    )
    merged = _summaries(job, summary, uri, entries)
    reference = _reference_values(job, "image")
    images = [image_bytes(v) for v in reference] if reference else None
    report: dict[str, Any] = {
        "modality": "image",
        "quality": summary.finish(merged),
        "privacy": {"not_applicable": "no image privacy metric is defined yet"},
        "bias": {"not_applicable": "no image bias metric is defined yet"},
    }
    report["quality"]["embedding"] = _model_metrics(job, merged["sample"], images)["embedding"]
    report["rows_scored"] = merged["rows"]
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
    if entries:
        from synthfactory.metrics.card import text_plots, thumbnails

        synthetic = read_synthetic(
            store, entries, 20_000 if job.modality == "image" else 200_000, job.metrics.seed
        )
        figures: dict[str, bytes] = {}
        if job.modality == "tabular":
            figures = plots(real, synthetic)
        elif job.modality == "text":
            from synthfactory.metrics.text_sharded import text_column

            column = text_column([str(c) for c in synthetic.columns])
            if column:
                figures = text_plots([str(t) for t in synthetic[column].fillna("")])
        elif "image" in synthetic.columns:
            from synthfactory.metrics.image_sharded import image_bytes

            figures = thumbnails([image_bytes(v) for v in synthetic["image"].head(16)])
        for name, png in figures.items():
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
