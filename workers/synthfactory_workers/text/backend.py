"""The interface a text backend implements, so another engine (e.g. vLLM) is one module:
its config in ``synthfactory.spec.backends`` (registered with ``BACKENDS``) and its class,
a ``TextBackend`` built as ``cls(llm_config, device_hint)``, in this package."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from synthfactory.errors import ConfigError
from synthfactory.spec.backends import BACKENDS

if TYPE_CHECKING:
    from synthfactory.spec.generators.text import LLMConfig


@dataclass(frozen=True, slots=True)
class Request:
    """One completion to make: chat messages (or a raw prompt) and its own seed."""

    messages: list[dict[str, str]]
    seed: int


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of sequence or a stop string) or "length"


class TextBackend(ABC):
    model_id: str
    revision: str

    @abstractmethod
    def load(self) -> None: ...

    @abstractmethod
    def generate(self, requests: list[Request], batch_size: int) -> list[Completion]:
        """One completion per request, in request order; same seed -> same text."""


def open_backend(config: LLMConfig, device_hint: str = "cpu") -> TextBackend:
    """The registered backend for ``config.backend.kind``, built (not yet loaded)."""
    cls = BACKENDS.load(config.backend.kind)
    if not (isinstance(cls, type) and issubclass(cls, TextBackend)):
        raise ConfigError(f"{BACKENDS.path(config.backend.kind)} is not a TextBackend class")
    return cls(config, device_hint)  # type: ignore[call-arg]
