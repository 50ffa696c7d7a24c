"""The fit cache: a tabular job's fitted models under its model key in the artifact store.

A fit is the folder ``{key}/``: one ``{name}.model`` per fitted model, then ``meta.json``,
written last, so that its presence marks a complete fit (a fit that died half-way leaves
no marker and is redone). Single-table fits made before this layout are the files
``{key}.model`` and ``{key}.meta.json``; they are read as they are, so an old cache is
still reused (and the same rows come out).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synthfactory.storage import ObjectStore

MARKER = "meta.json"
#: the model of a single-table fit
MODEL = "model"


@dataclass(frozen=True, slots=True)
class FitCache:
    """The fit stored under ``key`` in ``store``."""

    store: ObjectStore
    key: str

    def _legacy(self) -> bool:
        """A single-table fit in the layout before ``{key}/``: ``{key}.meta.json``."""
        return not self.store.exists(f"{self.key}/{MARKER}") and self.store.exists(
            f"{self.key}.{MARKER}"
        )

    def exists(self) -> bool:
        """Whether a complete fit is stored (its marker is there)."""
        return self.store.exists(f"{self.key}/{MARKER}") or self.store.exists(
            f"{self.key}.{MARKER}"
        )

    def meta(self) -> dict[str, Any]:
        """The fit's meta (the marker's content)."""
        path = f"{self.key}.{MARKER}" if self._legacy() else f"{self.key}/{MARKER}"
        meta: dict[str, Any] = json.loads(self.store.get_text(path))
        return meta

    def model(self, name: str = MODEL) -> bytes:
        """The saved model ``name`` of the fit."""
        if name == MODEL and self._legacy():
            return self.store.get_bytes(f"{self.key}.model")
        return self.store.get_bytes(f"{self.key}/{name}.model")

    def save(self, models: dict[str, bytes], meta: dict[str, Any]) -> None:
        """Every model first, the marker last."""
        for name, data in models.items():
            self.store.put_bytes(f"{self.key}/{name}.model", data)
        self.store.put_text(f"{self.key}/{MARKER}", json.dumps(meta))
