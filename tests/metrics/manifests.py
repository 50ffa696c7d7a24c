"""A tabular version's manifest with nothing in it, for cards rendered in-process."""

from __future__ import annotations

from typing import Any

from synthfactory.dataset.manifest import Manifest, SchemaInfo


def manifest(**extra: Any) -> Manifest:
    """Dataset ``p``, version v1: three tabular rows, no shards, an empty spec; ``extra``
    replaces any field."""
    fields: dict[str, Any] = {
        "name": "p",
        "version": "v1",
        "modality": "tabular",
        "rows": 3,
        "shards": [],
        "schema": SchemaInfo(fields=[], arrow=""),
        "spec": {},
        "spec_hash": "0" * 16,
    }
    return Manifest(**{**fields, **extra})
