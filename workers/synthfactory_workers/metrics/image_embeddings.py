"""Diversity and reference similarity of images in the embedding space of an image encoder.

The encoder is a Hugging Face id or a local folder (config.json + weights + the image
processor's preprocessor_config.json). A CLIP checkpoint (full CLIP or vision-only) is read
with ``CLIPVisionModelWithProjection`` and embeds to its projected ``image_embeds``; any
other model is read with ``AutoModel`` and embeds to, in order of preference, its
``get_image_features`` (SigLIP-style dual encoders), ``image_embeds``, ``pooler_output``
(only when the checkpoint holds trained pooler weights) or the mean of
``last_hidden_state`` over tokens. Embeddings are L2-normalised and compared by cosine.
Encoders run in fp32 (so near-duplicate similarities stay precise) and are kept per
(encoder, device) in this process. The Fréchet distance to the reference images is
computed on the raw (un-normalised) embeddings. A full CLIP checkpoint's text tower
(``CLIPTextModelWithProjection`` and the folder's tokenizer) embeds prompts for the CLIP
score.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from synthfactory.errors import ConfigError
from synthfactory_workers.devices import resolve_device

CLIP_TYPES = ("clip", "clip_vision_model")

# (encoder as given, resolved device) -> (model, image processor, how to read an embedding)
_LOADED: dict[tuple[str, str], tuple[Any, Any, str]] = {}
# (encoder, device) -> (CLIP text model, tokenizer, max tokens), or why there is none
_TEXT_LOADED: dict[tuple[str, str], tuple[Any, Any, int] | str] = {}


def _check_path(encoder: str) -> None:
    path = Path(encoder).expanduser()
    if path.is_absolute() or encoder.startswith((".", "~")):
        if not path.is_dir():
            raise ConfigError(
                f"encoder folder {encoder} does not exist",
                fix="pass a folder with config.json, weights and preprocessor_config.json, "
                "or a Hugging Face id reachable from the workers",
            )
        if not (path / "config.json").exists():
            raise ConfigError(
                f"encoder folder {encoder} has no config.json", fix="point at a model folder"
            )


def _load(encoder: str, device: str) -> tuple[Any, Any, str]:
    key = (encoder, device)
    if key in _LOADED:
        return _LOADED[key]
    _check_path(encoder)
    from transformers import AutoConfig, AutoImageProcessor, AutoModel

    try:
        config = AutoConfig.from_pretrained(encoder)
        processor = AutoImageProcessor.from_pretrained(encoder)
        if config.model_type in CLIP_TYPES:
            from transformers import CLIPVisionModelWithProjection

            kwargs: dict[str, Any] = {}
            if config.model_type == "clip":
                # a full CLIP checkpoint: its projection size is top-level, and the vision
                # config alone may carry the 512 default (the projection is then reinitialised)
                vision = config.vision_config
                vision.projection_dim = config.projection_dim
                kwargs["config"] = vision
            loaded: Any = CLIPVisionModelWithProjection.from_pretrained(
                encoder, output_loading_info=True, **kwargs
            )
            model, info = loaded
            mode = "image_embeds"
        else:
            loaded = AutoModel.from_pretrained(encoder, output_loading_info=True)
            model, info = loaded
            # a pooler missing from the checkpoint is randomly initialised: do not read it
            if hasattr(model, "get_image_features"):
                mode = "features"
            elif any("pooler" in name for name in info.get("missing_keys", ())):
                mode = "mean"
            else:
                mode = "pooled"
        _check_weights(encoder, info, ignore="pooler" if mode == "mean" else None)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"cannot load image encoder {encoder!r}: {exc}",
            fix="pass an image encoder (CLIP, ViT, DINOv2, SigLIP, ...) as a local folder "
            "with config.json, weights and preprocessor_config.json, or a Hugging Face id "
            "reachable from the workers",
        ) from None
    _LOADED[key] = (model.to(device).eval(), processor, mode)
    return _LOADED[key]


def _check_weights(encoder: str, info: dict[str, Any], ignore: str | None) -> None:
    """Weights missing from the checkpoint, or of the wrong shape, would be random: refuse."""
    bad = [k for k in info.get("missing_keys", ()) if not (ignore and ignore in k)]
    bad += [str(k) for k in info.get("mismatched_keys", ())]
    if bad:
        raise ConfigError(
            f"image encoder {encoder!r} lacks or mismatches weights: {sorted(bad)[:5]}",
            fix="pass a complete image encoder checkpoint",
        )


def _pick(output: Any, mode: str) -> Any:
    """The (batch, dim) embedding tensor from a model output."""
    if not hasattr(output, "keys"):  # a plain tensor (transformers 4 get_image_features)
        return output
    if output.get("image_embeds") is not None:
        return output["image_embeds"]
    if mode != "mean" and output.get("pooler_output") is not None:
        pooled = output["pooler_output"]
        return pooled.flatten(1)  # (batch, dim, 1, 1) for convolutional models
    hidden = output["last_hidden_state"]
    if hidden.dim() == 4:  # convolutional (batch, channels, h, w)
        return hidden.mean(dim=(2, 3))
    return hidden.mean(dim=1)


def _decode(images: list[bytes], first: int, what: str) -> list[Any]:
    from PIL import Image

    decoded = []
    for i, data in enumerate(images, start=first):
        try:
            with Image.open(io.BytesIO(data)) as image:
                decoded.append(image.convert("RGB"))
        except Exception as exc:  # PIL raises several types for corrupt data
            raise ValueError(f"{what} image {i} cannot be decoded: {exc}") from None
    return decoded


def embed_images(
    images: list[bytes],
    encoder: str,
    device: str = "auto",
    batch_size: int = 32,
    what: str = "",
    normalize: bool = True,
) -> Any:
    """Embeddings, a float64 numpy array of shape (len(images), dim): L2-normalised, or
    the encoder's raw output with ``normalize=False`` (what the Fréchet distance uses)."""
    import numpy as np
    import torch

    resolved = resolve_device(device)
    model, processor, mode = _load(encoder, resolved)
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = _decode(images[start : start + batch_size], start, what or "input")
            pixels = processor(images=batch, return_tensors="pt")["pixel_values"].to(resolved)
            if mode == "features":
                output = model.get_image_features(pixel_values=pixels)
            else:
                output = model(pixel_values=pixels)
            chunks.append(_pick(output, mode).float().cpu().numpy().astype(np.float64))
    if not chunks:
        return np.zeros((0, 0))
    vectors = np.concatenate(chunks)
    return _normalized(vectors) if normalize else vectors


