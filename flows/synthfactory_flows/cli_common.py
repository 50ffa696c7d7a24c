"""What every ``synthfactory`` command shares: user errors printed as one line with
their fix (exit 2), other synthfactory errors as one line (exit 1), no tracebacks."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from synthfactory.errors import (
    ConfigError,
    SpecError,
    StorageAccessError,
    SynthfactoryError,
)

F = TypeVar("F", bound=Callable[..., Any])

USER_ERRORS = (SpecError, ConfigError, StorageAccessError)


def friendly_errors(fn: F) -> F:
    """User errors: message + fix, exit 2. Other synthfactory errors: exit 1. No tracebacks."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)
        except SynthfactoryError as exc:
            click.secho(f"failed: {exc}", fg="red", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]
