"""Connecting to Ray: a local instance by default, or a cluster by address."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOCAL_DEFAULTS = {"RAY_USAGE_STATS_ENABLED": "0"}

#: Ray's notice that a local cluster it starts has token authentication on (its default
#: since Ray 2.5x, kept: the cluster listens on every interface). Nothing to act on, so
#: not printed; ``RAY_AUTH_MODE`` set by the user silences it in Ray itself.
TOKEN_NOTICE = "Token authentication is enabled for this Ray cluster"
TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"


def code_modules() -> list[str]:
    """The package folders Ray workers run (the core and the workers, never the flows),
    shipped to remote workers through runtime_env."""
    import synthfactory
    import synthfactory_workers

    return [
        str(Path(m.__file__).parent) for m in (synthfactory, synthfactory_workers) if m.__file__
    ]


def connect(address: str | None = None, *, log_to_driver: bool = False) -> float:
    """Start or join Ray; returns the seconds it took (0 if already connected).

    With no address (and no RAY_ADDRESS) a local Ray starts inside this program, even
    when another Ray runs on the machine (Ray itself would join the last ``ray start``). With
    an address (``host:port``, ``auto`` or ``ray://host:10001``) the job joins that
    cluster and ships this project's code to it via ``runtime_env.py_modules``, so no
    shared filesystem or matching working directory is assumed.
    """
    import ray

    if ray.is_initialized():
        return 0.0
    for key, value in LOCAL_DEFAULTS.items():
        os.environ.setdefault(key, value)
    address = address or os.environ.get("RAY_ADDRESS") or None
    started = time.perf_counter()
    kwargs: dict[str, Any] = {"log_to_driver": log_to_driver, "logging_level": "WARNING"}
    if address:
        kwargs["address"] = address
        kwargs["runtime_env"] = {"py_modules": code_modules()}
    else:  # our own: never join a `ray start` cluster this machine happens to run
        kwargs["address"] = "local"
        kwargs["include_dashboard"] = False
    with _without_token_notice():
        ray.init(**kwargs)
    return time.perf_counter() - started


class _DropTokenNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TOKEN_NOTICE)


@contextlib.contextmanager
def _without_token_notice() -> Iterator[None]:
    """Drop Ray's token-auth notice while ``ray.init`` runs (its other warnings stay)."""
    logger = logging.getLogger(TOKEN_LOGGER)
    notice = _DropTokenNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)
