"""Tiny randomly initialised image encoders saved to a folder, so code under test loads them
through the same from_pretrained path a user's model takes (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SIZE = 32
TINY = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2}
TINY_VISION = {**TINY, "num_attention_heads": 4, "image_size": SIZE, "patch_size": 8}


def save(folder: Path, model: Any, processor: Any) -> str:
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


def tiny_clip(folder: Path) -> str:
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    config = CLIPVisionConfig(**TINY_VISION, projection_dim=16)
    processor = CLIPImageProcessor(
        size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE}
    )
    return save(folder, CLIPVisionModelWithProjection(config), processor)
