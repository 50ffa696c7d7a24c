"""Every spec field is documented: ``synthfactory schema`` is the reference."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from synthfactory.spec import JobSpec
from synthfactory.spec.backends import BACKENDS
from synthfactory.spec.generators import GENERATORS


def models(root: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[type[BaseModel]]:
    """Every model reachable from ``root`` through its fields' annotations."""
    seen = set() if seen is None else seen
    if root in seen:
        return seen
    seen.add(root)

    def walk(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            models(annotation, seen)
        for arg in getattr(annotation, "__args__", ()) or ():
            walk(arg)
        for meta in getattr(annotation, "__metadata__", ()) or ():
            walk(meta)

    for field in root.model_fields.values():
        walk(field.annotation)
    return seen


def test_every_spec_field_has_a_description() -> None:
    reachable = models(JobSpec)
    registered = set(GENERATORS.configs()) | set(BACKENDS.configs())
    assert registered <= reachable, "a registered config is not reachable from JobSpec"
    missing = [
        f"{model.__name__}.{name}"
        for model in sorted(reachable, key=lambda m: m.__name__)
        for name, field in model.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert not missing, "fields without Field(description=...): " + ", ".join(missing)


def test_the_walk_finds_an_undocumented_field() -> None:
    class Inner(BaseModel):
        documented: int = 0

    class Outer(BaseModel):
        inner: Inner | None = None

    assert Inner in models(Outer)
    assert not Inner.model_fields["documented"].description


def test_every_storage_scheme_setting_has_a_description() -> None:
    """A scheme's settings (``storage.<scheme>``) are part of the reference too."""
    from synthfactory.spec.storage import STORES, StorageOptions, scheme_settings

    missing = [
        f"storage.{scheme}.{name}"
        for scheme in STORES.kinds()
        for name, field in scheme_settings(scheme).model_fields.items()
        if not (field.description or "").strip()
    ]
    assert not missing, "settings without Field(description=...): " + ", ".join(missing)
    documented = StorageOptions.model_json_schema()["properties"]
    assert documented["s3"]["properties"]["endpoint_url"]["description"]
