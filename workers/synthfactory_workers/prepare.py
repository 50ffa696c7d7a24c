"""The one-off, job-wide preparation step, run as a Ray task with one actor's resources."""

from __future__ import annotations

from typing import Any

from synthfactory.sources import job_cache
from synthfactory.spec import JobSpec, as_job
from synthfactory.storage import open_store
from synthfactory_workers.contract import generator_class


def run_prepare(
    spec: JobSpec | dict[str, Any], artifacts_uri: str, collector: Any = None
) -> dict[str, Any]:
    """``collector``: the job's telemetry actor, which a fit's epochs reach as they end."""
    from synthfactory_workers import credentials
    from synthfactory_workers.telemetry import METER

    credentials.receive()
    job = as_job(spec)
    store = open_store(artifacts_uri, job.storage)
    if collector is not None:
        METER.attach(collector, "prepare")
    try:
        with job_cache():
            return generator_class(job).prepare(job, store)
    finally:
        METER.detach()
