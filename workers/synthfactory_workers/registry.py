"""A spec's generator class, from the generator registry (``synthfactory.spec.base.GENERATORS``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthfactory.errors import ConfigError
from synthfactory.spec.base import GENERATORS

if TYPE_CHECKING:
    from synthfactory.spec import JobSpec
    from synthfactory_workers.contract import Generator


def generator_class(spec: JobSpec) -> type[Generator]:
    from synthfactory_workers.contract import Generator

    cls = GENERATORS.load(spec.generator.kind)
    if not (isinstance(cls, type) and issubclass(cls, Generator)):
        raise ConfigError(f"{GENERATORS.path(spec.generator.kind)} is not a Generator class")
    return cls


def with_derived_rows(spec: JobSpec) -> JobSpec:
    """The spec with ``rows`` filled in when the generator derives it (``rows`` left out)."""
    if spec.rows:
        return spec
    rows = generator_class(spec).derived_rows(spec)
    if not rows:
        raise ConfigError(
            f"generator {spec.generator.kind!r} cannot derive the row count",
            fix="set rows: N in the spec",
        )
    return spec.model_copy(update={"rows": rows})
