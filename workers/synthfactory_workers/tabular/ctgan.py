"""CTGAN (Xu, Skoularidou, Cuesta-Infante & Veeramachaneni, "Modeling Tabular Data using
Conditional GAN", NeurIPS 2019), in torch.

- mode-specific normalisation of continuous columns (``transformer.py``);
- a conditional vector naming one category of one discrete column, chosen by
  *training-by-sampling*: the column uniformly, the category by log-frequency, and the real
  rows shown to the critic drawn from rows having that category; the generator is also
  penalised by the cross-entropy between its output for that column and the condition;
- a residual generator (fully connected + batch norm + ReLU, input concatenated) with tanh
  for alphas and Gumbel-softmax for one-hot spans;
- a PacGAN critic judging ``pac`` rows at once, trained with the WGAN-GP loss.

At sampling time a condition on a discrete column becomes the conditional vector; other
conditions are met by rejection (``Synthesizer.sample``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from synthfactory.spec.generators.tabular import CTGANConfig
from synthfactory_workers.tabular.neural import NeuralGenerator, NeuralSynthesizer

if TYPE_CHECKING:
    import pandas as pd
    import torch

GUMBEL_TAU = 0.2
GRADIENT_PENALTY = 10.0


def _modules() -> Any:
    """The torch modules, defined on first use so importing this file stays light."""
    import torch
    from torch import nn

    class Residual(nn.Module):
        def __init__(self, i: int, o: int) -> None:
            super().__init__()
            self.fc = nn.Linear(i, o)
            self.bn = nn.BatchNorm1d(o)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([torch.relu(self.bn(self.fc(x))), x], dim=1)

    class Generator(nn.Module):
        def __init__(self, embedding: int, dims: list[int], data_dim: int) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            width = embedding
            for d in dims:
                layers.append(Residual(width, d))
                width += d
            layers.append(nn.Linear(width, data_dim))
            self.seq = nn.Sequential(*layers)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.as_tensor(self.seq(x))

    class Critic(nn.Module):
        def __init__(self, input_dim: int, dims: list[int], pac: int) -> None:
            super().__init__()
            self.pac = pac
            self.pacdim = input_dim * pac
            layers: list[nn.Module] = []
            width = self.pacdim
            for d in dims:
                layers += [nn.Linear(width, d), nn.LeakyReLU(0.2), nn.Dropout(0.5)]
                width = d
            layers.append(nn.Linear(width, 1))
            self.seq = nn.Sequential(*layers)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.as_tensor(self.seq(x.view(-1, self.pacdim)))

    return Generator, Critic


class CondSampler:
    """Conditional vectors and training-by-sampling over the discrete columns' spans."""

    def __init__(self, spans: list[tuple[int, int]], frequencies: list[list[int]]) -> None:
        self.spans = spans  # (start in data, width) per discrete column
        self.offsets = np.concatenate([[0], np.cumsum([w for _, w in spans])]).astype(int)
        self.dim = int(self.offsets[-1])
        self.log_probs: list[np.ndarray] = []
        self.freq_probs: list[np.ndarray] = []
        for counts in frequencies:
            c = np.asarray(counts, dtype=float)
            logs = np.log(c + 1)
            self.log_probs.append(logs / logs.sum())
            self.freq_probs.append(c / c.sum())
        self.rows: list[list[np.ndarray]] = []

    def index_rows(self, onehot: np.ndarray) -> None:
        """Remember which training rows hold each category (for training-by-sampling)."""
        self.rows = []
        for start, width in self.spans:
            codes = onehot[:, start : start + width].argmax(axis=1)
            self.rows.append([np.flatnonzero(codes == k) for k in range(width)])

    def train_vectors(
        self, batch: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(cond, mask, column, category): column uniformly, category by log-frequency."""
        column = rng.integers(0, len(self.spans), batch)
        category = np.array(
            [rng.choice(len(self.log_probs[c]), p=self.log_probs[c]) for c in column]
        )
        cond = np.zeros((batch, self.dim), dtype=np.float32)
        cond[np.arange(batch), self.offsets[column] + category] = 1.0
        mask = np.zeros((batch, len(self.spans)), dtype=np.float32)
        mask[np.arange(batch), column] = 1.0
        return cond, mask, column, category

    def real_rows(
        self, column: np.ndarray, category: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Training-by-sampling: one real row having each (column, category)."""
        return np.array(
            [rng.choice(self.rows[c][k]) for c, k in zip(column, category, strict=True)]
        )

    def sample_vectors(
        self, batch: int, rng: np.random.Generator, fixed: tuple[int, int] | None
    ) -> np.ndarray:
        """Conditional vectors at sampling time: the condition when given, else a column
        uniformly and a category by its true frequency (so output keeps the source's mix)."""
        cond = np.zeros((batch, self.dim), dtype=np.float32)
        if not self.spans:
            return cond
        if fixed is not None:
            cond[:, self.offsets[fixed[0]] + fixed[1]] = 1.0
            return cond
        column = rng.integers(0, len(self.spans), batch)
        category = np.array(
            [rng.choice(len(self.freq_probs[c]), p=self.freq_probs[c]) for c in column]
        )
        cond[np.arange(batch), self.offsets[column] + category] = 1.0
        return cond


class CTGAN(NeuralSynthesizer):
    name: ClassVar[str] = "ctgan"
    defaults: ClassVar[dict[str, Any]] = CTGANConfig.default_options()

    def _build(self) -> None:
        generator_cls, critic_cls = _modules()
        by_name = {c["name"]: c for c in self.transformer.columns}
        spans = self.transformer.discrete_spans()
        self.cond = CondSampler(
            [(s.start, s.width) for s in spans], [by_name[s.column]["frequencies"] for s in spans]
        )
        data_dim = self.transformer.output_dim
        o = self.options
        self.generator = generator_cls(
            o["embedding_dim"] + self.cond.dim, o["generator_dims"], data_dim
        ).to(self.device)
        self.critic = critic_cls(data_dim + self.cond.dim, o["discriminator_dims"], o["pac"]).to(
            self.device
        )

    def _networks(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "critic": self.critic}

    def _activate(
        self, raw: torch.Tensor, hard_noise: torch.Generator | None = None
    ) -> torch.Tensor:
        """tanh on alphas, Gumbel-softmax on one-hot spans (``hard_noise``: sampling, where
        Gumbel noise + argmax draws a category from the softmax, reproducibly)."""
        import torch
        from torch.nn import functional

        parts = []
        for span in self.transformer.spans():
            block = raw[:, span.start : span.start + span.width]
            if span.activation == "tanh":
                parts.append(torch.tanh(block))
            elif hard_noise is None:
                parts.append(functional.gumbel_softmax(block, tau=GUMBEL_TAU))
            else:
                u = torch.rand(block.shape, generator=hard_noise, device=block.device)
                gumbel = -torch.log(-torch.log(u.clamp(1e-10, 1 - 1e-10)))
                index = (block + gumbel).argmax(dim=1)
                parts.append(functional.one_hot(index, span.width).to(block.dtype))
        return torch.cat(parts, dim=1)

    def _cond_loss(self, raw: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        import torch
        from torch.nn import functional

        losses = []
        for i, span in enumerate(self.transformer.discrete_spans()):
            target = cond[:, self.cond.offsets[i] : self.cond.offsets[i + 1]].argmax(dim=1)
            logits = raw[:, span.start : span.start + span.width]
            losses.append(functional.cross_entropy(logits, target, reduction="none"))
        if not losses:
            return torch.zeros((), device=raw.device)
        return (torch.stack(losses, dim=1) * mask).sum() / raw.shape[0]

    def _train(self, data: np.ndarray, rng: np.random.Generator) -> None:
        import torch

        o = self.options
        self._build()
        self.cond.index_rows(data)
        opt_g = torch.optim.Adam(
            self.generator.parameters(),
            lr=o["generator_lr"],
            betas=(0.5, 0.9),
            weight_decay=o["generator_decay"],
        )
        opt_d = torch.optim.Adam(
            self.critic.parameters(),
            lr=o["discriminator_lr"],
            betas=(0.5, 0.9),
            weight_decay=o["discriminator_decay"],
        )
        tensor = torch.from_numpy(data).to(self.device)
        batch, pac = o["batch_size"], o["pac"]
        batch = max(pac, min(batch, (len(data) // pac) * pac or pac))
        steps = max(len(data) // batch, 1)
        self.generator.train()
        self.critic.train()
        for epoch in range(o["epochs"]):
            loss_g_sum = loss_d_sum = 0.0
            for _ in range(steps):
                for _ in range(o["discriminator_steps"]):
                    loss_d = self._critic_step(tensor, batch, rng, opt_d)
                loss_g = self._generator_step(batch, rng, opt_g)
                loss_g_sum += loss_g
                loss_d_sum += loss_d
            self.log_epoch(
                {"epoch": epoch + 1, "loss_g": loss_g_sum / steps, "loss_d": loss_d_sum / steps}
            )
        self.generator.eval()
        self.critic.eval()

    def _noise_and_cond(
        self, batch: int, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, np.ndarray, np.ndarray]:
        import torch

        z = torch.randn(batch, self.options["embedding_dim"], device=self.device)
        if not self.cond.spans:
            return z, None, None, np.zeros(0, int), np.zeros(0, int)
        cond, mask, column, category = self.cond.train_vectors(batch, rng)
        c = torch.from_numpy(cond).to(self.device)
        return torch.cat([z, c], dim=1), c, torch.from_numpy(mask).to(self.device), column, category

    def _critic_step(
        self,
        data: torch.Tensor,
        batch: int,
        rng: np.random.Generator,
        opt: torch.optim.Optimizer,
    ) -> float:
        import torch

        z, c, _, column, category = self._noise_and_cond(batch, rng)
        if c is None:
            real = data[torch.from_numpy(rng.integers(0, len(data), batch)).to(self.device)]
        else:
            order = rng.permutation(batch)  # the real rows get a shuffled copy of the conditions
            rows = self.cond.real_rows(column[order], category[order], rng)
            real = torch.cat([data[torch.from_numpy(rows).to(self.device)], c[order]], dim=1)
        fake = self._activate(self.generator(z))
        if c is not None:
            fake = torch.cat([fake, c], dim=1)
        y_fake = self.critic(fake.detach())
        y_real = self.critic(real)
        penalty = self._gradient_penalty(real, fake.detach())
        loss = -(y_real.mean() - y_fake.mean())
        opt.zero_grad(set_to_none=False)
        penalty.backward(retain_graph=True)
        loss.backward()
        opt.step()
        return float(loss.item())

    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        import torch

        pac = self.options["pac"]
        width = real.shape[1]
        alpha = torch.rand(real.shape[0] // pac, 1, 1, device=self.device)
        alpha = alpha.repeat(1, pac, width).view(-1, width)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        out = self.critic(mixed)
        (grad,) = torch.autograd.grad(
            outputs=out,
            inputs=mixed,
            grad_outputs=torch.ones_like(out),
            create_graph=True,
            retain_graph=True,
        )
        norms = grad.view(-1, pac * width).norm(2, dim=1) - 1
        return (norms**2).mean() * GRADIENT_PENALTY

    def _generator_step(
        self, batch: int, rng: np.random.Generator, opt: torch.optim.Optimizer
    ) -> float:
        import torch

        z, c, mask, _, _ = self._noise_and_cond(batch, rng)
        raw = self.generator(z)
        fake = self._activate(raw)
        if c is not None and mask is not None:
            y_fake = self.critic(torch.cat([fake, c], dim=1))
            loss = -y_fake.mean() + self._cond_loss(raw, c, mask)
        else:
            loss = -self.critic(fake).mean()
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        return float(loss.item())

    def _sample(self, n: int, seed: int, conditions: dict[str, Any]) -> pd.DataFrame:
        import torch

        fixed = None
        spans = self.transformer.discrete_spans()
        for i, span in enumerate(spans):
            if span.column in conditions:
                fixed = (i, self.transformer.category_index(span.column, conditions[span.column]))
                break
        rng = np.random.default_rng(seed)
        noise = torch.Generator(device=self.device).manual_seed(seed)
        batch = 4096
        parts = []
        self.generator.eval()
        with torch.no_grad():
            for start in range(0, n, batch):
                size = min(batch, n - start)
                z = torch.randn(
                    size, self.options["embedding_dim"], generator=noise, device=self.device
                )
                if self.cond.dim:
                    cond = torch.from_numpy(self.cond.sample_vectors(size, rng, fixed))
                    z = torch.cat([z, cond.to(self.device)], dim=1)
                parts.append(self._activate(self.generator(z), hard_noise=noise).cpu().numpy())
        data = np.concatenate(parts) if parts else np.zeros((0, self.transformer.output_dim))
        return self.transformer.inverse(data, self.enforce_min_max)


class CTGANGenerator(NeuralGenerator):
    synthesizer: ClassVar[type[CTGAN]] = CTGAN
