"""Train the tiny unconditional diffusion model synthfactory ships as `builtin:digits`.

Data: scikit-learn's bundled 8x8 handwritten digits (1,797 images; no download), upsampled
to 16x16. Model: a ~1 M-parameter diffusers UNet2DModel with a DDPM noise schedule. About
2-3 minutes on two CPU cores; the result is saved as a standard DDPMPipeline folder, loaded
through the same `from_pretrained` path a user's model takes.

    .venv/bin/python examples/train_digits_diffusion.py [--steps 1500] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DEFAULT_OUT = (
    Path(__file__).resolve().parents[1]
    / "workers"
    / "synthfactory_workers"
    / "image"
    / "models"
    / "digits"
)


def main() -> None:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel
    from sklearn.datasets import load_digits

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    torch.manual_seed(0)
    images = torch.tensor(load_digits().images, dtype=torch.float32)[:, None] / 16.0
    images = F.interpolate(images, size=16, mode="bilinear", align_corners=False) * 2 - 1
    unet = UNet2DModel(
        sample_size=16,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    )
    print(f"UNet parameters: {sum(p.numel() for p in unet.parameters()):,}")
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    optimizer = torch.optim.AdamW(unet.parameters(), lr=2e-3, weight_decay=1e-4)
    lr = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=args.steps)
    started = time.time()
    rng = np.random.default_rng(0)
    for step in range(args.steps):
        batch = images[rng.integers(0, len(images), args.batch)]
        noise = torch.randn_like(batch)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(batch),))
        loss = F.mse_loss(unet(scheduler.add_noise(batch, noise, t), t).sample, noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        lr.step()
        if step % 100 == 0:
            print(f"step {step:5d}  loss {loss.item():.4f}  {time.time() - started:.0f}s")
    pipeline = DDPMPipeline(unet=unet.eval(), scheduler=scheduler)
    pipeline.save_pretrained(args.out)
    print(f"saved to {args.out} after {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
