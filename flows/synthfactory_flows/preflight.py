"""The one preflight ``validate`` and ``run`` share: every check that needs no work, in the
driver, before a flow run or an actor starts. A mistake is a named error with the fix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from difflib import get_close_matches
from typing import TypeVar

from synthfactory.errors import (
    ConfigError,
    SpecError,
    StorageAccessError,
    SynthfactoryError,
)
from synthfactory.metrics.evaluators import unknown_gates
from synthfactory.metrics.evaluators.tabular import reference_uri
from synthfactory.sources import read_table
from synthfactory.spec import JobSpec
from synthfactory.spec.model import shard_count_problem
from synthfactory.storage import open_store
from synthfactory_workers.contract import generator_class, with_derived_rows

T = TypeVar("T")

#: mistakes in the spec or in what it points at; anything else is a bug and propagates
USER_ERRORS = (SpecError, ConfigError, StorageAccessError)


@dataclass(frozen=True)
class Checked:
    """A spec that passed: rows filled in, and the facts that join its content hash."""

    job: JobSpec
    fingerprints: dict[str, str]


def preflight(job: JobSpec, *, storage: bool = True) -> Checked:
    """Gates name metrics the modality reports; the generator's own checks (sources
    readable, columns and templates, models resolvable offline); a derived row count
    within the shard limit; with ``storage``, the output can be written (``check_storage``:
    leave it out where nothing will be written, such as a preview).

    Every check runs, so that a spec with three mistakes is told all three at once: one
    mistake is raised as it is, several as one SpecError listing each with its fix."""
    found: list[SynthfactoryError] = []

    def attempt(check: Callable[[], T]) -> T | None:
        try:
            return check()
        except USER_ERRORS as exc:
            found.append(exc)
            return None

    attempt(lambda: check_gates(job))
    attempt(lambda: check_metric_columns(job))
    fingerprints = attempt(lambda: generator_preflight(job))
    checked = job
    if fingerprints is not None:  # a derived row count reads the columns it checked
        checked = attempt(lambda: derived_rows(job)) or job
    if storage:
        attempt(lambda: check_storage(checked))
    if len(found) == 1:
        raise found[0]
    if found:
        listed = "\n".join(
            f"  {n}. {e.message}" + (f"\n     fix: {e.fix}" if e.fix else "")
            for n, e in enumerate(found, 1)
        )
        raise SpecError(
            f"the spec has {len(found)} problems:\n{listed}", fix="fix each one as it says"
        )
    return Checked(checked, fingerprints or {})


def check_gates(job: JobSpec) -> None:
    problems = (
        unknown_gates(job.modality, job.gates, job) if job.metrics.enabled or job.gates else []
    )
    if job.gates and not job.metrics.enabled:
        problems.append("gates: metrics.enabled is false, so no gate can be checked")
    if problems:
        raise SpecError(
            "the spec's gates cannot be checked:\n  " + "\n  ".join(problems),
            fix="name metrics as `synthfactory metrics --json` reports them (README: Metrics)",
        )


def check_metric_columns(job: JobSpec) -> None:
    problems = metric_columns(job)
    if problems:
        raise SpecError(
            "the spec's metrics name columns the reference table lacks:\n  "
            + "\n  ".join(problems),
            fix="use the reference table's column names",
        )


def generator_preflight(job: JobSpec) -> dict[str, str]:
    """The generator's own checks; the facts that join the content hash."""
    try:
        return generator_class(job).preflight(job)
    except OSError as exc:  # a path the file system refuses (too long, not readable)
        raise ConfigError(
            f"cannot use {exc.filename or 'a path of the spec'}: {exc.strerror or exc}",
            fix="check the paths in the spec and their permissions",
        ) from None


def derived_rows(job: JobSpec) -> JobSpec:
    checked = with_derived_rows(job)
    problem = shard_count_problem(checked.target_rows, checked.shard_rows)
    if problem:
        raise SpecError(f"rows (derived from the source): {problem}", fix="set shard_rows")
    return checked


def check_storage(job: JobSpec) -> None:
    """The output (and the artifact cache, when it is elsewhere) exists and these
    credentials can write there: S3 writes and deletes a probe object under the prefix; a
    local folder, or the nearest folder above it that exists, must be writable. Raises
    StorageAccessError naming the bucket or folder."""
    for field, uri in (("output", job.output), ("storage.artifacts", job.storage.artifacts)):
        if uri is None:
            continue
        try:
            open_store(uri, job.storage).check_access()
        except OSError as exc:  # a local path the system refuses (a name too long...)
            raise StorageAccessError(
                f"{field} {uri} cannot be used: {exc.strerror or exc}",
                fix=f"choose another {field}",
            ) from None


def metric_columns(job: JobSpec) -> list[str]:
    """``metrics.target_column`` and ``sensitive_columns`` must be columns of the table the
    metrics compare with (tabular jobs)."""
    named = [("metrics.target_column", job.metrics.target_column)]
    named += [
        (f"metrics.sensitive_columns[{i}]", c) for i, c in enumerate(job.metrics.sensitive_columns)
    ]
    wanted = [(field, column) for field, column in named if column]
    uri = reference_uri(job)
    if job.modality != "tabular" or not wanted or not uri:
        return []
    columns = [str(c) for c in read_table(uri, job.storage).column_names]
    return [
        f"{field}: {column!r} is not a column of {uri}"
        + (
            f"; did you mean {close[0]!r}?"
            if (close := get_close_matches(column, columns, 1))
            else ""
        )
        for field, column in wanted
        if column not in columns
    ]
