"""The interface a text backend implements, so another engine (e.g. vLLM) is one module."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


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
