"""Where each part of a dataset version lives, relative to the version's prefix.

{output}/{version}/
    _job.json                 spec + hash, written when the job starts (claims the version)
    _lease.json               who writes the version now, until when (one writer: lease.py)
    _progress.json            live progress, rewritten by the flow while it runs
    _shards/part-00000.json   commit marker: written only after the shard's files are whole
    data/part-00000.parquet   accepted rows
    data/<table>/part-00000.parquet  relational jobs: each table's rows of the shard (the
                              root table's file is the shard's main `path`)
    rejected/part-00000.parquet  rows dropped by filters, with a `reason` column
    _sidecar/part-00000.parquet  private `__` columns (dedup hashes) for whole-dataset passes
    _superseded/data/...      shard files the published version does not use (rewritten by
                              dedup or a trim, or trimmed to nothing): moved out of data/ and
                              rejected/ before the manifest is written, so that a reader of
                              data/ sees exactly the manifest's rows; moved back on a resume
    manifest.json             the commit point: a version is visible only once this exists

{output}/_quarantine/{version}/   the same files, for a version that failed a gate: moved
                                  out of the published prefixes, with its report and card
"""

from __future__ import annotations

JOB = "_job.json"
LEASE = "_lease.json"
SUPERSEDED = "_superseded/"
PUBLIC_PREFIXES = ("data/", "rejected/")
"""What readers take: after publishing, exactly the files the manifest names."""
PROGRESS = "_progress.json"
MANIFEST = "manifest.json"
METRICS = "metrics.json"
METRICS_TABLE = "metrics.parquet"
CARD = "README.md"
MARKERS = "_shards/"
SIDECAR_PREFIX = "__"
QUARANTINE = "_quarantine"


def shard_name(index: int) -> str:
    return f"part-{index:05d}"


def data_key(index: int, generation: int = 0) -> str:
    suffix = f"-r{generation}" if generation else ""
    return f"data/{shard_name(index)}{suffix}.parquet"


def table_key(table: str, index: int) -> str:
    """A relational shard's file of one table."""
    return f"data/{table}/{shard_name(index)}.parquet"


def rejected_key(index: int) -> str:
    return f"rejected/{shard_name(index)}.parquet"


def sidecar_key(index: int) -> str:
    return f"_sidecar/{shard_name(index)}.parquet"


def marker_key(index: int) -> str:
    return f"{MARKERS}{shard_name(index)}.json"


def version_label(spec_hash: str) -> str:
    """Default version name: content-addressed, so the same spec resumes the same version."""
    return f"v-{spec_hash[:12]}"
