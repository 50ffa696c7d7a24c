"""Image generation with diffusers pipelines."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from synthfactory.spec.base import GENERATORS, GeneratorConfigBase
from synthfactory.spec.limits import MAX_TEXT_CHARS
from synthfactory.spec.prompt_template import PromptConfig


@GENERATORS.register("synthfactory_workers.image.generator:DiffusionGenerator")
class DiffusionConfig(GeneratorConfigBase):
    """Any diffusers pipeline: a Hugging Face id, a local folder, or 'builtin:digits' (a
    tiny DDPM trained on scikit-learn's digits, shipped with synthfactory)."""

    modalities: ClassVar[tuple[str, ...]] = ("image",)
    default_shard_rows: ClassVar[int] = 64  # a minute or so of a full-size pipeline on a GPU
    path_fields: ClassVar[tuple[str, ...]] = ("source", "prompt.source")
    maybe_path_fields: ClassVar[tuple[str, ...]] = ("model",)

    kind: Literal["diffusion"] = Field("diffusion", description="A diffusers pipeline.")
    model: str = Field(description="Hugging Face id, local pipeline folder, or builtin:digits.")
    revision: str | None = Field(None, description="Model revision (Hugging Face ids).")
    pipeline_class: str | None = Field(
        None,
        description="diffusers pipeline class, e.g. StableDiffusionImg2ImgPipeline "
        "(default: the class saved with the model).",
    )
    mode: Literal["auto", "text2img", "img2img", "unconditional"] = Field(
        "auto",
        description="auto: img2img with a source, text2img with a prompt, else unconditional.",
    )
    prompt: PromptConfig | None = Field(
        None,
        description="Prompt template (text-to-image, image-to-image); leave out for "
        "unconditional models.",
    )
    negative_prompt: str | None = Field(
        None,
        max_length=MAX_TEXT_CHARS,
        description="What the images should not show (pipelines that take one).",
    )
    source: str | None = Field(
        None,
        description="img2img source images: Parquet with an image column (bytes or "
        "the Hugging Face Image struct) or a folder of image files; local or s3://.",
    )
    source_image_column: str = Field(
        "image", description="Column of `source` holding the input images (img2img)."
    )
    strength: float = Field(0.6, gt=0, le=1, description="img2img: how far from the source.")
    scheduler: str | None = Field(None, description="diffusers scheduler class name.")
    steps: int = Field(30, ge=1, le=1000, description="Denoising steps per image.")
    guidance_scale: float = Field(
        7.5, ge=0, description="Classifier-free guidance strength (0 or 1 turns it off)."
    )
    width: int | None = Field(
        None, ge=8, le=4096, description="Image width in pixels (default: the model's)."
    )
    height: int | None = Field(
        None, ge=8, le=4096, description="Image height in pixels (default: the model's)."
    )
    images_per_prompt: int = Field(1, ge=1, le=64, description="Images generated from each prompt.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where to run: auto uses a GPU when the actor has one."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: fp16 on CUDA, fp32 on CPU."
    )
    attention_slicing: bool = Field(
        False, description="Compute attention in slices: less GPU memory, a little slower."
    )
    vae_tiling: bool = Field(
        False, description="Decode large images tile by tile: less GPU memory."
    )
    safety: Literal["flag", "filter"] = Field(
        "flag",
        description="With a pipeline safety checker: keep its verdict in an `nsfw` "
        "column (flag) or reject flagged images (filter).",
    )
    format: Literal["png", "webp", "jpeg"] = Field(
        "png", description="Encoding of the stored images."
    )
    quality: int = Field(90, ge=1, le=100, description="WebP/JPEG quality.")
    blank_threshold: float = Field(
        2.0, ge=0, description="Reject images whose pixel standard deviation is below this."
    )
    dedup_max_distance: int = Field(
        4, ge=-1, le=64, description="pHash Hamming distance counted as a duplicate; -1: off."
    )

    @model_validator(mode="after")
    def _mode_inputs(self) -> DiffusionConfig:
        if self.mode == "img2img" and not self.source:
            raise ValueError("mode img2img needs generator.source (the images to vary)")
        if self.resolved_mode == "img2img" and int(self.steps * self.strength) < 1:
            raise ValueError(
                f"img2img runs int(steps * strength) = "
                f"{int(self.steps * self.strength)} denoising steps; raise steps "
                "or strength so that it is at least 1"
            )
        if self.mode == "text2img" and self.prompt is None:
            raise ValueError("mode text2img needs generator.prompt")
        return self

    @property
    def resolved_mode(self) -> str:
        if self.mode != "auto":
            return self.mode
        if self.source:
            return "img2img"
        return "text2img" if self.prompt is not None else "unconditional"
