"""Read a spec from YAML, JSON, a Python file or a dict, and explain every mistake."""

from __future__ import annotations

import difflib
import json
import re
import runpy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from synthfactory.errors import SpecError
from synthfactory.spec.generators import generator_config
from synthfactory.spec.limits import check_document, check_file_size, decode, load_yaml
from synthfactory.spec.model import JobSpec


def load_spec(source: str | Path | Mapping[str, Any] | JobSpec, **overrides: Any) -> JobSpec:
    """Parse and validate a spec. Raises SpecError listing every problem at once.

    ``overrides`` replace top-level fields (``output=...``, ``rows=...``) before validation.
    """
    if isinstance(source, JobSpec):
        data: dict[str, Any] = source.model_dump(mode="json", exclude_unset=True)
    elif isinstance(source, Mapping):
        data = dict(source)
    else:
        data = resolve_paths(_read_file(Path(source)), Path(source).resolve().parent)
    data.update({k: v for k, v in overrides.items() if v is not None})
    check_document(data, str(source) if isinstance(source, str | Path) else "spec")
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc), fix=_FIX) from None
    except RecursionError:
        raise SpecError("the spec is nested too deeply to validate", fix=_FIX) from None


def as_job(spec: JobSpec | Mapping[str, Any]) -> JobSpec:
    """The parsed spec: a model as it is (never parsed twice), a mapping validated."""
    return spec if isinstance(spec, JobSpec) else load_spec(spec)


_FIX = "edit the fields above; `synthfactory schema` prints every field with its allowed values"


def _is_local(value: object) -> bool:
    return isinstance(value, str) and "://" not in value and not Path(value).is_absolute()


def resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make a spec file's relative paths absolute, relative to the file's folder, so the spec
    means the same thing from any working directory and on every Ray worker."""
    data = dict(data)
    if _is_local(data.get("output")):
        data["output"] = str((base / data["output"]).resolve())
    generator = data.get("generator")
    if isinstance(generator, dict):
        config = generator_config(str(generator.get("kind", "")))
        generator = dict(generator)
        for name in config.path_fields if config else ():
            _resolve(generator, name.split("."), base, must_exist=False)
        for name in config.maybe_path_fields if config else ():
            _resolve(generator, name.split("."), base, must_exist=True)
        data["generator"] = generator
    storage = data.get("storage")
    if isinstance(storage, dict) and _is_local(storage.get("artifacts")):
        data["storage"] = {**storage, "artifacts": str((base / storage["artifacts"]).resolve())}
    metrics = data.get("metrics")
    if isinstance(metrics, dict):
        metrics = dict(metrics)
        _resolve(metrics, ["reference"], base, must_exist=False)
        data["metrics"] = metrics
    return data


def _resolve(node: dict[str, Any], path: list[str], base: Path, must_exist: bool) -> None:
    """Resolve node[path...] in place (copying nested dicts on the way); a ``*`` part
    stands for every key of that mapping (``tables.*.source``)."""
    head, rest = path[0], path[1:]
    if head == "*":
        for name in list(node):
            _resolve(node, [str(name), *rest], base, must_exist)
        return
    if rest:
        child = node.get(head)
        if isinstance(child, dict):
            node[head] = child = dict(child)
            _resolve(child, rest, base, must_exist)
        elif isinstance(child, list) and rest[0] == "*":  # every item of a list (columns)
            items = [dict(item) if isinstance(item, dict) else item for item in child]
            node[head] = items
            for item in items:
                if isinstance(item, dict) and rest[1:]:
                    _resolve(item, rest[1:], base, must_exist)
        return
    value = node.get(head)
    if _is_local(value) and (not must_exist or _exists(base / str(value))):
        node[head] = str((base / str(value)).resolve())


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long for the file system: no such file
        return False


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def _read_file(path: Path) -> dict[str, Any]:
    if not _is_file(path):
        raise SpecError(f"spec file not found: {path}", fix="pass the path of a .yaml or .py spec")
    check_file_size(path)
    if path.suffix == ".py":
        namespace = runpy.run_path(str(path))
        found = namespace.get("spec")
        if isinstance(found, JobSpec):
            return found.model_dump(mode="json", exclude_unset=True)
        if isinstance(found, Mapping):
            return dict(found)
        raise SpecError(
            f"{path} defines no `spec`", fix="assign a JobSpec or a dict to a variable named spec"
        )
    text = decode(path, path.read_bytes())
    data = _read_json(path, text) if path.suffix == ".json" else load_yaml(text, path)
    if data is None:
        raise SpecError(f"{path} is empty", fix="write the job's fields (name, modality, ...)")
    if not isinstance(data, dict):
        raise SpecError(
            f"{path} must hold a mapping of fields, got {type(data).__name__}",
            fix="write the job's fields as `name: value` lines at the top level",
        )
    return data


def _read_json(path: Path, text: str) -> Any:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in pairs:
            if key in found:
                raise SpecError(
                    f"{path}: duplicate key {key!r}",
                    fix="keep one of them: JSON readers would silently use the last",
                )
            found[key] = value
        return found

    try:
        return json.loads(text, object_pairs_hook=unique)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path} is not valid JSON: {exc}", fix="fix the syntax") from None
    except RecursionError:
        raise SpecError(f"{path} is nested too deeply to read", fix="flatten the spec") from None


def format_validation_error(exc: ValidationError) -> str:
    lines = [f"invalid job spec ({exc.error_count()} problem(s)):"]
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        kind = None
        # pydantic puts the union tag into the path ("generator.gaussian_copula.source"): drop it
        if len(loc) >= 2 and loc[0] == "generator" and generator_config(loc[1]) is not None:
            kind, loc = loc[1], [loc[0], *loc[2:]]
        where = ".".join(loc) or "(top level)"
        given = err.get("input")
        if err["type"] == "extra_forbidden":
            lines.append(f"  {where}: unknown field{_suggest(loc, kind)}")
        elif err["type"] == "missing":
            lines.append(f"  {where}: required field is missing")
        elif not loc:
            lines.append(f"  {err['msg'].removeprefix('Value error, ')}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            named = re.match(r"([A-Za-z_]\w*): ", msg)
            if named and isinstance(given, Mapping) and named.group(1) in given:
                # a section's validator naming one of its fields: point at that field
                where = f"{where}.{named.group(1)}"
                given, msg = given[named.group(1)], msg[named.end() :]
            if loc[0] == "storage":
                # where a credential put in the spec by mistake would be: never echoed
                lines.append(f"  {msg}" if msg.startswith(f"{where}.") else f"  {where}: {msg}")
                continue
            shown = json.dumps(given, default=str)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            lines.append(f"  {where}: {msg} (given: {shown})")
    return "\n".join(lines)


def _suggest(loc: list[str], kind: str | None) -> str:
    """For an unknown key, name the closest allowed key."""
    model: type[BaseModel] | None = JobSpec
    for part in loc[:-1]:
        if part == "generator" and model is JobSpec:
            model = generator_config(kind or "")
            continue
        field = model.model_fields.get(part) if model else None
        annotation = getattr(field, "annotation", None)
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation if is_model else None
    if model is None:
        return ""
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1)
    allowed = ", ".join(model.model_fields)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"{hint} (allowed: {allowed})"


def json_schema() -> dict[str, Any]:
    schema = JobSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "synthfactory job spec"
    return schema
