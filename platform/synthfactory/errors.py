"""One exception family. Every error says what went wrong and how to fix it.

Errors are *terminal* (retrying cannot help: a bad spec, a missing model) or
*transient* (a storage hiccup, a lost actor). Flows retry only transient ones.
All of them pickle cleanly so they cross Ray and Prefect boundaries intact.
"""

from __future__ import annotations


class SynthfactoryError(Exception):
    """Base class. ``transient`` tells the flow whether a retry may succeed."""

    transient: bool = False

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(message, fix)

    def __str__(self) -> str:
        return self.message if not self.fix else f"{self.message}\n  fix: {self.fix}"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.message, self.fix))


def _rebuild(cls: type[SynthfactoryError], message: str, fix: str | None) -> SynthfactoryError:
    return cls(message, fix=fix)


class SpecError(SynthfactoryError):
    """The job spec is malformed. Raised before any work starts."""


class ConfigError(SynthfactoryError):
    """The spec parses but something it points at is unusable (model path, source file)."""


class StorageError(SynthfactoryError):
    """Object storage failed. Transient unless the cause is permanent (missing bucket, denied)."""

    transient = True


class StorageAccessError(StorageError):
    """The bucket does not exist or the credentials are refused: retrying will not help."""

    transient = False


class GenerationError(SynthfactoryError):
    """A generator failed on a shard in a way that retrying will not fix."""


class WorkerLostError(SynthfactoryError):
    """A Ray actor died while working on a shard. The pool replaces it; the shard is retried."""

    transient = True


class StoppedError(SynthfactoryError):
    """The job was asked to stop (SIGTERM, Ctrl-C) and stopped cleanly: a re-run resumes."""


class GateFailedError(SynthfactoryError):
    """A quality, bias or privacy gate failed; the dataset was quarantined, not published."""


def is_transient(exc: BaseException) -> bool:
    """Whether a retry may succeed. Unknown exceptions are treated as terminal."""
    return isinstance(exc, SynthfactoryError) and exc.transient
