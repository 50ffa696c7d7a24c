"""The step model of sequential synthesis: an autoregressive GRU over an entity's steps,
conditioned on the entity's context (after PAR, Zhang et al., "Sequential Models in the
Synthetic Data Vault", 2022).

An entity is its context vector c (its context columns, its length and, with an index, its
first index value; encoded by a ``Codec``) and its steps x_1..x_T (each step the fields of a
``Codec``: with an index, first the time since the previous step, then the step columns).

- The GRU's initial state is tanh(W c + b); its input at step t is the previous step's
  encoding x_(t-1) (a start flag at t = 1) concatenated with c, so every step sees the
  context and the whole past through the state h_t.
- A step's fields are drawn one after another (autoregressive within the step too, as in
  MADE): field j's head, a one-hidden-layer MLP, reads h_t and the encodings of the fields
  of the same step before j, so columns of a step keep their mutual dependence. A numeric
  field is Gaussian in quantile-normal space (mean and log standard deviation), with a
  two-way softmax for its null flag when the source has nulls; a categorical field is a
  softmax over its values. The time since the previous step is such a field: a softmax over
  the source's gaps when they take at most ``MAX_GAP_VALUES`` values (regular series keep
  exact gaps), else a Gaussian on its quantile-normal score (positive, inside the source's
  range). The first step has no gap: its index comes from the context.
- Training maximises the likelihood of the source's steps given their true past (teacher
  forcing): Adam, the summed negative log-likelihood per step, padded steps masked,
  gradients clipped at norm 1, entities in seeded random batches.
- Sampling runs the recursion for a batch of entities up to the longest of their lengths
  (each entity's length is given: it ends its sequence). Every random draw of an entity
  (one uniform per field and step) comes from that entity's own noise, so an entity
  depends only on its seed and its context.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.errors import ConfigError
from synthfactory_workers.tabular.neural import log, pack, unpack
from synthfactory_workers.tabular.step_codec import Codec

if TYPE_CHECKING:
    import torch

#: gap values a regular index may take and still be modelled as categories
MAX_GAP_VALUES = 32
GAP = "__gap"
NAME = "par"
LOG_SIGMA = (-7.0, 3.0)


def noise_slots(field: dict[str, Any]) -> int:
    """Uniforms a field draws per step: the value (and its null flag)."""
    return 2 if field["kind"] == "numeric" else 1


def head_width(field: dict[str, Any]) -> int:
    if field["kind"] == "numeric":
        return 4 if field["nulls"] else 2
    return len(field["values"])


@dataclass
class Sampled:
    """Per step field, one value per step of every entity (entities in order, each entity's
    steps in order): scores and null flags of numeric fields, codes of categorical ones."""

    scores: dict[str, np.ndarray]
    nulls: dict[str, np.ndarray]
    codes: dict[str, np.ndarray]


@contextlib.contextmanager
def torch_threads() -> Iterator[None]:
    """One torch thread while the block runs, unless the job's ``math_threads`` says
    otherwise: a recurrent step's ops are microseconds, which intra-op threads only slow
    down (by far, on shared cores). The previous setting is restored."""
    import torch

    before = torch.get_num_threads()
    wanted = int(os.environ.get("SYNTHFACTORY_TORCH_THREADS") or 1)
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _network(context_width: int, codec: Codec, hidden: int) -> Any:
    import torch
    from torch import nn

    step_width = codec.width
    spans = codec.spans()

    class StepNetwork(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.start = nn.Sequential(nn.Linear(max(context_width, 1), hidden), nn.Tanh())
            self.gru = nn.GRU(step_width + 1 + context_width, hidden, batch_first=True)
            self.heads = nn.ModuleList(
                nn.Sequential(
                    nn.Linear(hidden + step_width, hidden),
                    nn.ReLU(),
                    nn.Linear(hidden, head_width(f)),
                )
                for f in codec.fields
            )
            masks = torch.zeros(len(spans), step_width)
            for j, (start, _) in enumerate(spans):
                masks[j, :start] = 1.0  # the fields of the same step before field j
            self.register_buffer("masks", masks)

        def initial(self, context: torch.Tensor) -> torch.Tensor:
            if context.shape[1] == 0:
                context = torch.zeros(context.shape[0], 1, device=context.device)
            return torch.as_tensor(self.start(context)).unsqueeze(0)

        def states(
            self, context: torch.Tensor, previous: torch.Tensor, h: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            steps = previous.shape[1]
            given = context.unsqueeze(1).expand(-1, steps, -1)
            out, h = self.gru(torch.cat([previous, given], dim=2), h)
            return out, h

        def head(self, j: int, h: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
            mask = torch.as_tensor(self.masks)[j]
            return torch.as_tensor(self.heads[j](torch.cat([h, current * mask], dim=-1)))

    return StepNetwork()


class StepModel:
    """Fit on the source's entities, then sample steps for given contexts and lengths."""

    def __init__(self, options: dict[str, Any], seed: int = 0, device: str = "cpu") -> None:
        self.options = options
        self.seed = seed
        self.device = device
        self.context_codec = Codec([])
        self.step_codec = Codec([])
        self.history: list[dict[str, float]] = []
        self.net: Any = None

    def _build(self) -> None:
        width = self.context_codec.width
        self.net = _network(width, self.step_codec, int(self.options["hidden_size"]))
        self.net.to(self.device)

    # -- fitting ------------------------------------------------------------------------
    def fit(
        self,
        context: Any,
        context_types: dict[str, str],
        steps: Any,
        step_types: dict[str, str],
        lengths: np.ndarray,
    ) -> None:
        """``context``: one row per entity; ``steps``: every entity's steps, entity after
        entity in the same order (``lengths[i]`` rows for entity i), first steps' gaps
        being any valid value (they are masked)."""
        with torch_threads():
            self._fit(context, context_types, steps, step_types, lengths)

    def _fit(
        self,
        context: Any,
        context_types: dict[str, str],
        steps: Any,
        step_types: dict[str, str],
        lengths: np.ndarray,
    ) -> None:
        import torch

        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        first = np.zeros(len(steps), dtype=bool)
        first[np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)] = True
        self.context_codec = Codec.fit(context, context_types)
        columns = [c for c in steps.columns if c != GAP]
        fields = Codec.fit(steps[columns], step_types).fields
        if GAP in steps.columns:  # the gaps of later steps (a first step has none)
            fields = Codec.fit(steps.loc[~first, [GAP]], step_types).fields + fields
        self.step_codec = Codec(fields)
        self._build()
        c = torch.from_numpy(self.context_codec.encode(context).inputs).to(self.device)
        x, valid, targets = self._padded(steps, lengths, first)
        self.history = []
        if not self.step_codec.fields:  # every column is context: no step to learn
            self.net.eval()
            return
        self._train(c, x, valid, targets, lengths, rng)

    def _padded(
        self, steps: Any, lengths: np.ndarray, first: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, tuple[torch.Tensor, ...]]]:
        """The encoded steps as (entity, step) tensors: inputs (a first step's gap zeroed),
        which steps exist, and each field's targets."""
        import torch

        encoded = self.step_codec.encode(steps)
        inputs = encoded.inputs.copy()
        gap = next(
            (
                s
                for f, s in zip(self.step_codec.fields, self.step_codec.spans(), strict=True)
                if f["name"] == GAP
            ),
            None,
        )
        if gap is not None:
            inputs[first, gap[0] : gap[1]] = 0.0
        n, longest = len(lengths), int(lengths.max())
        where = _positions(lengths)
        x = np.zeros((n, longest, self.step_codec.width), dtype=np.float32)
        x[where] = inputs
        valid = np.zeros((n, longest), dtype=bool)
        valid[where] = True
        targets: dict[str, Any] = {}
        for f in self.step_codec.fields:
            name = f["name"]
            if f["kind"] == "numeric":
                z = np.zeros((n, longest), dtype=np.float32)
                z[where] = encoded.scores[name]
                null = np.zeros((n, longest), dtype=np.int64)
                null[where] = encoded.nulls[name]
                targets[name] = (torch.from_numpy(z), torch.from_numpy(null))
            else:
                code = np.zeros((n, longest), dtype=np.int64)
                code[where] = encoded.codes[name]
                targets[name] = (torch.from_numpy(code),)
        moved = {k: tuple(t.to(self.device) for t in v) for k, v in targets.items()}
        device = self.device
        return torch.from_numpy(x).to(device), torch.from_numpy(valid).to(device), moved

    def _train(
        self,
        c: torch.Tensor,
        x: torch.Tensor,
        valid: torch.Tensor,
        targets: dict[str, tuple[torch.Tensor, ...]],
        lengths: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        import torch

        from synthfactory_workers.telemetry import METER

        o = self.options
        n = len(lengths)
        opt = torch.optim.Adam(self.net.parameters(), lr=float(o["learning_rate"]))
        batch = max(1, min(int(o["batch_size"]), n))
        self.net.train()
        for epoch in range(int(o["epochs"])):
            order = rng.permutation(n)
            total, count = 0.0, 0
            for start in range(0, n, batch):
                rows = torch.from_numpy(order[start : start + batch]).to(self.device)
                size = int(lengths[order[start : start + batch]].max())
                loss = self._loss(
                    c[rows],
                    x[rows, :size],
                    valid[rows, :size],
                    {k: tuple(t[rows, :size] for t in v) for k, v in targets.items()},
                )
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
                opt.step()
                total += float(loss.item())
                count += 1
            values = {"epoch": float(epoch + 1), "loss": total / max(count, 1)}
            self.history.append(values)
            METER.epoch(values)
            if (epoch + 1) % 50 == 0 or epoch + 1 == int(o["epochs"]):
                log.info("par epoch %d: loss=%.4f", epoch + 1, values["loss"])
        self.net.eval()

    def _loss(
        self,
        context: torch.Tensor,
        x: torch.Tensor,
        valid: torch.Tensor,
        targets: dict[str, tuple[torch.Tensor, ...]],
    ) -> torch.Tensor:
        import torch
        from torch.nn import functional

        size = x.shape[0]
        start = torch.zeros(size, 1, x.shape[2] + 1, device=x.device)
        start[:, 0, -1] = 1.0
        shifted = torch.cat([x[:, :-1], torch.zeros(size, x.shape[1] - 1, 1, device=x.device)], 2)
        previous = torch.cat([start, shifted], dim=1)
        h, _ = self.net.states(context, previous, self.net.initial(context))
        total = torch.zeros((), device=x.device)
        later = torch.zeros_like(valid)
        later[:, 1:] = True
        for j, f in enumerate(self.step_codec.fields):
            out = self.net.head(j, h, x)
            mask = valid & later if f["name"] == GAP else valid
            if f["kind"] == "numeric":
                z, null = targets[f["name"]]
                mu, log_sigma = out[..., 0], out[..., 1].clamp(*LOG_SIGMA)
                nll = 0.5 * ((z - mu) / log_sigma.exp()) ** 2 + log_sigma
                observed = mask & (null == 0)
                total = total + (nll * observed).sum()
                if f["nulls"]:
                    ce = functional.cross_entropy(
                        out[..., 2:4].transpose(1, 2), null, reduction="none"
                    )
                    total = total + (ce * mask).sum()
            else:
                (code,) = targets[f["name"]]
                ce = functional.cross_entropy(out.transpose(1, 2), code, reduction="none")
                total = total + (ce * mask).sum()
        return total / valid.sum().clamp(min=1)

    # -- sampling -----------------------------------------------------------------------
    @property
    def noise_width(self) -> int:
        """Uniforms one step of one entity draws."""
        return sum(noise_slots(f) for f in self.step_codec.fields)

    def sample(self, context: Any, lengths: np.ndarray, noise: list[np.ndarray]) -> Sampled:
        """Steps for entities with these contexts (one row each) and lengths; ``noise[i]``:
        entity i's uniforms, ``lengths[i]`` x ``noise_width``."""
        with torch_threads():
            return self._sample(context, lengths, noise)

    def _sample(self, context: Any, lengths: np.ndarray, noise: list[np.ndarray]) -> Sampled:
        import torch

        n = len(lengths)
        fields = self.step_codec.fields
        if n == 0:
            empty = np.zeros(0)
            return Sampled(
                {f["name"]: empty for f in fields if f["kind"] == "numeric"},
                {f["name"]: empty.astype(np.int64) for f in fields if f["kind"] == "numeric"},
                {f["name"]: empty.astype(np.int64) for f in fields if f["kind"] != "numeric"},
            )
        longest = int(lengths.max())
        u = np.full((n, longest, self.noise_width), 0.5)
        for i, draws in enumerate(noise):
            u[i, : len(draws)] = draws
        u_t = torch.from_numpy(np.clip(u, 1e-7, 1 - 1e-7)).float().to(self.device)
        c = torch.from_numpy(self.context_codec.encode(context).inputs).to(self.device)
        width = self.step_codec.width
        scores = {f["name"]: torch.zeros(n, longest) for f in fields if f["kind"] == "numeric"}
        nulls = {name: torch.zeros(n, longest, dtype=torch.long) for name in scores}
        codes = {
            f["name"]: torch.zeros(n, longest, dtype=torch.long)
            for f in fields
            if f["kind"] != "numeric"
        }
        with torch.no_grad():
            h = self.net.initial(c)
            previous = torch.zeros(n, 1, width + 1, device=self.device)
            previous[:, 0, -1] = 1.0
            for t in range(longest):
                out, h = self.net.states(c, previous, h)
                current = self._step(out[:, 0], u_t[:, t], t, (scores, nulls, codes))
                previous = torch.cat([current, torch.zeros(n, 1, device=self.device)], 1)[:, None]
        where = _positions(lengths)
        return Sampled(
            {k: v.numpy()[where].astype(float) for k, v in scores.items()},
            {k: v.numpy()[where] for k, v in nulls.items()},
            {k: v.numpy()[where] for k, v in codes.items()},
        )

    def _step(
        self,
        state: torch.Tensor,
        u: torch.Tensor,
        t: int,
        out: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]],
    ) -> torch.Tensor:
        """Step ``t`` of every entity, field by field from the network's ``state`` and the
        step's uniforms ``u``, written into ``out`` (scores, nulls, codes); returns the
        step as the next step's input."""
        import torch

        scores, nulls, codes = out
        n = state.shape[0]
        current = torch.zeros(n, self.step_codec.width, device=self.device)
        slot = 0
        fields, spans = self.step_codec.fields, self.step_codec.spans()
        for j, (f, (s, e)) in enumerate(zip(fields, spans, strict=True)):
            name = f["name"]
            if name == GAP and t == 0:  # the first step's index is the context's
                slot += noise_slots(f)
                continue
            o = self.net.head(j, state, current)
            if f["kind"] == "numeric":
                mu, log_sigma = o[:, 0], o[:, 1].clamp(*LOG_SIGMA)
                z = mu + log_sigma.exp() * torch.special.ndtri(u[:, slot])
                null = torch.zeros(n, dtype=torch.long, device=self.device)
                if f["nulls"]:
                    p_null = torch.softmax(o[:, 2:4], dim=1)[:, 1]
                    null = (u[:, slot + 1] < p_null).long()
                    current[:, s + 1] = null.float()
                z = torch.where(null.bool(), torch.zeros_like(z), z)
                current[:, s] = z
                scores[name][:, t] = z.cpu()
                nulls[name][:, t] = null.cpu()
            else:
                cdf = torch.cumsum(torch.softmax(o, dim=1), dim=1)
                code = (cdf < u[:, slot : slot + 1]).sum(dim=1).clamp(max=e - s - 1)
                current[torch.arange(n), s + code] = 1.0
                codes[name][:, t] = code.cpu()
            slot += noise_slots(f)
        return current

    # -- storage ------------------------------------------------------------------------
    def save(self) -> bytes:
        header = {
            "synthesizer": NAME,
            "options": self.options,
            "seed": self.seed,
            "context_codec": self.context_codec.to_dict(),
            "step_codec": self.step_codec.to_dict(),
            "history": self.history,
        }
        return pack(header, dict(self.net.state_dict()))

    @classmethod
    def load(cls, data: bytes, device: str = "cpu") -> StepModel:
        header, tensors = unpack(data)
        if header.get("synthesizer") != NAME:
            raise ConfigError(
                f"the cached model is a {header.get('synthesizer')}, not a sequence model",
                fix="delete the cached model under the output's _artifacts/ to refit",
            )
        model = cls(header["options"], header["seed"], device)
        model.context_codec = Codec.from_dict(header["context_codec"])
        model.step_codec = Codec.from_dict(header["step_codec"])
        model.history = header["history"]
        model._build()
        model.net.load_state_dict(tensors)
        model.net.to(device)
        model.net.eval()
        return model


def _positions(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(entity, step) of every step, entity after entity."""
    entity = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
    step = np.arange(int(np.sum(lengths))) - np.repeat(starts, lengths)
    return entity, step
