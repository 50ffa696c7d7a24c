"""What the dashboard shows, read from manifests and progress records on storage."""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import urlencode

from synthfactory.dataset import VersionInfo, layout, list_versions, open_dataset
from synthfactory.dataset.manifest import Manifest
from synthfactory.storage import open_store


def version_row(root: str, info: VersionInfo) -> dict[str, Any]:
    m: Manifest | None = info.manifest
    row: dict[str, Any] = {
        "root": root,
        "uri": info.uri,
        "status": info.status,
        "openable": m is not None,
    }
    if info.error:
        row["error"] = info.error
    if m is not None:
        row.update(
            name=m.name,
            version=m.version,
            modality=m.modality,
            rows=m.rows,
            target_rows=m.target_rows or m.rows,
            target_met=m.target_met,
            shards=len(m.shards),
            rejected_rows=m.rejected_rows,
            created_at=m.created_at,
            gates=m.gates,
            flow_run_id=m.flow_run.get("id", ""),
            seconds=m.timings.get("seconds"),
        )
    # the history is the run page's (``/api/run``): the catalog, polled often, stays small
    progress = {k: v for k, v in (info.progress or {}).items() if k != "history"}
    if progress:
        row.update(
            name=progress.get("name"),
            version=progress.get("version"),
            rows=progress.get("rows_done", 0),
            target_rows=progress.get("target_rows"),
            progress=progress,
            flow_run_id=progress.get("flow_run_id", ""),
        )
    if info.lease is not None:
        row["lease"] = {
            k: info.lease.get(k) for k in ("owner", "host", "pid", "expires_at", "machine")
        }
    return row


def catalog(roots: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for root in roots:
        try:
            rows.extend(version_row(root, v) for v in list_versions(open_store(root)))
        except Exception as exc:  # shown in the page: one bad root must not hide the others
            rows.append({"root": root, "uri": root, "status": "error", "error": str(exc)})
    return rows


class NotFound(LookupError):
    """The row, column or file asked for is not there (HTTP 404)."""


class Unreadable(Exception):
    """A stored file is there but cannot be decoded (HTTP 502)."""


def detail(uri: str, sample: int = 8) -> dict[str, Any]:
    """What the page shows for one version. A shard or metrics file that cannot be read is
    reported in the answer (``sample_error``, ``metrics.error``); the manifest still shows."""
    ds = open_dataset(uri)
    m = ds.manifest
    image_columns: list[str] = []
    records: list[dict[str, Any]] = []
    sample_error = None
    try:
        head = ds.head(sample)
        image_columns = [f.name for f in head.schema if is_image(f)]
        records = (
            head.drop_columns(image_columns).to_pylist() if image_columns else head.to_pylist()
        )
    except Exception as exc:  # a damaged shard: pyarrow, storage and decode errors alike
        sample_error = f"the first shard cannot be read: {exc}"
    for i, record in enumerate(records):
        for column in image_columns:
            query = urlencode({"uri": ds.uri, "row": i, "column": column})
            record[column] = {"thumbnail": f"/api/thumbnail?{query}"}
    metrics: Any = None
    if ds.store.exists(layout.METRICS):
        try:
            metrics = json.loads(ds.store.get_bytes(layout.METRICS))
        except ValueError as exc:
            metrics = {"error": f"{layout.METRICS} cannot be read: {exc}"}
    plots = [k for k in ds.store.list("plots/") if k.endswith(".png")]
    return finite(
        {
            "uri": ds.uri,
            "plots": [file_url(ds.uri, k) for k in plots[:24]],
            "card": file_url(ds.uri, layout.CARD) if ds.store.exists(layout.CARD) else None,
            "manifest": m.model_dump(mode="json", by_alias=True, exclude={"shards"}),
            "shards": [s.model_dump(mode="json") for s in m.shards[:200]],
            "sample": [{k: show_value(v) for k, v in r.items()} for r in records],
            "sample_error": sample_error,
            "image_columns": image_columns,
            "metrics": metrics,
        }
    )


def file_url(uri: str, key: str) -> str:
    return "/api/file?" + urlencode({"uri": uri, "key": key})


def thumbnail(uri: str, row: int, column: str, size: int = 128) -> bytes:
    """A PNG thumbnail of one image cell (``row`` counts over the version's shards)."""
    import io

    from PIL import Image

    from synthfactory.dataset.parquet import decode

    if row < 0:
        raise NotFound(f"no row {row}")
    ds = open_dataset(uri)
    start, shard = 0, None
    for entry in ds.manifest.shards:
        if row < start + entry.rows:
            shard = entry
            break
        start += entry.rows
    if shard is None:
        raise NotFound(f"no row {row} ({start} rows)")
    try:
        head = decode(ds.store.get_bytes(shard.path)).slice(0, row - start + 1)
    except Exception as exc:  # a damaged shard
        raise Unreadable(f"shard {shard.index} cannot be read: {exc}") from None
    if column not in head.column_names or not is_image(head.schema.field(column)):
        raise NotFound(f"no image column {column!r}")
    if row - start >= head.num_rows:
        raise NotFound(f"no row {row} (shard {shard.index} holds {head.num_rows})")
    value = head.column(column)[row - start].as_py()
    data = value.get("bytes") if isinstance(value, dict) else value
    if not isinstance(data, bytes):
        raise NotFound(f"row {row} has no image in {column!r}")
    try:
        image = Image.open(io.BytesIO(data))
        image.thumbnail((size, size))
        out = io.BytesIO()
        image.save(out, format="PNG")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise Unreadable(f"row {row} of {column!r} is not a readable image: {exc}") from None
    return out.getvalue()


def finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such floats become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def is_image(field: Any) -> bool:
    """An image column: a struct with ``bytes`` (the Hugging Face Image), or raw bytes
    named ``image`` / ``img``."""
    import pyarrow as pa

    t = field.type
    return bool(pa.types.is_struct(t) and {f.name for f in t} >= {"bytes"}) or bool(
        pa.types.is_binary(t) and field.name in ("image", "img")
    )


def show_value(value: Any) -> Any:
    """A cell as the page shows it: bytes as their size, long text and lists cut short."""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, str) and len(value) > 300:
        return value[:300] + "…"
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {k: show_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [show_value(v) for v in value[:20]]
    return str(value)


def dataset_file(uri: str, key: str) -> tuple[bytes, str]:
    """A plot or the card of a dataset version; only those are served."""
    if not (
        key == layout.CARD
        or (
            key.startswith("plots/")
            and key.endswith(".png")
            and ".." not in key.split("/")
            and "\\" not in key
            and "\x00" not in key
        )
    ):
        raise PermissionError(key)
    media = "text/markdown; charset=utf-8" if key.endswith(".md") else "image/png"
    return open_store(uri).get_bytes(key), media
