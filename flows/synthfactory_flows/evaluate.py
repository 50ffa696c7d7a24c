"""After generation: metrics, gates, the dataset card, and Prefect artifacts."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from synthfactory.dataset import layout, parquet
from synthfactory.jsonsafe import clean
from synthfactory.metrics.evaluators import Evaluator, ShardSummary, evaluator_class
from synthfactory.registry import import_object
from synthfactory.spec import JobSpec
from synthfactory_flows.artifacts import artifact_key
from synthfactory_workers.devices import requested_device
from synthfactory_workers.pool import task_options, unwrap

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.dataset import Dataset, Manifest, ShardEntry
    from synthfactory.storage import ObjectStore


def read_synthetic(
    store: ObjectStore, entries: list[ShardEntry], max_rows: int, seed: int
) -> pd.DataFrame:
    """A seeded sample of at most ``max_rows`` rows from the first shards that hold that
    many (shards are independent draws, so the rest need not be read)."""
    import pyarrow as pa

    tables, rows = [], 0
    for entry in entries:
        if rows >= max_rows:
            break
        tables.append(parquet.decode(store.get_bytes(entry.path)))
        rows += tables[-1].num_rows
    df = pa.concat_tables(tables, promote_options="default").to_pandas()
    return df.sample(max_rows, random_state=seed) if len(df) > max_rows else df


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
    The modality's ``Evaluator`` says what to compute. Ray must be connected."""
    if not entries:
        return {"modality": job.modality, "not_applicable": "the dataset has no rows"}
    sizes = {e.index: e.rows for e in entries}
    evaluator = evaluator_class(job.modality)(job, columns, sizes, uri=uri, entries=entries)
    reason = evaluator.not_applicable()
    if reason:
        return {"modality": job.modality, "not_applicable": reason}
    merged = _summaries(job, evaluator.summary(), uri, entries)
    inputs = evaluator.model_inputs(merged)
    models = _model_metrics(job, evaluator, *inputs) if inputs is not None else {}
    return dict(clean(evaluator.report(merged, models)))


def _summaries(
    job: JobSpec, summary: ShardSummary, uri: str, entries: list[ShardEntry]
) -> dict[str, Any]:
    """Each shard summarised by a Ray task (as many at once as the cluster fits), merged."""
    import ray

    from synthfactory_workers.metrics.tasks import summarize_shard

    remote = ray.remote(summarize_shard).options(**task_options(job, gpu=False, retries=2))
    shared = ray.put(summary)
    storage = job.storage.model_dump(mode="json")
    refs = [remote.remote(shared, uri, storage, e.path, e.index) for e in entries]
    merged: dict[str, Any] = type(summary).merge(_get(refs))
    return merged


def _model_metrics(
    job: JobSpec, evaluator: Evaluator, sample: pd.DataFrame, reference: list[Any] | None
) -> dict[str, Any]:
    """The evaluator's model-based metrics in one Ray task (on a GPU when the job has one)."""
    import ray

    if evaluator.model_task is None:
        return {}
    task: Any = import_object(evaluator.model_task)
    device = requested_device(job.resources.num_gpus)
    remote = ray.remote(task).options(**task_options(job, gpu=device == "cuda", retries=2))
    result: dict[str, Any] = _get([remote.remote(job, sample, reference, device)])[0]
    return result


def _get(refs: list[Any]) -> list[Any]:
    import ray

    try:
        return list(ray.get(refs))
    except Exception as exc:
        raise unwrap(exc) from None


def write_report(store: ObjectStore, report: dict[str, Any]) -> None:
    from synthfactory.metrics.report import to_arrow, to_json

    store.put_text(layout.METRICS, to_json(report))
    store.put_bytes(layout.METRICS_TABLE, parquet.encode(to_arrow(report)))


