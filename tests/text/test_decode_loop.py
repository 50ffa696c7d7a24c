"""The transformers backend's continuous batching (``text/decode_loop.py``) on the shipped
SmolLM2: a finished row leaves the batch the step it ends and a waiting one joins the
running batch, no step is spent on a finished row, the shared prompt start is prefilled
once, and every completion is the one the model writes for that prompt alone."""

from __future__ import annotations

from typing import Any

import pytest

from synthfactory.spec.generators.text import LLMConfig
from synthfactory_workers.text.backend import Request

pytest.importorskip("xgrammar")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"mood": {"enum": ["calm", "upbeat", "gloomy and tired"]}, "note": {}},
    "required": ["mood", "note"],
}
SCHEMA["properties"]["note"] = {"type": "string", "maxLength": 40}
THINGS = ["kettle", "tent", "desk lamp", "mountain bike", "pen", "sofa", "rain jacket"]


def config(**sampling: Any) -> LLMConfig:
    return LLMConfig.model_validate(
        {
            "model": "builtin:smollm2",
            "prompt": {"template": "x"},
            "dtype": "float32",
            "json_schema": SCHEMA,
            "sampling": {"max_new_tokens": 32, "greedy": True, **sampling},
        }
    )


def requests() -> list[Request]:
    return [
        Request([{"role": "user", "content": f"How does a {t} feel? Reply as JSON."}], 5 + i)
        for i, t in enumerate(THINGS)
    ]


class Spy:
    """Counts the rows of each forward pass of the decode loop."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from synthfactory_workers.text import decode_loop

        self.decode_rows: list[int] = []  # rows per one-token step
        self.prefills: list[tuple[int, int]] = []  # (rows, tokens each) per prefill
        self.joins = 0  # prefills while other rows were decoding
        original_forward = decode_loop.DecodeLoop._forward
        original_admit = decode_loop.DecodeLoop._admit

        def forward(loop: Any, ids: Any, mask: Any, cache: Any) -> Any:
            if ids.shape[1] == 1 and cache is not None:
                self.decode_rows.append(int(ids.shape[0]))
            else:
                self.prefills.append((int(ids.shape[0]), int(ids.shape[1])))
            return original_forward(loop, ids, mask, cache)

        def admit(loop: Any, batch: Any, fresh: Any) -> Any:
            self.joins += batch is not None
            return original_admit(loop, batch, fresh)

        monkeypatch.setattr(decode_loop.DecodeLoop, "_forward", forward)
        monkeypatch.setattr(decode_loop.DecodeLoop, "_admit", admit)


@pytest.fixture(scope="module")
def backend() -> Any:
    from synthfactory_workers.text.transformers_backend import TransformersBackend

    loaded = TransformersBackend(config())
    loaded.load()
    return loaded


@pytest.mark.slow
def test_rows_join_as_others_finish_and_match_their_solo_runs(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(monkeypatch)
    together = backend.generate(requests(), 3)
    lengths = [c.completion_tokens + (c.finish_reason == "stop") for c in together]
    assert len(set(lengths)) > 1, lengths  # rows end at different steps
    # each row's first token comes from its prefill, every other one from a step it is in:
    # no step carries a finished row, and the batch never holds more than 3
    assert sum(spy.decode_rows) == sum(n - 1 for n in lengths)
    assert max(spy.decode_rows) == 3
    assert spy.joins >= 1  # a waiting row joined rows still decoding
    # the chat template's system turn is prefilled once (one row), then only each row's own
    shared = spy.prefills[0]
    assert shared[0] == 1 and shared[1] >= 8
    assert all(rows <= 3 for rows, _ in spy.prefills[1:])
    # the same model on each prompt alone (batch 1; greedy, float32) writes the same
    # completion: every row here joined a running batch or was joined by one
    alone = backend.generate(requests(), 1)
    assert max(spy.decode_rows[-sum(n - 1 for n in lengths) :]) == 1
    for solo, completion in zip(alone, together, strict=True):
        assert solo.text == completion.text
        assert solo.completion_tokens == completion.completion_tokens
        assert solo.prompt_tokens == completion.prompt_tokens


@pytest.mark.slow
def test_stop_strings_and_seeded_sampling_keep_working(backend: Any) -> None:
    backend.config = config(greedy=False, temperature=0.9)
    first = backend.generate(requests(), 4)
    again = backend.generate(requests(), 4)
    assert [c.text for c in first] == [c.text for c in again]  # a seed per row
    assert len({c.text for c in first}) > 1
    backend.config = config(greedy=False, temperature=0.9, stop=["mood"])
    for completion in backend.generate(requests(), 4):  # the schema writes "mood" first
        assert completion.text == '{"' and completion.finish_reason == "stop"
        assert completion.completion_tokens <= 4  # the row stopped there, not at 32 tokens
    backend.config = config()
