"""TVAE (Xu et al., "Modeling Tabular Data using Conditional GAN", NeurIPS 2019, section 4.3),
in torch: a variational autoencoder over the mode-specific-normalisation transform.

The encoder maps a row to the mean and log-variance of a Gaussian latent; the decoder
maps a latent back to the row's spans: each alpha is Gaussian around ``tanh(output)``
with a learned scale (kept in [0.01, 1]), each one-hot span categorical (softmax). The
loss is ``loss_factor`` x reconstruction + KL divergence to N(0, I). Sampling decodes
N(0, I) draws, adds each alpha's learned noise and draws each category from the
decoder's softmax (the decoder's likelihood, rather than its most likely category, which
would never produce a rare class).
Conditions are met by rejection (``Synthesizer.sample``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from synthfactory.spec.generators.tabular import TVAEConfig
from synthfactory_workers.tabular.neural import NeuralGenerator, NeuralSynthesizer

if TYPE_CHECKING:
    import pandas as pd
    import torch


def _modules() -> Any:
    import torch
    from torch import nn

    class Encoder(nn.Module):
        def __init__(self, data_dim: int, dims: list[int], embedding: int) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            width = data_dim
            for d in dims:
                layers += [nn.Linear(width, d), nn.ReLU()]
                width = d
            self.seq = nn.Sequential(*layers)
            self.mu = nn.Linear(width, embedding)
            self.logvar = nn.Linear(width, embedding)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.seq(x)
            return self.mu(h), self.logvar(h)

    class Decoder(nn.Module):
        def __init__(self, embedding: int, dims: list[int], data_dim: int) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            width = embedding
            for d in dims:
                layers += [nn.Linear(width, d), nn.ReLU()]
                width = d
            layers.append(nn.Linear(width, data_dim))
            self.seq = nn.Sequential(*layers)
            self.sigma = nn.Parameter(torch.ones(data_dim) * 0.1)

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return torch.as_tensor(self.seq(z))

    return Encoder, Decoder


class TVAE(NeuralSynthesizer):
    name: ClassVar[str] = "tvae"
    defaults: ClassVar[dict[str, Any]] = TVAEConfig.default_options()

    def _build(self) -> None:
        encoder_cls, decoder_cls = _modules()
        o = self.options
        data_dim = self.transformer.output_dim
        self.encoder = encoder_cls(data_dim, o["compress_dims"], o["embedding_dim"]).to(self.device)
        self.decoder = decoder_cls(o["embedding_dim"], o["decompress_dims"], data_dim).to(
            self.device
        )

    def _networks(self) -> dict[str, torch.nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder}

    def _loss(
        self, recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
    ) -> torch.Tensor:
        import torch
        from torch.nn import functional

        sigmas = self.decoder.sigma
        parts = []
        for span in self.transformer.spans():
            s, e = span.start, span.start + span.width
            if span.activation == "tanh":
                std = sigmas[s]
                diff = x[:, s] - torch.tanh(recon[:, s])
                parts.append((diff**2 / 2 / std**2).sum() + torch.log(std) * x.shape[0])
            else:
                parts.append(
                    functional.cross_entropy(
                        recon[:, s:e], x[:, s:e].argmax(dim=1), reduction="sum"
                    )
                )
        kld = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp())
        return (self.options["loss_factor"] * torch.stack(parts).sum() + kld) / x.shape[0]

    def _train(self, data: np.ndarray, rng: np.random.Generator) -> None:
        import torch

        o = self.options
        self._build()
        params = [*self.encoder.parameters(), *self.decoder.parameters()]
        opt = torch.optim.Adam(params, lr=o["learning_rate"], weight_decay=o["l2scale"])
        tensor = torch.from_numpy(data).to(self.device)
        batch = max(1, min(o["batch_size"], len(data)))
        self.encoder.train()
        self.decoder.train()
        for epoch in range(o["epochs"]):
            order = torch.from_numpy(rng.permutation(len(data))).to(self.device)
            total, steps = 0.0, 0
            for start in range(0, len(data) - batch + 1, batch):
                x = tensor[order[start : start + batch]]
                mu, logvar = self.encoder(x)
                z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
                loss = self._loss(self.decoder(z), x, mu, logvar)
                opt.zero_grad()
                loss.backward()
                opt.step()
                self.decoder.sigma.data.clamp_(0.01, 1.0)
                total += float(loss.item())
                steps += 1
            self.log_epoch({"epoch": epoch + 1, "loss": total / max(steps, 1)})
        self.encoder.eval()
        self.decoder.eval()

    def _sample(self, n: int, seed: int, conditions: dict[str, Any]) -> pd.DataFrame:
        import torch

        noise = torch.Generator(device=self.device).manual_seed(seed)
        rng = np.random.default_rng(seed)
        parts = []
        self.decoder.eval()
        with torch.no_grad():
            for start in range(0, n, 4096):
                size = min(4096, n - start)
                z = torch.randn(
                    size, self.options["embedding_dim"], generator=noise, device=self.device
                )
                raw = self.decoder(z)
                out = raw.clone()
                for span in self.transformer.spans():
                    if span.activation == "tanh":
                        out[:, span.start] = torch.tanh(raw[:, span.start])
                    else:  # Gumbel-max: the argmax in inverse() draws from the softmax
                        s, e = span.start, span.start + span.width
                        u = torch.rand(raw[:, s:e].shape, generator=noise, device=self.device)
                        out[:, s:e] += -torch.log(-torch.log(u.clamp(1e-10, 1 - 1e-10)))
                parts.append(out.cpu().numpy())
        data = np.concatenate(parts) if parts else np.zeros((0, self.transformer.output_dim))
        sigmas = self.decoder.sigma.detach().cpu().numpy()
        return self.transformer.inverse(data, self.enforce_min_max, sigmas=sigmas, rng=rng)


class TVAEGenerator(NeuralGenerator):
    synthesizer: ClassVar[type[TVAE]] = TVAE
