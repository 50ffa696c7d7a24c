"""Text backend configurations: the engine an ``llm`` generator runs on, selected by
``generator.backend.kind`` (a plain string such as ``backend: transformers`` is accepted).

Every module in this package is imported here and registers its config with
``@BACKENDS.register("package.module:BackendClass")`` (a ``TextBackend`` in
``synthfactory_workers.text``). To add an engine: one module here and one there.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from synthfactory.registry import Registry

#: backend kind -> TextBackend class ('module:Class'), imported only inside actors
BACKENDS = Registry("text backend")

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def backend_union() -> Any:
    """The ``backend`` field's type: every registered backend config, on ``kind``."""
    return BACKENDS.union()


def as_backend(value: Any) -> Any:
    """``"transformers"`` is short for ``{kind: transformers}``."""
    return {"kind": value} if isinstance(value, str) else value