def _normalized(vectors: Any) -> Any:
    import numpy as np

    if vectors.size == 0:
        return vectors
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _load_text(encoder: str, device: str) -> tuple[Any, Any, int] | str:
    """A full CLIP checkpoint's text tower (with its projection) and tokenizer, with the
    longest prompt it reads in tokens; or why there is none."""
    key = (encoder, device)
    if key in _TEXT_LOADED:
        return _TEXT_LOADED[key]
    _check_path(encoder)
    from transformers import AutoConfig, AutoTokenizer, CLIPTextModelWithProjection

    config = AutoConfig.from_pretrained(encoder)
    if config.model_type != "clip":
        why = (
            "a CLIP vision-only checkpoint"
            if config.model_type in CLIP_TYPES
            else f"a {config.model_type} model, not CLIP"
        )
        loaded: tuple[Any, Any, int] | str = (
            f"image encoder {encoder} has no CLIP text tower ({why}); "
            "set metrics.image_encoder to a full CLIP checkpoint"
        )
    else:
        try:
            text = config.text_config
            text.projection_dim = config.projection_dim
            tokenizer = AutoTokenizer.from_pretrained(encoder)
            pair: Any = CLIPTextModelWithProjection.from_pretrained(
                encoder, config=text, output_loading_info=True
            )
            model, info = pair
            _check_weights(encoder, info, ignore=None)
            limit = min(int(tokenizer.model_max_length), int(text.max_position_embeddings))
            loaded = (model.to(device).eval(), tokenizer, limit)
        except (OSError, ValueError, KeyError, TypeError, ConfigError) as exc:
            loaded = f"cannot load the text tower of {encoder}: {exc}"
    _TEXT_LOADED[key] = loaded
    return loaded


def embed_prompts(
    prompts: list[str], encoder: str, device: str = "auto", batch_size: int = 32
) -> Any:
    """L2-normalised CLIP text embeddings (projected ``text_embeds``) of ``prompts``, a
    float64 array (len(prompts), dim); prompts longer than the text tower reads are cut."""
    import numpy as np
    import torch

    resolved = resolve_device(device)
    loaded = _load_text(encoder, resolved)
    if isinstance(loaded, str):
        raise ConfigError(loaded, fix="pass a full CLIP checkpoint (vision and text towers)")
    model, tokenizer, limit = loaded
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            tokens = tokenizer(
                prompts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=limit,
                return_tensors="pt",
            ).to(resolved)
            output = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
            chunks.append(output.text_embeds.float().cpu().numpy().astype(np.float64))
    if not chunks:
        return np.zeros((0, 0))
    return _normalized(np.concatenate(chunks))


def image_embedding_diversity(
    images: list[bytes],
    encoder: str,
    device: str = "auto",
    batch_size: int = 32,
    reference: list[bytes] | None = None,
    seed: int = 0,
    max_pairs: int = 20000,
) -> dict[str, Any]:
    """Embedding diversity of ``images`` (encoded PNG/JPEG bytes) under ``encoder``.

    Returns {"encoder", "images_scored", "diversity": mean cosine distance (1 - cos) over
    all pairs, or over ``max_pairs`` pairs drawn with ``seed`` when there are more,
    "pairs": how many pairs that was}; with ``reference`` also
    "similarity_to_reference" (mean over images of the best cosine similarity to any
    reference image) and "nearest_reference_max" (the highest such similarity: near 1 hints
    at a memorised training image). Values are None when there is nothing to compare.
    """
    _check_sizes(batch_size, max_pairs)
    vectors = embed_images(images, encoder, device, batch_size, "generated")
    refs = None
    if reference is not None:
        refs = embed_images(reference, encoder, device, batch_size, "reference")
    return {"encoder": encoder, **_diversity(vectors, refs, seed, max_pairs)}


