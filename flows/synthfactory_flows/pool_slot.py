"""A job's shared pool (``concurrency.pool``): the Prefect global concurrency limit that
the runs of every job naming the pool take one slot of, so they run a few at a time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from synthfactory.spec import JobSpec


def pool_limit_name(pool: str) -> str:
    """The global concurrency limit of pool ``pool`` (created by ``deploy``)."""
    return f"synthfactory-pool-{pool}"


@contextlib.contextmanager
def pool_slot(job: JobSpec) -> Iterator[None]:
    """Hold one slot of the job's shared pool (a Prefect global concurrency limit)."""
    if not job.concurrency.pool:
        yield
        return
    from prefect.concurrency.sync import concurrency

    with concurrency(pool_limit_name(job.concurrency.pool), occupy=1):
        yield
