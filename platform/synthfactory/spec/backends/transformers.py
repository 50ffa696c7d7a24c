"""The default engine: transformers' ``generate`` inside each actor."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from synthfactory.spec.backends import BACKENDS
from synthfactory.spec.base import Frozen


@BACKENDS.register("synthfactory_workers.text.transformers_backend:TransformersBackend")
class TransformersBackendConfig(Frozen):
    """Batched generation with transformers on the actor's device (``device``, ``dtype`` and
    ``resources.batch_size`` set how)."""

    RUN_SETTINGS: ClassVar[tuple[str, ...]] = ("journal",)
    """Bookkeeping only: left out of the content hash."""

    kind: Literal["transformers"] = Field(
        "transformers", description="transformers' generate, one model per actor."
    )
    guided_decoding: bool = Field(
        True,
        description="With a JSON Schema (json_schema, llm_structured and llm_judge columns): "
        "constrain decoding to the schema with xgrammar, so completions parse and obey it "
        "(each row still samples with its own seed); off: they are only validated and retried.",
    )
    journal: bool = Field(
        False,
        description="Keep a per-shard journal of completions on the dataset's storage so a "
        "retried shard does not generate them again.",
    )
