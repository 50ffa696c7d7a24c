"""Bias in generated text: which groups the texts mention, group-swapped prompt variants for
the counterfactual test, zero-shot sentiment, and the gaps between groups.

``groups`` maps a group name to the terms that name it, as parallel lists:
``{"female": ["she", "her", "woman"], "male": ["he", "him", "man"]}``. Terms match whole words
or phrases, case-insensitively ("young woman" matches "Young  woman", not "youngwoman").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from synthfactory.errors import ConfigError

_FIX = "give metrics.groups as {group: [term, ...]}, e.g. {female: [she, her], male: [he, him]}"


def check_groups(groups: dict[str, list[str]]) -> None:
    """ConfigError unless every group has at least one non-blank term."""
    for name, terms in groups.items():
        if not isinstance(terms, list) or not terms:
            raise ConfigError(f"metrics.groups.{name} has no terms", fix=_FIX)
        for term in terms:
            if not isinstance(term, str) or not term.strip():
                raise ConfigError(f"metrics.groups.{name} has a blank term: {term!r}", fix=_FIX)


def _term_regex(term: str) -> str:
    return r"\s+".join(re.escape(word) for word in term.split())


@functools.lru_cache(maxsize=256)
def _pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    # longest first, so a phrase ("young woman") wins over a term inside it ("woman")
    ordered = sorted(set(terms), key=lambda t: (-len(t.split()), -len(t), t))
    body = "|".join(f"({_term_regex(t)})" for t in ordered)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)


def _group_pattern(terms: list[str]) -> re.Pattern[str]:
    return _pattern(tuple(t.strip() for t in terms))


# -- mention counts (mergeable over shards) --------------------------------------------------


def mention_counts(texts: list[str], groups: dict[str, list[str]]) -> dict[str, Any]:
    """How many texts mention each group: ``{"n": texts, "groups": {group: texts mentioning
    it}, "texts_with_no_group": texts mentioning none}``.

    Every value is a count, so shard results merge by adding them key by key (see
    ``merge_mention_counts``); ``mention_shares`` turns (merged) counts into shares. A text
    mentioning two groups counts for both."""
    check_groups(groups)
    patterns = {name: _group_pattern(terms) for name, terms in groups.items()}
    counts = dict.fromkeys(groups, 0)
    none = 0
    for text in texts:
        hit = False
        for name, pattern in patterns.items():
            if pattern.search(text):
                counts[name] += 1
                hit = True
        none += not hit
    return {"n": len(texts), "groups": counts, "texts_with_no_group": none}


def merge_mention_counts(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The sum of several ``mention_counts`` results (one per shard)."""
    merged: dict[str, Any] = {"n": 0, "groups": {}, "texts_with_no_group": 0}
    for part in parts:
        merged["n"] += part["n"]
        merged["texts_with_no_group"] += part["texts_with_no_group"]
        for name, count in part["groups"].items():
            merged["groups"][name] = merged["groups"].get(name, 0) + count
    return merged


def mention_shares(counts: dict[str, Any]) -> dict[str, Any]:
    """Counts (from ``mention_counts`` or merged) with shares of all texts:
    ``{"n", "groups": {group: {"texts", "share"}}, "texts_with_no_group", "no_group_share"}``.
    Shares are None when there are no texts."""
    n = int(counts["n"])

    def share(k: int) -> float | None:
        return k / n if n else None

    return {
        "n": n,
        "groups": {
            name: {"texts": int(k), "share": share(int(k))} for name, k in counts["groups"].items()
        },
        "texts_with_no_group": int(counts["texts_with_no_group"]),
        "no_group_share": share(int(counts["texts_with_no_group"])),
    }


def mentions_any(text: str, groups: dict[str, list[str]]) -> bool:
    """Whether ``text`` mentions a term of any group."""
    check_groups(groups)
    return bool(_pattern(tuple(t.strip() for ts in groups.values() for t in ts)).search(text))


# -- counterfactual variants -----------------------------------------------------------------


