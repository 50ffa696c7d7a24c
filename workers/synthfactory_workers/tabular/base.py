"""The interface every tabular synthesizer shares, and the registry by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import pandas as pd

REGISTRY: dict[str, type[Synthesizer]] = {}


class Synthesizer(ABC):
    """fit once on a table, then sample any number of rows from any seed."""

    name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "name", None):
            REGISTRY[cls.name] = cls

    @abstractmethod
    def fit(self, df: pd.DataFrame, column_types: dict[str, str]) -> None: ...

    @abstractmethod
    def sample(
        self, n: int, seed: int, conditions: dict[str, Any] | None = None
    ) -> pd.DataFrame: ...

    @abstractmethod
    def save(self) -> bytes: ...

    @classmethod
    @abstractmethod
    def load(cls, data: bytes) -> Synthesizer: ...
