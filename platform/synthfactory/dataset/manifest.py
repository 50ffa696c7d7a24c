"""The manifest: the one file that makes a dataset version exist."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from synthfactory.dataset import layout
from synthfactory.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

    from synthfactory.storage import ObjectStore

FORMAT = "synthfactory.dataset/1"
Status = Literal["published", "quarantined"]


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class TableFile(BaseModel):
    """One table's file of a relational shard."""

    path: str
    rows: int
    bytes: int
    sha256: str


class ShardEntry(BaseModel):
    """One committed shard. Also the content of its commit marker."""

    model_config = ConfigDict(extra="ignore")

    index: int
    row_start: int
    seed: int
    rows: int
    path: str
    bytes: int
    sha256: str
    rejected_path: str | None = None
    rejected_rows: int = 0
    sidecar_path: str | None = None
    tables: dict[str, TableFile] = Field(default_factory=dict)
    """Relational shards: every table's file, the root table's first (it is also ``path``)."""
    stats: dict[str, float] = Field(default_factory=dict)
    seconds: float = 0.0
    worker: str = ""
    committed_at: str = Field(default_factory=utcnow)


class SchemaInfo(BaseModel):
    fields: list[dict[str, Any]]
    arrow: str = Field(description="The Arrow schema, IPC-serialised, base64.")

    @classmethod
    def from_arrow(cls, schema: pa.Schema) -> SchemaInfo:
        fields = [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]
        return cls(fields=fields, arrow=base64.b64encode(schema.serialize().to_pybytes()).decode())

    def to_arrow(self) -> pa.Schema:
        import pyarrow as pa

        return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(self.arrow)))


class TableInfo(BaseModel):
    """One table of a relational dataset."""

    rows: int
    primary_key: str | None = None
    data_schema: SchemaInfo = Field(alias="schema")

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: str = FORMAT
    name: str
    version: str
    status: Status = "published"
    modality: str
    created_at: str = Field(default_factory=utcnow)
    rows: int
    target_rows: int = 0
    target_met: bool = True
    rejected_rows: int = 0
    shards: list[ShardEntry]
    data_schema: SchemaInfo = Field(alias="schema")
    spec: dict[str, Any]
    spec_hash: str
    fingerprints: dict[str, str] = Field(default_factory=dict)
    seeds: dict[str, Any] = Field(default_factory=dict)
    generator: dict[str, str] = Field(default_factory=dict)
    lineage: dict[str, Any] = Field(default_factory=dict)
    timings: dict[str, float | str] = Field(default_factory=dict)
    stats: dict[str, float] = Field(default_factory=dict)
    metrics: str | None = None
    gates: list[dict[str, Any]] = Field(default_factory=list)
    privacy_budget: dict[str, Any] | None = Field(
        None,
        description="Differential privacy of the fit: {epsilon, delta, mechanisms: "
        "[{statistic, mechanism, epsilon, delta, sensitivity, noise_scale}]}; the "
        "mechanisms' epsilons and deltas add up to epsilon and delta.",
    )
    flow_run: dict[str, str] = Field(default_factory=dict)
    tables: dict[str, TableInfo] = Field(default_factory=dict)
    """Relational datasets: every table (the root first; its rows are ``rows``)."""
    relationships: list[dict[str, str]] = Field(default_factory=list)
    """Relational datasets: ``{parent, child, foreign_key}`` per link."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, by_alias=True)


class BrokenManifestError(ConfigError):
    """A manifest exists but cannot be read (truncated, not JSON, not a manifest)."""


def read_manifest(store: ObjectStore, key: str = layout.MANIFEST) -> Manifest:
    """The manifest at ``key``; BrokenManifestError when it is there but unreadable
    (FileNotFoundError when it is not there)."""
    data = store.get_bytes(key)
    try:
        return Manifest.model_validate_json(data)
    except ValueError as exc:  # pydantic's ValidationError (bad JSON included) is a ValueError
        first = str(exc.errors()[0]["msg"]) if isinstance(exc, ValidationError) else str(exc)
        raise BrokenManifestError(
            f"{store.url(key)} is not a readable manifest ({len(data)} bytes: {first})",
            fix="restore it from a backup, or delete the version folder and run the job again "
            "(its committed shards are resumed)",
        ) from None