def _match_case(found: str, replacement: str) -> str:
    """``replacement`` cased like ``found``: SHE -> HE, She -> He, Young Woman -> Old Man;
    a lowercase match takes the term as written in the config."""
    letters = [c for c in found if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return replacement.upper()
    words = found.split()
    if len(words) > 1 and all(w[:1].isupper() for w in words):
        return " ".join(w[:1].upper() + w[1:] for w in replacement.split())
    if found[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def swap_groups(text: str, groups: dict[str, list[str]], target: str) -> str | None:
    """``text`` with every term of every other group replaced by the target group's term at
    the same position in its list (index modulo the target's list length), keeping the
    found term's capitalisation; None when the text mentions no group term at all.

    Text that mentions only the target group comes back unchanged. The lists are parallel
    by position, so ambiguous words map one way only (e.g. "her" -> "him" even where "his"
    would be right): choose terms with that in mind."""
    check_groups(groups)
    if target not in groups:
        raise ConfigError(
            f"group {target!r} is not one of {sorted(groups)}", fix="use a name in metrics.groups"
        )
    target_terms = [t.strip() for t in groups[target]]
    keep = {_key(t) for t in target_terms}  # the target's own terms stay as they are
    replacement: dict[str, str] = {}
    for name, terms in groups.items():
        if name != target:
            for i, term in enumerate(terms):
                if _key(term) not in keep:
                    replacement.setdefault(_key(term), target_terms[i % len(target_terms)])
    pattern = _pattern(tuple(t.strip() for terms in groups.values() for t in terms))
    if not pattern.search(text):
        return None

    def swap(match: re.Match[str]) -> str:
        found = match.group(0)
        new = replacement.get(_key(found))
        return found if new is None else _match_case(found, new)

    return pattern.sub(swap, text)


def _key(term: str) -> str:
    return " ".join(term.lower().split())


# -- sentiment -------------------------------------------------------------------------------

POSITIVE_ANCHORS = (
    "This is wonderful, I love it.",
    "Absolutely fantastic, the best experience ever.",
    "I am so happy and grateful.",
    "Excellent quality, highly recommended.",
    "What a kind, generous and helpful person.",
    "Everything went perfectly and I feel great.",
    "The team did a brilliant job and everyone was delighted.",
    "A beautiful, joyful day.",
    "Thank you, this was truly amazing.",
    "The service was friendly, fast and reliable.",
)
NEGATIVE_ANCHORS = (
    "This is terrible, I hate it.",
    "Absolutely awful, the worst experience ever.",
    "I am so sad and angry.",
    "Poor quality, a complete waste of money.",
    "What a cruel, rude and selfish person.",
    "Everything went wrong and I feel miserable.",
    "The team did a dreadful job and everyone was furious.",
    "A horrible, depressing day.",
    "No thanks, this was truly disgusting.",
    "The service was hostile, slow and unreliable.",
)


# -- gaps between groups ---------------------------------------------------------------------


def group_gaps(per_group: dict[str, dict[str, float]]) -> dict[str, float]:
    """The largest difference between any two groups: ``sentiment_gap`` (max - min of
    ``sentiment_mean``), ``length_ratio`` (min / max of ``words_mean``: 1.0 is equal, 0.0
    is one group getting empty texts) and ``refusal_gap`` (max - min of ``refusal_rate``).

    A measure missing (or None/NaN) for a group leaves that group out of that measure; a
    measure known for fewer than two groups is left out of the result."""
    out: dict[str, float] = {}

    def values(key: str) -> list[float]:
        found = [g.get(key) for g in per_group.values()]
        return [float(v) for v in found if v is not None and np.isfinite(float(v))]

    sentiment = values("sentiment_mean")
    if len(sentiment) >= 2:
        out["sentiment_gap"] = max(sentiment) - min(sentiment)
    words = values("words_mean")
    if len(words) >= 2:
        out["length_ratio"] = min(words) / max(words) if max(words) > 0 else 1.0
    refusals = values("refusal_rate")
    if len(refusals) >= 2:
        out["refusal_gap"] = max(refusals) - min(refusals)
    return out
