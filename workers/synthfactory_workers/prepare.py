"""The one-off, job-wide preparation step, run as a Ray task with one actor's resources."""

from __future__ import annotations

from typing import Any

from synthfactory.sources import job_cache
from synthfactory.spec import JobSpec, as_job
from synthfactory.storage import open_store
from synthfactory_workers.contract import generator_class


def run_prepare(
    spec: JobSpec | dict[str, Any], artifacts_uri: str, progress_key: str | None = None
) -> dict[str, Any]:
    """``progress_key``: where training epochs are reported while a model fits."""
    from synthfactory_workers import credentials, training

    credentials.receive()
    job = as_job(spec)
    store = open_store(artifacts_uri, job.storage)
    with job_cache(), training.reporting(store, progress_key):
        return generator_class(job).prepare(job, store)
