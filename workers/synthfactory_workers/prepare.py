"""The one-off, job-wide preparation step, run as a Ray task with one actor's resources."""

from __future__ import annotations

from typing import Any

from synthfactory.spec import load_spec
from synthfactory.storage import open_store
from synthfactory_workers.registry import generator_class


def run_prepare(spec: dict[str, Any], artifacts_uri: str) -> dict[str, Any]:
    job = load_spec(spec)
    return generator_class(job).prepare(job, open_store(artifacts_uri, job.storage))
