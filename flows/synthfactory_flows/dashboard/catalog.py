"""What the dashboard shows, read from manifests and progress records on storage."""

from __future__ import annotations

import time
from typing import Any

from synthfactory.dataset import layout, list_versions, open_dataset
from synthfactory.dataset.manifest import Manifest
from synthfactory.storage import open_store


def version_row(root: str, info: Any) -> dict[str, Any]:
    m: Manifest | None = info.manifest
    row: dict[str, Any] = {"root": root, "uri": info.uri, "status": info.status}
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
    progress = info.progress or {}
    if progress:
        stale = time.time() - float(progress.get("updated_at", 0)) > 120
        state = progress.get("state", "incomplete")
        row.update(
            name=progress.get("name"),
            version=progress.get("version"),
            rows=progress.get("rows_done", 0),
            target_rows=progress.get("target_rows"),
            progress=progress,
            flow_run_id=progress.get("flow_run_id", ""),
            status="stalled" if state == "running" and stale else state,
        )
    return row


def catalog(roots: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for root in roots:
        try:
            rows.extend(version_row(root, v) for v in list_versions(open_store(root)))
        except Exception as exc:  # shown in the page: one bad root must not hide the others
            rows.append({"root": root, "uri": root, "status": "error", "error": str(exc)})
    return rows


def detail(uri: str, sample: int = 8) -> dict[str, Any]:
    ds = open_dataset(uri)
    m = ds.manifest
    head = ds.head(sample)
    image_columns = [f.name for f in head.schema if _is_image(f)]
    records = head.drop_columns(image_columns).to_pylist() if image_columns else head.to_pylist()
    for i, record in enumerate(records):
        for column in image_columns:
            record[column] = {"thumbnail": f"/api/thumbnail?uri={ds.uri}&row={i}&column={column}"}
    metrics = None
    if ds.store.exists(layout.METRICS):
        import json

        metrics = json.loads(ds.store.get_bytes(layout.METRICS))
    plots = [k for k in ds.store.list("plots/") if k.endswith(".png")]
    return {
        "uri": ds.uri,
        "plots": [f"/api/file?uri={ds.uri}&key={k}" for k in plots[:24]],
        "card": (
            f"/api/file?uri={ds.uri}&key={layout.CARD}" if ds.store.exists(layout.CARD) else None
        ),
        "manifest": m.model_dump(mode="json", by_alias=True, exclude={"shards"}),
        "shards": [s.model_dump(mode="json") for s in m.shards[:200]],
        "sample": [{k: _show(v) for k, v in r.items()} for r in records],
        "image_columns": image_columns,
        "metrics": metrics,
    }


def thumbnail(uri: str, row: int, column: str, size: int = 128) -> bytes:
    import io

    from PIL import Image

    ds = open_dataset(uri)
    value = ds.head(row + 1).column(column)[row].as_py()
    data = value["bytes"] if isinstance(value, dict) else value
    image = Image.open(io.BytesIO(data))
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _is_image(field: Any) -> bool:
    import pyarrow as pa

    t = field.type
    return bool(pa.types.is_struct(t) and {f.name for f in t} >= {"bytes"}) or bool(
        pa.types.is_binary(t) and field.name in ("image", "img")
    )


def _show(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, str) and len(value) > 300:
        return value[:300] + "…"
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {k: _show(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_show(v) for v in value[:20]]
    return str(value)


def dataset_file(uri: str, key: str) -> tuple[bytes, str]:
    """A plot or the card of a dataset version; only those are served."""
    from synthfactory.storage import open_store

    if not (
        key == layout.CARD
        or (key.startswith("plots/") and key.endswith(".png") and ".." not in key)
    ):
        raise PermissionError(key)
    media = "text/markdown" if key.endswith(".md") else "image/png"
    return open_store(uri).get_bytes(key), media
