"""Stage 4 of the generation flow: the kept shards become a dataset version. Metrics,
the card and the manifest are written; the version is published when every gate passes
(and the budget was not reached), else moved under _quarantine/ with a named error."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger
from prefect.runtime import flow_run

from synthfactory.dataset import DatasetVersion, Manifest, ShardEntry, layout
from synthfactory.dataset.manifest import SchemaInfo, TableInfo, utcnow
from synthfactory.errors import GateFailedError, GenerationError
from synthfactory.lineage import lineage
from synthfactory.metrics.gates import evaluate as evaluate_gates
from synthfactory.spec import JobSpec
from synthfactory_flows.budget import BudgetReachedError, Spend
from synthfactory_flows.evaluate import (
    compute_metrics,
    publish_artifacts,
    write_card,
    write_report,
)
from synthfactory_flows.plan import SEED_DERIVATION
from synthfactory_flows.runner import ShardRunner
from synthfactory_flows.select import Selection
from synthfactory_workers.ray_runtime import connect


@dataclass
class Chosen:
    """What ``select_and_top_up`` kept: the shards (rewritten where rows were dropped)."""

    entries: list[ShardEntry]
    selection: Selection
    rounds: int
    paid: dict[str, float]
    """Stats summed over every shard generated, kept rows or not (tokens, requests, cost
    and pipeline counts are paid for by shards that ended up empty too)."""


def finish_version(
    job: JobSpec,
    target: DatasetVersion,
    chosen: Chosen,
    runner: ShardRunner,
    spec_hash: str,
    fingerprints: dict[str, str],
    started: float,
) -> dict[str, Any]:
    """Stage 4. Writes metrics.json, the card and then the manifest: published when every
    gate passes, else moved under _quarantine/ (GateFailedError). Returns the summary."""
    manifest = build_manifest(job, target, chosen, runner, spec_hash, fingerprints, started)
    progress = runner.progress
    report = None
    if job.metrics.enabled:
        progress.update(state="evaluating", force=True)
        connect(runner.ray_address)
        columns = [f["name"] for f in manifest.data_schema.fields]
        report = compute_metrics(job, target.uri, manifest.shards, columns)
        write_report(target.store, report)
        manifest.metrics = layout.METRICS
    progress.update(phase="publishing")
    manifest.gates = evaluate_gates(job.gates, report or {})
    if runner.spend.reached:
        manifest.gates.append(runner.spend.gate())
    failed = [g for g in manifest.gates if not g["passed"]]
    manifest.status = "quarantined" if failed else manifest.status
    write_card(job, target.store, manifest, report)
    if failed:
        progress.update(state="quarantined", rows_done=manifest.rows, force=True)
        moved = target.quarantine(manifest)
        publish_artifacts(manifest, report)
        if runner.spend.reached:
            raise budget_failure(job, runner.spend, moved.uri)
        raise gate_failure(job, failed, moved.uri)
    target.publish(manifest)
    publish_artifacts(manifest, report)
    progress.update(state="completed", rows_done=manifest.rows, force=True)
    get_run_logger().info(
        "published %s: %d rows in %d shards", target.uri, manifest.rows, len(manifest.shards)
    )
    return summary(manifest, target.uri, time.perf_counter() - started)


def build_manifest(
    job: JobSpec,
    target: DatasetVersion,
    chosen: Chosen,
    runner: ShardRunner,
    spec_hash: str,
    fingerprints: dict[str, str],
    started: float,
) -> Manifest:
    """The manifest of the kept shards (not yet written): schema, lineage, timings, stats."""
    entries, selection = chosen.entries, chosen.selection
    total = sum(e.rows for e in entries)
    if total != job.target_rows:
        get_run_logger().warning(
            "target not met: %d of %d rows accepted after %d top-up round(s)",
            *(total, job.target_rows, chosen.rounds),
        )
    timings = runner.timings
    timings["finished_at"] = utcnow()
    timings["seconds"] = time.perf_counter() - started
    return Manifest(
        name=job.name,
        version=target.version,
        modality=job.modality,
        rows=total,
        rejected_rows=sum(e.rejected_rows for e in entries),
        shards=entries,
        schema=SchemaInfo.from_arrow(runner.schema or _schema(target, entries)),
        spec=job.model_dump(mode="json"),
        spec_hash=spec_hash,
        fingerprints=fingerprints,
        seeds={"master": job.seed, "derivation": SEED_DERIVATION},
        generator=runner.identity or {"generator": job.generator.kind},
        lineage=lineage(),
        timings=timings,
        stats={
            **chosen.paid,
            **{f"dropped_{k}": float(v) for k, v in selection.dropped.items()},
            "rows_generated": float(selection.produced),
            "top_up_rounds": float(chosen.rounds),
        },
        target_rows=job.target_rows,
        target_met=total == job.target_rows,
        privacy_budget=runner.privacy_budget,
        flow_run={"id": str(flow_run.get_id() or ""), "name": str(flow_run.get_name() or "")},
        tables=table_infos(job, target, entries),
        relationships=job.generator.relationship_keys(),
    )


def table_infos(
    job: JobSpec, target: DatasetVersion, entries: list[ShardEntry]
) -> dict[str, TableInfo]:
    """Relational datasets: each table's rows, primary key and schema (read from the
    footer of its first non-empty file); empty for single-table datasets."""
    from synthfactory.dataset.parquet import decode

    names = list(entries[0].tables) if entries else []
    keys = job.generator.primary_keys()
    out: dict[str, TableInfo] = {}
    for name in names:
        files = [e.tables[name] for e in entries if name in e.tables]
        first = next((f for f in files if f.rows), files[0])
        schema = decode(target.store.get_bytes(first.path)).schema
        out[name] = TableInfo(
            rows=sum(f.rows for f in files),
            primary_key=keys.get(name),
            schema=SchemaInfo.from_arrow(schema),
        )
    return out


def budget_failure(job: JobSpec, spend: Spend, where: str) -> BudgetReachedError:
    return BudgetReachedError(
        f"{job.name} stopped at its budget: {spend.describe()}; the shards made so far are "
        f"kept, quarantined under {where}",
        fix="raise budget.max_cost_usd / budget.max_tokens and re-run: the version resumes "
        "and nothing already paid for is asked again",
    )


def gate_failure(job: JobSpec, failed: list[dict[str, Any]], where: str) -> GateFailedError:
    described = "; ".join(
        f"{g['metric']} {g['condition']} failed (value: "
        f"{g['value'] if g['value'] is not None else g.get('reason')})"
        for g in failed
    )
    return GateFailedError(
        f"{job.name} was quarantined, not published: {described}; data, report and card "
        f"are under {where}",
        fix="see metrics.json and README.md there; adjust the generator or the gates and "
        "re-run (the data is reused, gates are checked again)",
    )


def _schema(target: DatasetVersion, entries: list[ShardEntry]) -> Any:
    from synthfactory.dataset.parquet import decode

    if not entries:
        raise GenerationError("the job produced no shards")
    return decode(target.store.get_bytes(entries[0].path)).schema


def summary(manifest: Manifest, uri: str, seconds: float, resumed: bool = False) -> dict[str, Any]:
    return {
        "uri": uri,
        "name": manifest.name,
        "version": manifest.version,
        "status": manifest.status,
        "rows": manifest.rows,
        "shards": len(manifest.shards),
        "rejected_rows": manifest.rejected_rows,
        "target_rows": manifest.target_rows or manifest.rows,
        "target_met": manifest.target_met,
        "seconds": seconds,
        "already_complete": resumed,
        "timings": manifest.timings,
    }