def _check_sizes(batch_size: int, max_pairs: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_pairs < 1:
        raise ValueError(f"max_pairs must be >= 1, got {max_pairs}")


def _diversity(vectors: Any, reference: Any, seed: int, max_pairs: int) -> dict[str, Any]:
    """The diversity part of ``image_embedding_diversity`` from L2-normalised embeddings."""
    import numpy as np

    n = len(vectors)
    result: dict[str, Any] = {"images_scored": n}

    total = n * (n - 1) // 2
    if total == 0:
        result.update(diversity=None, pairs=0)
    elif total <= max_pairs:
        left, right = np.triu_indices(n, k=1)
        result.update(diversity=_mean_distance(vectors, left, right), pairs=total)
    else:
        rng = np.random.default_rng(seed)
        left = rng.integers(0, n, size=max_pairs)
        right = rng.integers(0, n - 1, size=max_pairs)
        right = right + (right >= left)  # uniform over the other n - 1 images
        result.update(diversity=_mean_distance(vectors, left, right), pairs=max_pairs)

    if reference is not None:
        best = _best_similarity(vectors, reference)
        if best is None:
            result.update(similarity_to_reference=None, nearest_reference_max=None)
        else:
            result.update(
                similarity_to_reference=float(best.mean()), nearest_reference_max=float(best.max())
            )
    return result


def image_embedding_metrics(
    images: list[bytes],
    encoder: str,
    device: str = "auto",
    batch_size: int = 32,
    reference: list[bytes] | None = None,
    prompts: list[str | None] | None = None,
    seed: int = 0,
    max_pairs: int = 20000,
) -> dict[str, Any]:
    """Every encoder metric of ``images``, each image and reference image encoded once.

    Returns {"embedding": what ``image_embedding_diversity`` returns plus, with
    ``reference``, "frechet_distance" (the Fréchet distance between the raw embeddings of
    the images and of the reference images, see ``synthfactory.metrics.image.fidelity``),
    "reference_images_scored" and "embedding_dim"; "clip_score": {"mean", "std", "min",
    "max", "images_scored", "images_without_prompt"} of 100 * max(cos(image, prompt), 0)
    over the images whose row has a prompt (``prompts[i]`` is image i's), or
    {"not_applicable": why} when the encoder has no CLIP text tower or no row has one}.
    """
    from synthfactory.metrics.image.fidelity import clip_score, frechet_report

    _check_sizes(batch_size, max_pairs)
    raw = embed_images(images, encoder, device, batch_size, "generated", normalize=False)
    vectors = _normalized(raw)
    raw_refs = refs = None
    if reference is not None:
        raw_refs = embed_images(reference, encoder, device, batch_size, "reference", False)
        refs = _normalized(raw_refs)
    embedding = {"encoder": encoder, **_diversity(vectors, refs, seed, max_pairs)}
    if raw_refs is not None:
        embedding.update(frechet_report(raw, raw_refs))
        embedding["embedding_dim"] = int(raw.shape[1]) if raw.size else None

    scored = [i for i, p in enumerate(prompts or []) if isinstance(p, str) and p.strip()]
    clip: dict[str, Any]
    if prompts is None:
        clip = {"not_applicable": "the rows have no prompt column"}
    elif not scored:
        clip = {"not_applicable": "no row has a prompt"}
    else:
        text = _load_text(encoder, resolve_device(device))
        if isinstance(text, str):
            clip = {"not_applicable": text}
        else:
            texts = embed_prompts([str(prompts[i]) for i in scored], encoder, device, batch_size)
            clip = clip_score(vectors[scored], texts)
            clip["images_without_prompt"] = len(images) - len(scored)
    return {"embedding": embedding, "clip_score": clip}


def _mean_distance(vectors: Any, left: Any, right: Any, chunk: int = 4096) -> float:
    total = 0.0
    for start in range(0, len(left), chunk):
        a, b = vectors[left[start : start + chunk]], vectors[right[start : start + chunk]]
        total += float((1.0 - (a * b).sum(axis=1)).sum())
    return total / len(left)


def _best_similarity(vectors: Any, reference: Any, chunk: int = 1024) -> Any:
    """Per generated image, its highest cosine similarity to any reference image."""
    import numpy as np

    if len(vectors) == 0 or len(reference) == 0:
        return None
    return np.concatenate(
        [(vectors[s : s + chunk] @ reference.T).max(axis=1) for s in range(0, len(vectors), chunk)]
    )
