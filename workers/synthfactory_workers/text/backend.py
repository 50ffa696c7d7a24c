"""The interface a text backend implements, so another engine (e.g. vLLM) is one module:
its config in ``synthfactory.spec.backends`` (registered with ``BACKENDS``) and its class,
a ``TextBackend`` built as ``cls(llm_config, device_hint)``, in this package."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError
from synthfactory.spec.backends import BACKENDS

if TYPE_CHECKING:
    from synthfactory.spec.generators.text import LLMConfig


@dataclass(frozen=True, slots=True)
class Request:
    """One completion to make: chat messages (or a raw prompt) and its own seed."""

    messages: list[dict[str, str]]
    seed: int
    top_logprobs: int = 0
    """Alternatives wanted per generated token (0: none). Judges ask for them to score from
    probabilities; it is part of the request body, so of the journal key."""


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token: its text, its log-probability and the ``top`` alternatives
    (text, log-probability), most likely first, as the model scored that position."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of sequence or a stop string) or "length"; "error"
    error: str | None = None
    """Why the request failed after its retries (the row is rejected); None on success."""
    logprobs: tuple[TokenLogprob, ...] | None = None
    """Per generated token, when the request asked for ``top_logprobs`` and the backend
    returned them; None otherwise."""


OnResult = Callable[[int, Completion], None]
"""Called with (index in the requests list, completion) as each completion arrives."""


class TextBackend(ABC):
    model_id: str
    revision: str
    max_error_rate: float = 0.0
    """Fraction of a shard's requests that may fail before the shard fails."""

    @abstractmethod
    def load(self) -> None: ...

    def generate(
        self,
        requests: list[Request],
        batch_size: int,
        on_result: OnResult | None = None,
        max_failures: int | None = None,
    ) -> list[Completion]:
        """One completion per request, in request order; same seed -> same text.
        ``on_result`` sees each completion as soon as it exists (the request journal).
        A backend that can fail a request (``Completion.error``) stops sending once more
        than ``max_failures`` failed; the rest come back failed, unsent."""
        if not requests:
            return []
        return self.complete(requests, batch_size, on_result, max_failures)

    def complete(
        self,
        requests: list[Request],
        batch_size: int,
        on_result: OnResult | None,
        max_failures: int | None,
    ) -> list[Completion]:
        """``generate`` for at least one request: what a backend implements."""
        raise NotImplementedError(f"{type(self).__name__} implements neither generate nor complete")

    def take_stats(self) -> dict[str, float]:
        """Counters since the last call (retries, backoff seconds), for the shard's stats."""
        return {}

    def request_body(self, request: Request) -> dict[str, Any]:
        """What decides this request's completion, as JSON (the journal's key)."""
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": request.messages,
            "seed": request.seed,
        }
        if request.top_logprobs:
            body["top_logprobs"] = request.top_logprobs
        return body

    def request_key(self, request: Request) -> str:
        """sha256 of the canonical request: equal keys mean the same paid-for completion."""
        blob = json.dumps(self.request_body(request), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def request_keys(self, requests: list[Request]) -> list[str]:
        """``request_key`` of each request (one call, for a backend that asks elsewhere)."""
        return [self.request_key(r) for r in requests]


def open_backend(config: LLMConfig, device_hint: str = "cpu") -> TextBackend:
    """The registered backend for ``config.backend.kind``, built (not yet loaded)."""
    cls = BACKENDS.load(config.backend.kind)
    if not (isinstance(cls, type) and issubclass(cls, TextBackend)):
        raise ConfigError(f"{BACKENDS.path(config.backend.kind)} is not a TextBackend class")
    return cls(config, device_hint)  # type: ignore[call-arg]
