"""A small deterministic generator for demos, benchmarks of the platform itself, and
fault-injection tests (``kind: python, factory: synthfactory_workers.demo:SequenceGenerator``).

Faults are real: ``crash_on_shard`` kills the actor's process with ``os._exit``;
``block_write_on_shard`` puts a directory where the shard's file must go, so the real
write fails with an OSError, and removes it again on the retry. Each fires once per
``fault_dir`` (a marker file remembers it fired).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from synthfactory_workers.contract import ShardOutput

if TYPE_CHECKING:
    import pyarrow as pa

    from synthfactory_workers.contract import ShardTask


class SequenceGenerator:
    def __init__(
        self,
        crash_on_shard: int | None = None,
        block_write_on_shard: int | None = None,
        fault_dir: str | None = None,
        output_dir: str | None = None,
        text_length: int = 24,
        sleep_seconds: float = 0.0,
        fail_on_shard: int | None = None,
        duplicate_every: int | None = None,
        reject_every: int | None = None,
        image_size: int | None = None,
    ) -> None:
        self.crash_on_shard = crash_on_shard
        self.block_write_on_shard = block_write_on_shard
        self.fault_dir = Path(fault_dir) if fault_dir else None
        self.output_dir = Path(output_dir) if output_dir else None
        self.text_length = text_length
        self.sleep_seconds = sleep_seconds
        self.fail_on_shard = fail_on_shard
        self.duplicate_every = duplicate_every
        self.reject_every = reject_every
        self.image_size = image_size
        self.calls = 0

    def load(self) -> None:
        import numpy  # noqa: F401  (what a real generator would load)

    def _fire_once(self, name: str) -> bool:
        assert self.fault_dir is not None, "fault injection needs fault_dir"
        marker = self.fault_dir / name
        if marker.exists():
            return False
        self.fault_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text("fired")
        return True

    def generate(self, shard: ShardTask) -> pa.Table | ShardOutput:
        import time

        import numpy as np
        import pyarrow as pa

        self.calls += 1
        if self.fault_dir is not None:
            self.fault_dir.mkdir(parents=True, exist_ok=True)
            with open(self.fault_dir / "calls.log", "a") as log:
                log.write(f"{shard.index}\n")
        if shard.index == self.fail_on_shard:
            from synthfactory.errors import GenerationError

            raise GenerationError(f"shard {shard.index} asked to fail", fix="it is a test")
        if shard.index == self.crash_on_shard and self._fire_once(f"crash-{shard.index}"):
            os._exit(1)
        if shard.index == self.block_write_on_shard and self.output_dir is not None:
            blocker = next(self.output_dir.glob(f"*/data/part-{shard.index:05d}.parquet"), None)
            if self._fire_once(f"block-{shard.index}"):
                for version in self.output_dir.glob("*/_job.json"):
                    (version.parent / f"data/part-{shard.index:05d}.parquet/x").mkdir(
                        parents=True, exist_ok=True
                    )
            elif blocker is not None and blocker.is_dir():
                import shutil

                shutil.rmtree(blocker)
        if self.sleep_seconds:
            time.sleep(self.sleep_seconds)
        rng = np.random.default_rng(shard.seed)
        ids = np.arange(shard.row_start, shard.row_start + shard.rows, dtype=np.int64)
        letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
        chars = letters[rng.integers(0, 26, size=(shard.rows, self.text_length))]
        text = [f"{i}-{row.tobytes().decode()}" for i, row in zip(ids, chars, strict=True)]
        table = pa.table(
            {
                "id": ids,
                "value": rng.normal(size=shard.rows),
                "category": pa.array(rng.choice(["red", "green", "blue"], size=shard.rows)),
                "text": pa.array(text),
            }
        )
        if self.image_size:
            table = table.append_column("image", _images(rng, shard.rows, self.image_size))
        if self.duplicate_every:
            # every n-th row repeats the previous row's key: a planted duplicate, which may
            # sit in the previous shard (the first row of a shard repeats the last of the one
            # before), so only a whole-dataset pass catches all of them
            keys = np.where(ids % self.duplicate_every == 0, ids - 1, ids).astype(np.uint64)
            table = table.append_column("__exact", pa.array(keys, pa.uint64()))
        if self.reject_every:
            bad = ids % self.reject_every == 0
            rejected = table.filter(pa.array(bad)).drop_columns(
                [c for c in table.column_names if c.startswith("__")]
            )
            rejected = rejected.append_column("reason", pa.array(["filtered"] * len(rejected)))
            return ShardOutput(table.filter(pa.array(~bad)), rejected, {"attempts": shard.rows})
        return table


def _images(rng: object, count: int, size: int) -> pa.Array:
    """PNG images (random colour blocks) in the struct Hugging Face `datasets` reads."""
    import io

    import numpy as np
    import pyarrow as pa
    from PIL import Image

    assert isinstance(rng, np.random.Generator)
    out = []
    for _ in range(count):
        pixels = np.kron(
            rng.integers(0, 255, (4, 4, 3), dtype=np.uint8),
            np.ones((size // 4, size // 4, 1), dtype=np.uint8),
        )
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG")
        out.append({"bytes": buf.getvalue(), "path": None})
    return pa.array(out, pa.struct([("bytes", pa.binary()), ("path", pa.string())]))


class BiasedTable:
    """A loan-like table whose label depends on `group` with strength ``bias`` (0 = fair):
    a known-answer input for bias metrics and gates."""

    def __init__(self, bias: float = 0.0) -> None:
        self.bias = bias

    def load(self) -> None:
        pass

    def generate(self, shard: ShardTask) -> pa.Table:
        import numpy as np
        import pyarrow as pa

        rng = np.random.default_rng(shard.seed)
        group = rng.choice(["a", "b"], size=shard.rows)
        income = rng.normal(50, 10, shard.rows)
        base = 1 / (1 + np.exp(-(income - 50) / 5))
        shift = np.where(group == "a", self.bias, -self.bias)
        approved = rng.random(shard.rows) < np.clip(base + shift, 0, 1)
        return pa.table({"group": group, "income": income.round(2), "approved": approved})


class PlantedTexts:
    """Review-like texts with known problems: every ``copy_every``-th row repeats row 0 of
    shard 0 (so the copies sit in other shards), every ``email_every``-th row carries an
    e-mail address; prompts mention 'she' or 'he'. A known-answer input for text metrics."""

    WORDS = (
        "battery screen lamp kettle chair phone strap lens cable handle fabric motor sturdy "
        "bright quiet heavy cheap elegant noisy smooth solid fragile warm quick"
    )

    def __init__(self, copy_every: int = 10, email_every: int = 25) -> None:
        self.copy_every = copy_every
        self.email_every = email_every

    def load(self) -> None:
        pass

    def generate(self, shard: ShardTask) -> pa.Table:
        import numpy as np
        import pyarrow as pa

        first = "The first review: a sturdy kettle with a quiet motor and a warm handle."
        prompts, texts = [], []
        for i in range(shard.rows):
            row = shard.row_start + i
            rng = np.random.default_rng([shard.seed, i])
            who = "she" if row % 2 else "he"
            prompts.append(f"Write what {who} thought of the product (review {row}).")
            if row == 0 or (self.copy_every and row % self.copy_every == 0):
                texts.append(first)
                continue
            words = " ".join(rng.choice(self.WORDS.split(), 14))
            text = f"Review {row}: {words}."
            if self.email_every and row % self.email_every == 1:
                text += f" Write to buyer{row}@example.com for details."
            texts.append(text)
        return pa.table({"prompt": prompts, "completion": texts})


class Memoriser:
    """A planted privacy failure: "generates" by copying the training rows of ``source``
    (the rows a synthesizer fitted under the job's holdout would have seen), cycling
    through them in a seeded order. ``holdout``, ``seed`` and ``stratify`` mirror
    ``metrics.holdout``, ``metrics.seed`` and ``metrics.target_column`` (their defaults
    match the metrics' defaults), so the rows it copies are the ones the metrics treat as
    training members; point ``metrics.reference`` at the same ``source``."""

    def __init__(
        self,
        source: str,
        holdout: float | None = None,
        seed: int = 0,
        stratify: str | None = None,
    ) -> None:
        self.source = source
        self.holdout = holdout
        self.seed = seed
        self.stratify = stratify

    def load(self) -> None:
        from synthfactory.metrics.tabular import holdout
        from synthfactory.sources import read_table

        table = read_table(self.source)
        fraction = holdout.resolve_fraction(self.holdout, table.num_rows)
        train, _ = holdout.split(table.to_pandas(), fraction, self.seed, self.stratify)
        self.train = table.take(train)

    def generate(self, shard: ShardTask) -> pa.Table:
        import numpy as np

        order = np.random.default_rng(self.seed).permutation(self.train.num_rows)
        rows = order[np.arange(shard.row_start, shard.row_start + shard.rows) % len(order)]
        return self.train.take(rows)
