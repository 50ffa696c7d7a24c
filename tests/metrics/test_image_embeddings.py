"""Image embedding diversity with tiny randomly initialised encoders saved to a folder.

The encoders are built from configs with a fixed seed and saved with save_pretrained, so
the function under test loads them through the same from_pretrained path a user's model
takes (no network, no weights downloaded).
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthfactory.errors import ConfigError
from synthfactory_workers.metrics.image_embeddings import embed_images, image_embedding_diversity

from .encoders import SIZE, TINY, TINY_VISION, save, tiny_clip, tiny_full_clip


def encode(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def varied_images() -> list[bytes]:
    """Visually different images: noise, gradients, checkerboards, solid colours."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 48)
    horizontal = np.broadcast_to(ramp[None, :, None], (48, 48, 3))
    checker = ((np.indices((48, 48)).sum(axis=0) // 8) % 2 * 255)[:, :, None]
    fine_checker = ((np.indices((48, 48)).sum(axis=0) // 2) % 2 * 255)[:, :, None]
    return [
        encode(rng.integers(0, 256, (48, 48, 3))),
        encode(rng.integers(0, 256, (40, 56, 3)), "JPEG"),
        encode(horizontal),
        encode(horizontal.transpose(1, 0, 2)),
        encode(np.repeat(checker, 3, axis=2)),
        encode(np.repeat(fine_checker, 3, axis=2)),
        encode(np.full((48, 48, 3), (255, 0, 0))),
        encode(np.full((48, 48, 3), (0, 0, 255))),
        encode(np.zeros((48, 48, 3))),
        encode(np.full((48, 48, 3), 255)),
    ]


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    return tiny_clip(tmp_path_factory.mktemp("clip"))


def test_repeated_image_has_zero_diversity(clip_folder: str) -> None:
    image = varied_images()[0]
    result = image_embedding_diversity([image] * 6, clip_folder, device="cpu")
    assert result["encoder"] == clip_folder
    assert result["images_scored"] == 6 and result["pairs"] == 15
    assert result["diversity"] == pytest.approx(0.0, abs=1e-5)
    assert "similarity_to_reference" not in result


def test_varied_images_have_clear_diversity(clip_folder: str) -> None:
    images = varied_images()
    result = image_embedding_diversity(images, clip_folder, device="cpu", batch_size=4)
    assert result["images_scored"] == 10 and result["pairs"] == 45
    assert result["diversity"] > 0.05  # measured 0.13 with this seed; the repeat gives < 1e-5
    # the batch size does not change the embeddings
    again = image_embedding_diversity(images, clip_folder, device="cpu", batch_size=32)
    assert again["diversity"] == pytest.approx(result["diversity"], abs=1e-5)
    # the known answer: the mean of 1 - cos over all pairs, by hand
    vectors = embed_images(images, clip_folder, device="cpu")
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(1.0)
    by_hand = np.mean([1 - vectors[i] @ vectors[j] for i in range(10) for j in range(i + 1, 10)])
    assert result["diversity"] == pytest.approx(by_hand, abs=1e-9)


def test_sampled_pairs_are_seeded(clip_folder: str) -> None:
    images = varied_images()  # 45 pairs
    full = image_embedding_diversity(images, clip_folder, device="cpu")
    sampled = image_embedding_diversity(images, clip_folder, device="cpu", max_pairs=30, seed=3)
    assert sampled["pairs"] == 30
    assert sampled == image_embedding_diversity(
        images, clip_folder, device="cpu", max_pairs=30, seed=3
    )
    other = image_embedding_diversity(images, clip_folder, device="cpu", max_pairs=30, seed=4)
    assert other["diversity"] != sampled["diversity"]
    assert sampled["diversity"] == pytest.approx(full["diversity"], rel=0.5)


def test_similarity_to_reference(clip_folder: str) -> None:
    images = varied_images()
    itself = image_embedding_diversity(images, clip_folder, device="cpu", reference=images)
    assert itself["similarity_to_reference"] == pytest.approx(1.0, abs=1e-5)
    assert itself["nearest_reference_max"] == pytest.approx(1.0, abs=1e-5)
    # generated = the first half, reference = the other half: no image has its copy there
    half = image_embedding_diversity(images[:5], clip_folder, device="cpu", reference=images[5:])
    assert half["similarity_to_reference"] < half["nearest_reference_max"] < 0.9999
    # one memorised image among new ones: the mean stays lower, the max flags it
    leak = image_embedding_diversity(
        images[:5], clip_folder, device="cpu", reference=[images[2], *images[5:]]
    )
    assert leak["nearest_reference_max"] == pytest.approx(1.0, abs=1e-5)
    assert leak["similarity_to_reference"] < 0.9999


def test_degenerate_inputs(clip_folder: str) -> None:
    one = image_embedding_diversity(varied_images()[:1], clip_folder, device="cpu", reference=[])
    assert one["images_scored"] == 1 and one["pairs"] == 0 and one["diversity"] is None
    assert one["similarity_to_reference"] is None and one["nearest_reference_max"] is None
    with pytest.raises(ValueError, match="image 1 cannot be decoded"):
        image_embedding_diversity([varied_images()[0], b"not an image"], clip_folder, "cpu")


def test_full_clip_checkpoint_matches_get_image_features(tmp_path: Path) -> None:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(1)
    text = {**TINY, "num_attention_heads": 4, "vocab_size": 99, "max_position_embeddings": 16}
    text.update(bos_token_id=0, eos_token_id=1, pad_token_id=1)
    config = CLIPConfig(text_config=text, vision_config=TINY_VISION, projection_dim=16)
    model = CLIPModel(config).eval()
    processor = CLIPImageProcessor(
        size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE}
    )
    folder = save(tmp_path / "clip-full", model, processor)
    images = varied_images()[:4]
    vectors = embed_images(images, folder, device="cpu")
    pixels = processor(
        images=[Image.open(io.BytesIO(b)).convert("RGB") for b in images], return_tensors="pt"
    )["pixel_values"]
    with torch.inference_mode():
        features = model.get_image_features(pixel_values=pixels)
    if not isinstance(features, torch.Tensor):  # transformers 5 returns an output object
        features = features.pooler_output
    expected = torch.nn.functional.normalize(features, dim=-1).numpy()
    assert vectors == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("pooler", [True, False])
def test_vit_through_automodel(tmp_path: Path, pooler: bool) -> None:
    """The non-CLIP branch: pooler_output when the checkpoint has a trained pooler,
    the mean of last_hidden_state when it does not (a missing pooler is random)."""
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(2)
    model = ViTModel(ViTConfig(**TINY_VISION), add_pooling_layer=pooler).eval()
    processor = ViTImageProcessor(size={"height": SIZE, "width": SIZE})
    folder = save(tmp_path / "vit", model, processor)
    images = varied_images()

    result = image_embedding_diversity(images, folder, device="cpu", reference=images[:2])
    assert result["images_scored"] == 10 and result["diversity"] > 0.01
    assert result["nearest_reference_max"] == pytest.approx(1.0, abs=1e-5)
    same = image_embedding_diversity([images[3]] * 4, folder, device="cpu")
    assert same["diversity"] == pytest.approx(0.0, abs=1e-5)

    pixels = processor(
        images=[Image.open(io.BytesIO(b)).convert("RGB") for b in images], return_tensors="pt"
    )["pixel_values"]
    with torch.inference_mode():
        output = model(pixel_values=pixels)
    raw = output.pooler_output if pooler else output.last_hidden_state.mean(dim=1)
    expected = torch.nn.functional.normalize(raw, dim=-1).numpy()
    assert embed_images(images, folder, device="cpu") == pytest.approx(expected, abs=1e-5)


def test_unloadable_encoder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        image_embedding_diversity([b""], str(tmp_path / "missing"), device="cpu")
    with pytest.raises(ConfigError, match=r"no config\.json"):
        image_embedding_diversity([b""], str(tmp_path), device="cpu")
    (tmp_path / "config.json").write_text('{"model_type": "vit"}')
    with pytest.raises(ConfigError, match="cannot load image encoder") as info:
        image_embedding_diversity([b""], str(tmp_path), device="cpu")
    assert info.value.fix and "preprocessor_config.json" in info.value.fix


def test_incomplete_checkpoint_is_a_config_error(tmp_path: Path) -> None:
    """A CLIP vision tower saved without its projection would embed through a random one."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    processor = CLIPImageProcessor(
        size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE}
    )
    folder = save(tmp_path / "tower", CLIPVisionModel(CLIPVisionConfig(**TINY_VISION)), processor)
    with pytest.raises(ConfigError, match="visual_projection"):
        image_embedding_diversity(varied_images()[:2], folder, device="cpu")


def test_importing_the_module_does_not_import_torch() -> None:
    code = (
        "import sys, synthfactory_workers.metrics.image_embeddings\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module")
def full_clip_folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    return tiny_full_clip(tmp_path_factory.mktemp("clip-full"))


def image_job(encoder: str | None) -> object:
    from synthfactory.spec import load_spec

    return load_spec(
        {
            "name": "pics",
            "modality": "image",
            "rows": 8,
            "output": "/tmp/unused",
            "generator": {
                "kind": "python",
                "factory": "synthfactory_workers.demo:SequenceGenerator",
            },
            "metrics": {"image_encoder": encoder, "model_sample": 10, "seed": 2},
        }
    )


def by_hand(folder: str, images: list[bytes], prompts: list[str]) -> tuple[np.ndarray, ...]:
    """Raw CLIP image features of ``images`` and text features of ``prompts``, straight
    from CLIPModel (not through the code under test)."""
    import torch
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    model = CLIPModel.from_pretrained(folder).eval()
    processor = CLIPImageProcessor.from_pretrained(folder)
    pixels = processor(
        images=[Image.open(io.BytesIO(b)).convert("RGB") for b in images], return_tensors="pt"
    )["pixel_values"]

    def tensor(out: object) -> np.ndarray:
        if not isinstance(out, torch.Tensor):  # transformers 5 returns an output object
            out = out.pooler_output  # type: ignore[attr-defined]
        return out.numpy().astype(np.float64)  # type: ignore[union-attr]

    with torch.inference_mode():
        image = tensor(model.get_image_features(pixel_values=pixels))
        text = np.zeros((0, 16))
        if prompts:
            tokenizer = AutoTokenizer.from_pretrained(folder)
            tokens = tokenizer(prompts, padding=True, return_tensors="pt")
            text = tensor(model.get_text_features(**tokens))
    return image, text


def test_frechet_distance_and_clip_score_through_model_metrics(full_clip_folder: str) -> None:
    import pandas as pd

    from synthfactory.metrics.evaluators import evaluator_class
    from synthfactory.metrics.image.fidelity import frechet_distance
    from synthfactory.metrics.report import flatten
    from synthfactory_workers.metrics.tasks import image_model_metrics

    images = varied_images()
    generated, reference = images[:6], images[4:]
    prompts = ["a red square", "blue", None, "a noisy picture of a cat", "", "checkerboard"]
    sample = pd.DataFrame(
        {"image": [{"bytes": b, "path": None} for b in generated], "prompt": prompts}
    )
    job = image_job(full_clip_folder)
    out = image_model_metrics(job, sample, reference, "cpu")  # type: ignore[arg-type]

    embedding = out["embedding"]
    assert embedding["encoder"] == full_clip_folder and embedding["embedding_dim"] == 16
    assert embedding["images_scored"] == 6 and embedding["reference_images_scored"] == 6
    raw, _ = by_hand(full_clip_folder, images, [])
    expected = frechet_distance(raw[:6], raw[4:])
    assert embedding["frechet_distance"] == pytest.approx(expected, rel=1e-4)
    assert embedding["frechet_distance"] > 0.01  # different images, different moments
    assert 0 < embedding["diversity"] <= 2  # the diversity part is unchanged
    same = image_model_metrics(job, sample, generated, "cpu")  # type: ignore[arg-type]
    assert same["embedding"]["frechet_distance"] == pytest.approx(0.0, abs=1e-4)
    assert same["embedding"]["nearest_reference_max"] == pytest.approx(1.0, abs=1e-5)

    clip = out["clip_score"]
    kept = [0, 1, 3, 5]  # rows with a (non-empty) prompt
    image, text = by_hand(
        full_clip_folder, [generated[i] for i in kept], [prompts[i] for i in kept]
    )
    cos = (image * text).sum(1) / np.linalg.norm(image, axis=1) / np.linalg.norm(text, axis=1)
    assert clip["images_scored"] == 4 and clip["images_without_prompt"] == 2
    assert clip["mean"] == pytest.approx(np.mean(100 * np.maximum(cos, 0)), abs=1e-3)
    assert clip["min"] <= clip["mean"] <= clip["max"] <= 100

    # every number the evaluator reports from these results is a declared name
    cls = evaluator_class("image")
    evaluator = cls(job, ["image", "prompt"], {0: 6})  # type: ignore[arg-type]
    summary = evaluator.summary()
    merged = type(summary).merge([summary.partial(sample, 0)])
    assert list(merged["sample"].columns) == ["image", "prompt"]
    report = evaluator.report(merged, out)
    names = [name for name, _ in flatten(report)]
    assert "quality.embedding.frechet_distance" in names and "quality.clip_score.mean" in names
    assert [n for n in names if not cls.knows(n)] == []


def test_clip_score_not_applicable(clip_folder: str, full_clip_folder: str) -> None:
    import pandas as pd

    from synthfactory_workers.metrics.tasks import image_model_metrics

    images = [{"bytes": b, "path": None} for b in varied_images()[:3]]
    with_prompts = pd.DataFrame({"image": images, "prompt": ["a", "b", "c"]})
    vision_only = image_model_metrics(image_job(clip_folder), with_prompts, None, "cpu")  # type: ignore[arg-type]
    assert "no CLIP text tower" in vision_only["clip_score"]["not_applicable"]
    assert "frechet_distance" not in vision_only["embedding"]  # no reference images
    no_column = image_model_metrics(
        image_job(full_clip_folder),  # type: ignore[arg-type]
        pd.DataFrame({"image": images}),
        None,
        "cpu",
    )
    assert no_column["clip_score"] == {"not_applicable": "the rows have no prompt column"}
    empty = with_prompts.assign(prompt=[None, "", " "])
    none = image_model_metrics(image_job(full_clip_folder), empty, None, "cpu")  # type: ignore[arg-type]
    assert none["clip_score"] == {"not_applicable": "no row has a prompt"}
    unset = image_model_metrics(image_job(None), with_prompts, None, "cpu")  # type: ignore[arg-type]
    assert "set metrics.image_encoder" in unset["clip_score"]["not_applicable"]
    one = image_model_metrics(
        image_job(full_clip_folder), with_prompts, [images[0]["bytes"]], "cpu"
    )  # type: ignore[arg-type]
    assert one["embedding"]["frechet_distance"] is None
    assert "at least 2" in one["embedding"]["frechet_not_applicable"]
