"""The one preflight ``validate`` and ``run`` share: every check that needs no work, in the
driver, before a flow run or an actor starts. A mistake is a named error with the fix."""

from __future__ import annotations

from dataclasses import dataclass

from synthfactory.errors import SpecError
from synthfactory.metrics.evaluators import unknown_gates
from synthfactory.spec import JobSpec
from synthfactory_workers.registry import generator_class, with_derived_rows


@dataclass(frozen=True)
class Checked:
    """A spec that passed: rows filled in, and the facts that join its content hash."""

    job: JobSpec
    fingerprints: dict[str, str]


def preflight(job: JobSpec) -> Checked:
    """Gates name metrics the modality reports; the generator's own checks (sources
    readable, columns and templates, models resolvable offline); a derived row count."""
    problems = unknown_gates(job.modality, job.gates) if job.metrics.enabled or job.gates else []
    if job.gates and not job.metrics.enabled:
        problems.append("gates: metrics.enabled is false, so no gate can be checked")
    if problems:
        raise SpecError(
            "the spec's gates cannot be checked:\n  " + "\n  ".join(problems),
            fix="name metrics as `synthfactory metrics --json` reports them (README: Metrics)",
        )
    job = with_derived_rows(job)
    fingerprints = generator_class(job).preflight(job)
    return Checked(job, fingerprints)
