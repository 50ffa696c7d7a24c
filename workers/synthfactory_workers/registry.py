"""Resolve a spec's generator class from its config's ``implementation`` import path."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from synthfactory.errors import ConfigError

if TYPE_CHECKING:
    from synthfactory.spec import JobSpec
    from synthfactory_workers.contract import Generator


def import_object(path: str) -> object:
    module_name, _, attr = path.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import {module_name!r} ({exc})",
            fix="install the package that provides it on the driver and every worker",
        ) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{module_name!r} has no attribute {attr!r}") from None
    return obj


def generator_class(spec: JobSpec) -> type[Generator]:
    from synthfactory_workers.contract import Generator

    cls = import_object(type(spec.generator).implementation)
    if not (isinstance(cls, type) and issubclass(cls, Generator)):
        raise ConfigError(f"{type(spec.generator).implementation} is not a Generator class")
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
