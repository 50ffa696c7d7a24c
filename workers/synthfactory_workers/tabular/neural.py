"""What the torch synthesizers (CTGAN, TVAE, TabularARGN) share: device choice, per-epoch
loss logging, a pickle-free file format (JSON header + safetensors), the generator that
builds them from their config's options, and (CTGAN, TVAE) the data transform."""

from __future__ import annotations

import json
import logging
import struct
from abc import abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Self

from synthfactory.errors import ConfigError
from synthfactory.spec.generators.tabular import ArgnConfig, CTGANConfig, TVAEConfig
from synthfactory_workers.devices import resolve_device
from synthfactory_workers.tabular.base import Synthesizer
from synthfactory_workers.tabular.generator import TabularGenerator
from synthfactory_workers.tabular.transformer import DataTransformer

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import torch

    from synthfactory.spec import JobSpec

MAGIC = b"SFTAB1\n"
log = logging.getLogger("synthfactory_workers.tabular")

EpochCallback = Callable[[dict[str, float]], None]


def pack(header: dict[str, Any], tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    head = json.dumps(header).encode()
    body = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    return MAGIC + struct.pack("<Q", len(head)) + head + body


def unpack(data: bytes) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors.torch import load

    if not data.startswith(MAGIC):
        raise ConfigError(
            "the cached synthesizer is not in synthfactory's format",
            fix="delete the cached model under the output's _artifacts/ to refit",
        )
    at = len(MAGIC)
    (size,) = struct.unpack("<Q", data[at : at + 8])
    header = json.loads(data[at + 8 : at + 8 + size])
    return header, load(data[at + 8 + size :])


class TorchSynthesizer(Synthesizer):
    """A synthesizer trained in torch: its options (``defaults`` from its config), seed,
    device and per-epoch losses (logged, kept in ``history``, reported as training
    progress)."""

    defaults: ClassVar[dict[str, Any]]

    def __init__(
        self,
        options: dict[str, Any] | None = None,
        enforce_min_max: bool = True,
        seed: int = 0,
        device: str = "cpu",
        on_epoch: EpochCallback | None = None,
    ) -> None:
        unknown = set(options or {}) - set(self.defaults)
        if unknown:
            raise ConfigError(
                f"unknown {self.name} option(s): {sorted(unknown)}",
                fix=f"use {sorted(self.defaults)}",
            )
        self.options = {**self.defaults, **(options or {})}
        self.enforce_min_max = enforce_min_max
        self.seed = seed
        self.device = device
        self.on_epoch = on_epoch
        self.history: list[dict[str, float]] = []
        self._start()

    def _start(self) -> None:
        """Set up what a new, unfitted model of this kind holds."""

    def _pack(self, fitted: dict[str, Any], tensors: dict[str, torch.Tensor]) -> bytes:
        """The saved model: its settings and ``fitted`` as the header, then ``tensors``."""
        header = {
            "synthesizer": self.name,
            "options": self.options,
            "enforce_min_max": self.enforce_min_max,
            "seed": self.seed,
            **fitted,
        }
        return pack(header, tensors)

    @classmethod
    def _unpack(
        cls, data: bytes, device: str, what: str
    ) -> tuple[Self, dict[str, Any], dict[str, torch.Tensor]]:
        """A new model with the saved settings and history, the header and the tensors;
        a ConfigError when the file holds another synthesizer (``what``: this one)."""
        header, tensors = unpack(data)
        if header.get("synthesizer") != cls.name:
            raise ConfigError(
                f"the cached model is a {header.get('synthesizer')}, not {what}",
                fix="delete the cached model under the output's _artifacts/ to refit",
            )
        model = cls(header["options"], header["enforce_min_max"], header["seed"], device)
        model.history = header["history"]
        return model, header, tensors

    def log_epoch(self, values: dict[str, float]) -> None:
        self.history.append(values)
        log.info(
            "%s epoch %d: %s",
            self.name,
            int(values["epoch"]),
            ", ".join(f"{k}={v:.4f}" for k, v in values.items() if k != "epoch"),
        )
        if self.on_epoch is not None:
            self.on_epoch(values)
        from synthfactory_workers.telemetry import METER

        METER.epoch(values)


class NeuralSynthesizer(TorchSynthesizer):
    """A torch synthesizer over the mode-specific-normalisation transform (CTGAN, TVAE)."""

    def _start(self) -> None:
        self.transformer = DataTransformer(self.options["max_modes"], self.seed)

    @property
    def columns(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return self.transformer.columns

    def categories(self, column: dict[str, Any]) -> list[Any]:
        return list(column.get("categories", []))

    def fit(self, df: pd.DataFrame, column_types: dict[str, str]) -> None:
        import numpy as np
        import torch

        from synthfactory_workers.threads import limit_torch_threads

        limit_torch_threads()
        if len(df) < 2:
            raise ConfigError(f"the source table needs at least 2 rows to fit {self.name}")
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.transformer.fit(df, column_types)
        data = self.transformer.transform(df, rng)
        self.history = []
        self._train(data, rng)

    @abstractmethod
    def _train(self, data: Any, rng: Any) -> None: ...

    @abstractmethod
    def _networks(self) -> dict[str, torch.nn.Module]:
        """The modules whose weights are saved, built for the fitted transform."""

    def save(self) -> bytes:
        tensors = {
            f"{part}.{k}": v
            for part, net in self._networks().items()
            for k, v in net.state_dict().items()
        }
        fitted = {"transformer": self.transformer.to_dict(), "history": self.history}
        return self._pack(fitted, tensors)

    @classmethod
    def load(cls, data: bytes, device: str = "cpu") -> NeuralSynthesizer:
        model, header, tensors = cls._unpack(data, device, f"a {cls.name}")
        model.transformer = DataTransformer.from_dict(header["transformer"])
        model._build()
        for part, net in model._networks().items():
            prefix = f"{part}."
            net.load_state_dict(
                {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            )
            net.to(device)
            net.eval()
        return model

    @abstractmethod
    def _build(self) -> None:
        """Create the networks for the fitted transform (weights set by the caller)."""


class NeuralGenerator(TabularGenerator):
    """A torch synthesizer, built from its config's model options on the spec's device."""

    synthesizer: ClassVar[type[TorchSynthesizer]]

    @classmethod
    def new_model(
        cls, spec: JobSpec, types: dict[str, str], schema: pa.Schema | None = None
    ) -> Synthesizer:
        config = spec.generator
        assert isinstance(config, CTGANConfig | TVAEConfig | ArgnConfig)
        return cls.synthesizer(
            config.options(),
            config.enforce_min_max,
            config.fit_seed,
            resolve_device(config.device, field="generator.device"),
        )
