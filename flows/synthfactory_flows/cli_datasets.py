"""``synthfactory metrics`` and ``synthfactory datasets``: score and browse datasets that
exist."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import click

from synthfactory_flows.cli_common import friendly_errors

if TYPE_CHECKING:
    from synthfactory.dataset import VersionInfo


@click.command()
@click.argument("uri")
@click.option(
    "--reference",
    help="Real table (or texts/images) to compare with (default: the spec's reference/source).",
)
@click.option("--target", help="Target column for utility and fairness metrics (tables).")
@click.option("--sensitive", multiple=True, help="Sensitive column for bias metrics (tables).")
@click.option("--perplexity-model", help="Reference LM for text perplexity.")
@click.option(
    "--image-encoder",
    help="Image encoder for embedding diversity and Frechet distance (a full CLIP model: also "
    "CLIP score).",
)
@click.option("--ray-address", envvar="RAY_ADDRESS", help="Ray cluster to use (default: local).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@friendly_errors
def metrics(
    uri: str,
    reference: str | None,
    target: str | None,
    sensitive: tuple[str, ...],
    perplexity_model: str | None,
    image_encoder: str | None,
    ray_address: str | None,
    as_json: bool,
) -> None:
    """Compute quality, privacy and bias metrics for an existing dataset (tabular, text or
    image) on Ray; store them beside it and rewrite its card. The new report is merged over
    the stored one: newer values win, and what this run does not compute (utility without
    --target, say) keeps its earlier numbers."""
    from synthfactory.dataset import open_dataset
    from synthfactory.metrics.catalogue import listed
    from synthfactory.metrics.report import flatten, to_json
    from synthfactory.spec import load_spec
    from synthfactory_flows.evaluate import update_metrics
    from synthfactory_workers.ray_runtime import connect

    ds = open_dataset(uri)
    job = load_spec(ds.manifest.spec)
    changes = {
        "reference": reference,
        "target_column": target,
        "sensitive_columns": list(sensitive) or None,
        "perplexity_model": perplexity_model,
        "image_encoder": image_encoder,
    }
    config = job.metrics.model_copy(update={k: v for k, v in changes.items() if v})
    job = job.model_copy(update={"metrics": config})
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    connect(ray_address)
    report = update_metrics(job, ds)
    if as_json:
        click.echo(to_json(report))
        return
    for name, value in flatten(report):
        if listed(name):
            click.echo(f"{name:<48} {value:.4f}")
    click.echo(f"written: {ds.store.url('metrics.json')} and {ds.store.url('README.md')}")


@click.group()
def datasets() -> None:
    """Browse datasets on a local folder or S3."""


@datasets.command("ls")
@click.argument("uri")
@friendly_errors
def datasets_ls(uri: str) -> None:
    """List dataset versions under URI (published, quarantined, running, crashed, broken).
    A version whose manifest cannot be read is listed as broken, with a warning."""
    from synthfactory.dataset import list_versions
    from synthfactory.storage import open_store

    versions = list_versions(open_store(uri))
    if not versions:
        click.echo(f"no datasets under {uri}")
        return
    _warn_broken(versions)
    click.echo(f"{'STATUS':<12} {'ROWS':>10} {'SHARDS':>7}  {'CREATED':<21} URI")
    for v in versions:
        m = v.manifest
        if m is not None:
            click.echo(
                f"{v.status:<12} {m.rows:>10} {len(m.shards):>7}  {m.created_at:<21} {v.uri}"
            )
        elif v.error is not None:
            click.echo(f"{v.status:<12} {'?':>10} {'?':>7}  {'':<21} {v.uri}")
        else:
            p = v.progress or {}
            done = f"{p.get('rows_done', '?')}/{p.get('target_rows', '?')}"
            click.echo(f"{v.status:<12} {done:>10} {'':>7}  {'':<21} {v.uri}")


def _warn_broken(versions: list[VersionInfo]) -> None:
    for v in versions:
        if v.error is not None:
            first = str(v.error).splitlines()[0]
            click.secho(f"warning: skipped a broken version: {first}", fg="yellow", err=True)


@datasets.command("show")
@click.argument("uri")
@click.option("--rows", "-n", default=5, show_default=True, help="Sample rows to print.")
@friendly_errors
def datasets_show(uri: str, rows: int) -> None:
    """Manifest summary, schema and sample rows of a dataset (newest version under URI).
    Versions with a broken manifest are skipped, with a warning."""
    from synthfactory.dataset import layout, list_versions, open_dataset
    from synthfactory.storage import open_store

    store = open_store(uri)
    if not store.exists(layout.MANIFEST):  # a root: say which versions are skipped
        _warn_broken(list_versions(store))
    ds = open_dataset(uri)
    m = ds.manifest
    click.echo(f"dataset:   {m.name} ({m.modality})")
    click.echo(f"uri:       {ds.uri}")
    click.echo(f"version:   {m.version}  status: {m.status}  created: {m.created_at}")
    click.echo(f"rows:      {m.rows} in {len(m.shards)} shards, {m.rejected_rows} rejected")
    click.echo(f"generator: {json.dumps(m.generator)}")
    click.echo(f"spec hash: {m.spec_hash[:16]}  code: {m.lineage.get('code_version', '?')}")
    # a multi-table dataset (relational; sequential: entities and their steps): every table
    for name, info in m.tables.items():
        click.echo(f"schema of table {name} ({info.rows} rows):")
        for field in info.data_schema.fields:
            click.echo(f"  {field['name']}: {field['type']}")
    if not m.tables:
        click.echo("schema:")
        for field in m.data_schema.fields:
            click.echo(f"  {field['name']}: {field['type']}")
    if rows > 0:
        import pandas as pd

        from synthfactory.dataset import parquet

        heads: dict[str | None, Any] = {None: ds.head(rows)} if not m.tables else {}
        first = m.shards[0].tables if m.shards else {}
        for name in m.tables:
            if name in first:  # the first shard's rows of the table, not the whole table
                heads[name] = parquet.decode(ds.store.get_bytes(first[name].path)).slice(0, rows)
        with pd.option_context(
            "display.max_columns", 20, "display.width", 120, "display.max_colwidth", 40
        ):
            for table, head in heads.items():
                click.echo(f"first {rows} rows" + (f" of table {table}:" if table else ":"))
                click.echo(head.to_pandas().to_string(index=False))
