"""Diffusion generation with tiny models on CPU: seeds, text-to-image, image-to-image over a
source on S3, images that open in `datasets`, pHash dedup, and a killed actor."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from synthfactory.dataset import open_dataset
from synthfactory.errors import ConfigError
from synthfactory.spec import load_spec
from synthfactory.storage import LocalStore, open_store
from synthfactory_flows.generate import run_job
from synthfactory_workers.contract import GeneratorContext, ShardTask
from synthfactory_workers.image.generator import DiffusionGenerator

sys.path.insert(0, str(Path(__file__).parent))
import tiny_pipelines


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_pipelines.build(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def tiny_img2img(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_pipelines.build(tmp_path_factory.mktemp("models2"), img2img=True)


def image_spec(
    output: str, model: str, rows: int = 4, shard_rows: int = 4, **generator: Any
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "kind": "diffusion",
        "model": model,
        "steps": 3,
        "width": 32,
        "height": 32,
        "blank_threshold": 0.0,
    }
    config.update(generator)
    return {
        "name": "pictures",
        "modality": "image",
        "rows": rows,
        "shard_rows": shard_rows,
        "seed": 4,
        "output": output,
        "generator": config,
        "resources": {"actors": 1, "num_cpus": 1, "batch_size": 4},
    }


def direct(spec: dict[str, Any], tmp: Path) -> DiffusionGenerator:
    job = load_spec(spec)
    DiffusionGenerator.preflight(job)
    gen = DiffusionGenerator(job, GeneratorContext(artifacts=LocalStore(tmp / "a")))
    gen.load()
    return gen


PROMPT = {
    "template": "a {{ color }} {{ thing }}",
    "variables": {"color": ["red", "blue"], "thing": ["cat", "house"]},
}


def test_text_to_image_reproduces_from_seeds(tiny_sd: Path, tmp_path: Path) -> None:
    gen = direct(image_spec(str(tmp_path), str(tiny_sd), prompt=PROMPT), tmp_path)
    a = gen.generate(ShardTask(0, 0, 3, 11)).table
    b = gen.generate(ShardTask(0, 0, 3, 11)).table
    c = gen.generate(ShardTask(0, 0, 3, 12)).table
    assert a["image"].to_pylist() == b["image"].to_pylist()
    assert a["image"].to_pylist() != c["image"].to_pylist()
    first = a.to_pylist()[0]
    img = Image.open(io.BytesIO(first["image"]["bytes"]))
    assert img.format == "PNG" and img.size == (32, 32)
    assert first["prompt"].startswith("a ") and first["steps"] == 3
    assert b"huggingface" in a.schema.metadata
    # one image alone, from its stored seed, is the same picture as in the batch
    alone = gen._images([0], 11, 1)[0]["image"]
    assert np.array_equal(np.asarray(alone), np.asarray(img.convert(alone.mode)))


def test_unconditional_builtin_digits(tmp_path: Path) -> None:
    gen = direct(
        image_spec(
            str(tmp_path), "builtin:digits", steps=20, blank_threshold=2.0, width=None, height=None
        ),
        tmp_path,
    )
    out = gen.generate(ShardTask(0, 0, 4, 1))
    images = [Image.open(io.BytesIO(r["bytes"])) for r in out.table["image"].to_pylist()]
    assert images and images[0].size == (16, 16)
    assert all(np.asarray(i).std() > 2.0 for i in images), "digits are not blank"


def test_errors_before_launch(tmp_path: Path, tiny_sd: Path) -> None:
    with pytest.raises(ConfigError, match=r"model_index\.json"):
        DiffusionGenerator.preflight(
            load_spec(image_spec(str(tmp_path), str(tmp_path / "no"), prompt=PROMPT))
        )
    with pytest.raises(ConfigError, match="no class 'NoSuchPipeline'"):
        DiffusionGenerator.preflight(
            load_spec(
                image_spec(
                    str(tmp_path), str(tiny_sd), prompt=PROMPT, pipeline_class="NoSuchPipeline"
                )
            )
        )


def source_parquet(images: list[bytes]) -> bytes:
    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table({"image": pa.array([{"bytes": b, "path": None} for b in images], struct)})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def png(color: tuple[int, int, int], size: int = 32) -> bytes:
    buf = io.BytesIO()
    pixels = np.zeros((size, size, 3), np.uint8)
    pixels[:] = color
    pixels[size // 4 : size // 2, size // 4 : size // 2] = (255 - np.array(color)).astype(np.uint8)
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_image_to_image_over_s3_source_opens_in_datasets(
    tiny_img2img: Path, s3_bucket: str, tmp_path: Path
) -> None:
    sources = [png((200, 30, 30)), png((30, 200, 30)), b"this is not an image"]
    open_store(f"{s3_bucket}/in").put_bytes("faces.parquet", source_parquet(sources))
    spec = image_spec(
        f"{s3_bucket}/out",
        str(tiny_img2img),
        rows=4,
        shard_rows=2,
        mode="img2img",
        source=f"{s3_bucket}/in/faces.parquet",
        strength=0.5,
        prompt={"template": "a photo", "variables": {}},
        dedup_max_distance=-1,
    )
    spec["top_up_rounds"] = 1
    ds = open_dataset(run_job(spec)["uri"])
    table = ds.to_arrow()
    assert table.num_rows == 4
    assert all(s.endswith(("#0", "#1")) for s in table["source_image"].to_pylist())
    store = open_store(ds.uri)
    reasons = [
        r
        for shard in ds.manifest.shards
        if shard.rejected_path
        for r in pq.read_table(io.BytesIO(store.get_bytes(shard.rejected_path)))[
            "reason"
        ].to_pylist()
    ]
    assert any(r.startswith("undecodable_source") for r in reasons)
    # the Parquet loads with Hugging Face datasets and shows pictures
    import datasets

    local = tmp_path / "copy"
    local.mkdir()
    for shard in ds.manifest.shards:
        (local / Path(shard.path).name).write_bytes(open_store(ds.uri).get_bytes(shard.path))
    loaded = datasets.load_dataset(
        "parquet",
        data_files=str(local / "*.parquet"),
        split="train",
        cache_dir=str(tmp_path / "hf"),
    )
    assert isinstance(loaded.features["image"], datasets.Image)
    assert loaded[0]["image"].size == (32, 32)


def test_phash_drops_a_planted_duplicate(tiny_sd: Path, tmp_path: Path) -> None:
    gen = direct(
        image_spec(str(tmp_path), str(tiny_sd), prompt=PROMPT, dedup_max_distance=4), tmp_path
    )
    rows = gen._images([0, 1, 2], 5, 1)
    planted = {**rows[0], "seed": 999}  # the same picture again, slightly re-encoded
    planted["image"] = Image.open(io.BytesIO(_jpeg(rows[0]["image"])))
    kept, dupes = gen._dedup([*rows, planted])
    assert len(kept) == 3 and len(dupes) == 1
    assert dupes[0]["reason"] == "near_duplicate_image" and dupes[0]["seed"] == 999
    # across shards, the sidecar hashes drive the dataset-wide pass
    from synthfactory.dataset.dedup import duplicate_mask

    table = gen._table([*kept, {**planted, "__phash": dupes[0]["__phash"]}], sidecar=True)
    mask, counts = duplicate_mask(table.select(["__phash"]))
    assert mask.tolist() == [False, False, False, True]
    assert counts["near_duplicate_image"] == 1


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=95)
    return buf.getvalue()


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_resume_after_the_actor_is_killed(
    tmp_path: Path, actor_killer: Callable[[Path], list[int]]
) -> None:
    spec = image_spec(
        str(tmp_path / "out"),
        "builtin:digits",
        rows=12,
        shard_rows=2,
        steps=30,
        width=None,
        height=None,
        dedup_max_distance=-1,
    )
    killed = actor_killer(tmp_path / "out")
    ds = open_dataset(run_job(spec)["uri"])
    assert killed, "no actor was killed"
    assert ds.manifest.rows == 12
    assert len(set(ds.to_arrow()["seed"].to_pylist())) == 12
