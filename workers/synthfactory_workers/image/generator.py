"""Image generation with diffusers: text-to-image, image-to-image over a source dataset, or
unconditional sampling; one torch.Generator per image, so every image reproduces from its
stored seed. Images are stored as the struct Hugging Face `datasets` reads as `Image`."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.errors import ConfigError
from synthfactory.spec.generators.image import DiffusionConfig
from synthfactory_workers.contract import Generator, ShardOutput, ShardTask
from synthfactory_workers.devices import resolve_device_dtype

if TYPE_CHECKING:
    import pyarrow as pa

    from synthfactory.spec import JobSpec

BUILTIN = {"builtin:digits": Path(__file__).resolve().parent / "models" / "digits"}
IMAGE_TYPE_FIELDS = [("bytes", "binary"), ("path", "string")]


def _config(spec: JobSpec) -> DiffusionConfig:
    assert isinstance(spec.generator, DiffusionConfig)
    return spec.generator


def resolve_model(model: str) -> str:
    if model in BUILTIN:
        return str(BUILTIN[model])
    path = Path(model).expanduser()
    if (path.is_absolute() or model.startswith(".")) and not (path / "model_index.json").is_file():
        raise ConfigError(
            f"{model} is not a diffusers pipeline folder (no model_index.json)",
            fix="point generator.model at a folder saved with "
            "save_pretrained, or use a Hugging Face id",
        )
    return model


def image_seed(shard_seed: int, index: int) -> int:
    return int(np.random.SeedSequence([shard_seed, index]).generate_state(1)[0])


def encode(image: Any, fmt: str, quality: int) -> bytes:
    buf = io.BytesIO()
    kwargs = {"quality": quality} if fmt in ("webp", "jpeg") else {}
    image.convert("RGB" if fmt == "jpeg" else image.mode).save(buf, format=fmt.upper(), **kwargs)
    return buf.getvalue()


def hf_features(columns: dict[str, str]) -> bytes:
    """Schema metadata that makes `datasets` show the image column as pictures."""
    features: dict[str, Any] = {}
    for name, kind in columns.items():
        features[name] = (
            {"_type": "Image"} if kind == "image" else {"dtype": kind, "_type": "Value"}
        )
    return json.dumps({"info": {"features": features}}).encode()


def read_source_images(uri: str, column: str, storage: Any) -> list[tuple[str, bytes]]:
    """(name, encoded bytes) for each source image: a Parquet file or a folder."""
    from synthfactory.sources import read_table
    from synthfactory.storage import open_store

    if uri.endswith(".parquet"):
        table = read_table(uri, storage)
        if column not in table.column_names:
            raise ConfigError(
                f"source {uri} has no column {column!r}", fix="set generator.source_image_column"
            )
        out = []
        for i, value in enumerate(table.column(column).to_pylist()):
            data = value.get("bytes") if isinstance(value, dict) else value
            out.append((f"{uri}#{i}", data or b""))
        return out
    store = open_store(uri, storage)
    keys = [k for k in store.list() if k.lower().endswith((".png", ".jpg", ".jpeg", ".webp"))]
    if not keys:
        raise ConfigError(f"no images in {uri}", fix="a folder of .png/.jpg/.webp files")
    return [(store.url(k), store.get_bytes(k)) for k in keys]


class DiffusionGenerator(Generator):
    @classmethod
    def preflight(cls, spec: JobSpec) -> dict[str, str]:
        config = _config(spec)
        facts: dict[str, str] = {}
        resolve_model(config.model)
        if config.pipeline_class or config.scheduler:
            import diffusers

            for name in filter(None, (config.pipeline_class, config.scheduler)):
                if not hasattr(diffusers, name):
                    raise ConfigError(
                        f"diffusers has no class {name!r}",
                        fix="use a diffusers pipeline/scheduler class name",
                    )
        if config.prompt is not None:
            from synthfactory.sources import read_table
            from synthfactory_workers.prompt_sampler import check

            columns = (
                read_table(config.prompt.source, spec.storage).column_names
                if config.prompt.source
                else None
            )
            check(config.prompt, columns)
        if config.source:
            images = read_source_images(config.source, config.source_image_column, spec.storage)
            import hashlib

            digest = hashlib.sha256()
            for name, data in images:
                digest.update(name.encode() + hashlib.sha256(data).digest())
            facts["source_sha256"] = digest.hexdigest()
        return facts

    def load(self) -> None:
        import diffusers

        config = _config(self.spec)
        self.config = config
        self.device, self.dtype = resolve_device_dtype(
            config.device, config.dtype, self.context.device
        )
        cls = getattr(diffusers, config.pipeline_class or "DiffusionPipeline")
        kwargs: dict[str, Any] = {"torch_dtype": self.dtype}
        if config.revision:
            kwargs["revision"] = config.revision
        try:
            pipe = cls.from_pretrained(resolve_model(config.model), **kwargs)
        except OSError as exc:
            raise ConfigError(f"cannot load pipeline {config.model!r}: {exc}") from None
        if config.scheduler:
            pipe.scheduler = getattr(diffusers, config.scheduler).from_config(pipe.scheduler.config)
        pipe = pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        if config.attention_slicing and hasattr(pipe, "enable_attention_slicing"):
            pipe.enable_attention_slicing()
        if config.vae_tiling and hasattr(pipe, "enable_vae_tiling"):
            pipe.enable_vae_tiling()
        self.pipe = pipe
        self.mode = config.resolved_mode
        self.prompts = None
        if config.prompt is not None:
            from synthfactory.sources import read_table
            from synthfactory_workers.prompt_sampler import PromptSampler

            source = (
                read_table(config.prompt.source, self.spec.storage)
                if config.prompt.source
                else None
            )
            self.prompts = PromptSampler(config.prompt, source)
        self.sources = (
            read_source_images(config.source, config.source_image_column, self.spec.storage)
            if config.source
            else []
        )
        self.model_id = config.model
        self.revision = str(getattr(pipe.config, "_commit_hash", None) or config.revision or "")
        if self.mode == "unconditional":  # warm the pipeline before the first shard
            pipe(batch_size=1, num_inference_steps=2)

    def identity(self) -> dict[str, str]:
        config = _config(self.spec)
        return {
            "generator": "diffusion",
            "model": config.model,
            "pipeline": type(getattr(self, "pipe", None)).__name__,
            "revision": getattr(self, "revision", ""),
        }

    def generate(self, shard: ShardTask) -> ShardOutput:
        rows: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        per_prompt = self.config.images_per_prompt
        indexes = list(range(shard.row_start, shard.row_start + shard.rows))
        batch = self.spec.resources.batch_size
        start = 0
        while start < len(indexes):
            chunk = indexes[start : start + batch]
            try:
                made = self._images(chunk, shard.seed, per_prompt)
            except RuntimeError as exc:
                if "out of memory" not in str(exc).lower() or batch == 1:
                    raise
                batch = max(1, batch // 2)  # out of memory: halve and retry
                continue
            for row in made:
                (rejected if "reason" in row else rows).append(row)
            start += len(chunk)
        accepted, dupes = self._dedup(rows)
        rejected.extend(dupes)
        return ShardOutput(
            self._table(accepted, sidecar=True),
            self._table(rejected, sidecar=False) if rejected else None,
            {"images": float(len(accepted))},
        )

    def _images(self, indexes: list[int], shard_seed: int, per_prompt: int) -> list[dict[str, Any]]:
        """One image per index (rows with ``reason`` are rejected), each from its own seed."""
        import torch

        c = self.config
        seeds = [image_seed(shard_seed, i) for i in indexes]
        generators = [torch.Generator(self.device).manual_seed(s) for s in seeds]
        rows: list[dict[str, Any]] = [
            {"seed": s, "row": i} for s, i in zip(seeds, indexes, strict=True)
        ]
        kwargs: dict[str, Any] = {"generator": generators, "num_inference_steps": c.steps}
        if self.mode == "unconditional":
            kwargs["batch_size"] = len(indexes)
        else:
            kwargs.update(self._prompt_kwargs(rows, per_prompt))
        made_rows = rows
        if self.mode == "img2img":
            images, keep = self._source_images(rows, per_prompt)
            if not keep:
                return rows
            kwargs.update(
                image=images,
                strength=c.strength,
                prompt=[kwargs["prompt"][p] for p in keep],
                generator=[generators[p] for p in keep],
            )
            if "negative_prompt" in kwargs:
                kwargs["negative_prompt"] = kwargs["negative_prompt"][: len(keep)]
            made_rows = [rows[p] for p in keep]
        self._judge(made_rows, self.pipe(**kwargs))
        return rows

    def _prompt_kwargs(self, rows: list[dict[str, Any]], per_prompt: int) -> dict[str, Any]:
        """Each row's prompt (written into the row) as the pipeline's prompt arguments."""
        c = self.config
        assert self.prompts is not None or self.mode == "img2img"
        prompts = []
        for row in rows:
            prompt_index = row["row"] // per_prompt
            rendered = self.prompts.render(prompt_index, 0) if self.prompts else None
            row["prompt"] = rendered.text if rendered else ""
            row["prompt_index"] = prompt_index
            prompts.append(row["prompt"])
        kwargs: dict[str, Any] = {"prompt": prompts, "guidance_scale": c.guidance_scale}
        if c.negative_prompt:
            kwargs["negative_prompt"] = [c.negative_prompt] * len(prompts)
        if self.mode == "text2img":
            kwargs.update({k: v for k, v in (("width", c.width), ("height", c.height)) if v})
        return kwargs

    def _source_images(
        self, rows: list[dict[str, Any]], per_prompt: int
    ) -> tuple[list[Any], list[int]]:
        """img2img: each row's source image, decoded (and resized); the positions of the rows
        that have one (an undecodable source image makes a rejected row)."""
        from PIL import Image

        c = self.config
        images, keep = [], []
        for pos, row in enumerate(rows):
            name, data = self.sources[row["row"] // per_prompt % len(self.sources)]
            row["source_image"] = name
            try:
                image = Image.open(io.BytesIO(data)).convert("RGB")
                if c.width and c.height:
                    image = image.resize((c.width, c.height))
                images.append(image)
                keep.append(pos)
            except Exception as exc:  # an undecodable source image is a rejected row
                row["reason"] = f"undecodable_source: {type(exc).__name__}: {exc}"
        return images, keep

    def _judge(self, rows: list[dict[str, Any]], out: Any) -> None:
        """The pipeline's images into their rows; blank and flagged images are rejected."""
        c = self.config
        flags = getattr(out, "nsfw_content_detected", None) or [None] * len(out.images)
        for row, image, flag in zip(rows, out.images, flags, strict=True):
            pixels = np.asarray(image.convert("L"), dtype=float)
            row.update(
                image=image,
                width=image.width,
                height=image.height,
                nsfw=flag,
                pixel_std=float(pixels.std()),
            )
            if pixels.std() < c.blank_threshold:
                row["reason"] = f"blank_image: pixel std {pixels.std():.2f}"
            elif flag and c.safety == "filter":
                row["reason"] = "safety_checker_flagged"

    def _dedup(
        self, rows: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        from synthfactory.phash import hamming, phash

        kept: list[dict[str, Any]] = []
        dupes: list[dict[str, Any]] = []
        for row in rows:
            row["__phash"] = phash(row["image"])
            limit = self.config.dedup_max_distance
            if limit >= 0 and any(hamming(row["__phash"], k["__phash"]) <= limit for k in kept):
                dupes.append({**row, "reason": "near_duplicate_image"})
            else:
                kept.append(row)
        return kept, dupes

    def _table(self, rows: list[dict[str, Any]], sidecar: bool) -> pa.Table:
        import pyarrow as pa

        c = self.config
        image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        columns: dict[str, tuple[pa.DataType, list[Any]]] = {
            "image": (
                image_type,
                [
                    {"bytes": encode(r["image"], c.format, c.quality), "path": None}
                    if "image" in r
                    else None
                    for r in rows
                ],
            ),
            "prompt": (pa.string(), [r.get("prompt") for r in rows]),
            "negative_prompt": (pa.string(), [c.negative_prompt for _ in rows]),
            "source_image": (pa.string(), [r.get("source_image") for r in rows]),
            "seed": (pa.int64(), [r["seed"] & (2**63 - 1) for r in rows]),
            "steps": (pa.int32(), [c.steps for _ in rows]),
            "guidance_scale": (pa.float32(), [c.guidance_scale for _ in rows]),
            "strength": (
                pa.float32(),
                [c.strength if self.mode == "img2img" else None for _ in rows],
            ),
            "width": (pa.int32(), [r.get("width") for r in rows]),
            "height": (pa.int32(), [r.get("height") for r in rows]),
            "nsfw": (pa.bool_(), [r.get("nsfw") for r in rows]),
            "model_id": (pa.string(), [self.model_id for _ in rows]),
            "model_revision": (pa.string(), [self.revision for _ in rows]),
        }
        if not sidecar:
            columns["reason"] = (pa.string(), [r["reason"] for r in rows])
        fields = [pa.field(name, t) for name, (t, _) in columns.items()]
        arrays = [pa.array(values, t) for t, values in columns.values()]
        if sidecar and c.dedup_max_distance >= 0:
            meta = {b"max_distance": str(c.dedup_max_distance).encode()}
            fields.append(pa.field("__phash", pa.uint64(), metadata=meta))
            arrays.append(pa.array([r["__phash"] for r in rows], pa.uint64()))
        kinds = {name: "image" if name == "image" else str(t) for name, (t, _) in columns.items()}
        for name, kind in list(kinds.items()):
            kinds[name] = {
                "int64": "int64",
                "int32": "int32",
                "float": "float32",
                "bool": "bool",
                "string": "string",
            }.get(kind, kind)
        schema = pa.schema(fields, metadata={b"huggingface": hf_features(kinds)})
        return pa.Table.from_arrays(arrays, schema=schema)
