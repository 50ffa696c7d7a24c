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


def tiny_full_clip(folder: Path) -> str:
    """A full CLIP checkpoint (vision and text towers with projections) with a tokenizer
    of a small character-level vocabulary, as a model folder."""
    import importlib.util

    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    path = Path(__file__).resolve().parents[1] / "image" / "tiny_pipelines.py"
    spec = importlib.util.spec_from_file_location("tiny_pipelines", path)
    assert spec and spec.loader
    pipelines = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pipelines)
    tokenizer: Any = pipelines.clip_tokenizer(folder / "_vocab")
    text = {**TINY, "num_attention_heads": 4, "vocab_size": len(tokenizer)}
    text.update(
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(3)
    config = CLIPConfig(text_config=text, vision_config=TINY_VISION, projection_dim=16)
    processor = CLIPImageProcessor(
        size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE}
    )
    tokenizer.save_pretrained(folder)
    return save(folder, CLIPModel(config).eval(), processor)