def write_card(
    job: JobSpec, store: ObjectStore, manifest: Manifest, report: dict[str, Any] | None
) -> None:
    """README.md beside the data: summary, metrics, sample rows (every table of a
    multi-table dataset, images as thumbnails) and the evaluator's plots. A plot that cannot
    be drawn is left out (and logged): the card is always written."""
    import pandas as pd

    from synthfactory.metrics.card import render
    from synthfactory.metrics.card_plots import sample_images

    entries = manifest.shards
    sample = pd.DataFrame()
    tables: dict[str, pd.DataFrame] = {}
    files: dict[str, bytes] = {}
    if entries:
        sample = parquet.decode(store.get_bytes(entries[0].path)).slice(0, 5).to_pandas()
        first = entries[0].tables
        for name in manifest.tables or first:
            if name in first:
                head = parquet.decode(store.get_bytes(first[name].path)).slice(0, 5)
                tables[name] = head.to_pandas()
        if tables:
            for name, frame in tables.items():
                files.update(sample_images(frame, name))
        else:
            files.update(sample_images(sample))
        try:
            files.update(_figures(job, store, entries))
        except Exception:  # the card without plots rather than no card (or no version)
            logger.warning("card of %s: no plots", manifest.name, exc_info=True)
    for name, png in files.items():
        store.put_bytes(name, png)
    card = render(manifest, report, sample, list(files), tables or None)
    store.put_text(layout.CARD, card)


def _figures(job: JobSpec, store: ObjectStore, entries: list[ShardEntry]) -> dict[str, bytes]:
    cls = evaluator_class(job.modality)
    synthetic = read_synthetic(store, entries, cls.figure_rows, job.metrics.seed)
    columns = [str(c) for c in synthetic.columns]
    sizes = {e.index: e.rows for e in entries}
    return cls(job, columns, sizes, uri=store.uri, entries=entries).figures(synthetic)


def update_metrics(job: JobSpec, ds: Dataset) -> dict[str, Any]:
    """``synthfactory metrics``: score an existing version (Ray connected) and merge the
    report over the one stored beside it (``report.merge``: newer values win; sections and
    metrics this run did not compute, such as utility without ``--target``, are kept). Writes
    metrics.json, the card (so it shows what metrics.json holds) and the manifest's
    ``metrics`` pointer; gates keep the results that decided publication. Returns the merged
    report; ConfigError when nothing can be scored."""
    from synthfactory.errors import ConfigError
    from synthfactory.metrics.report import merge

    columns = [f["name"] for f in ds.manifest.data_schema.fields]
    report = dataset_report(job, ds.uri, ds.manifest.shards, columns)
    if report.get("not_applicable"):
        raise ConfigError(f"no metrics: {report['not_applicable']}", fix="pass --reference")
    earlier = read_report(ds.store)
    merged = merge(earlier, report) if earlier else report
    write_report(ds.store, merged)
    manifest = ds.manifest.model_copy(update={"metrics": layout.METRICS})
    write_card(job, ds.store, manifest, merged)
    ds.store.put_text(layout.MANIFEST, manifest.to_json())
    return merged


def read_report(store: ObjectStore) -> dict[str, Any] | None:
    """The metrics.json beside a version, or None (none yet, or unreadable: logged)."""
    import json

    if not store.exists(layout.METRICS):
        return None
    try:
        report = json.loads(store.get_bytes(layout.METRICS))
    except ValueError:
        logger.warning("%s is not readable JSON: replaced", store.url(layout.METRICS))
        return None
    return report if isinstance(report, dict) else None


def publish_artifacts(manifest: Manifest, report: dict[str, Any] | None) -> None:
    """The report in the Prefect UI: a markdown summary and a table of every metric."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from synthfactory.metrics.catalogue import listed
    from synthfactory.metrics.report import flatten

    key = artifact_key(manifest.name)
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
        rows = [{"metric": k, "value": round(float(v), 6)} for k, v in flatten(report) if listed(k)]
        create_table_artifact(rows, key=f"{key}-metrics", description="synthfactory metrics")
