"""Per-token log-probabilities from each backend, in one form (``TokenLogprob``), for judges
that score from probabilities (``rubrics.weighted_scores``).

- transformers: the decode loop (``decode_loop.py``) records the top-k log-softmax of the
  model's logits at every generated position, before the schema mask and the sampler
  (``from_steps`` turns a row's records into ``TokenLogprob`` s).
- OpenAI-compatible servers: ``logprobs: true, top_logprobs: k`` in the body (``logprobs: k``
  on the completions API), read from ``choices[0].logprobs``.
- vLLM: ``SamplingParams(logprobs=k)``; each position is a {token id: Logprob} mapping.

The journal keeps a completion's logprobs with alternatives only where a judge reads them
(short word or number tokens: scores, labels), so a resumed judge request scores the same.
"""

from __future__ import annotations

import math
from typing import Any

from synthfactory_workers.text.backend import TokenLogprob

TOP_LOGPROBS = 20
"""Alternatives a judge asks for per token (OpenAI's maximum)."""


# -- OpenAI-compatible servers -----------------------------------------------------------------


def openai_fields(api: str, k: int) -> dict[str, Any]:
    """Request fields asking for ``k`` alternatives per token."""
    return {"logprobs": True, "top_logprobs": k} if api == "chat" else {"logprobs": k}


def from_openai(logprobs: Any) -> tuple[TokenLogprob, ...] | None:
    """``choices[0].logprobs`` of a chat (``content``) or completions (``tokens``) answer;
    None when the server sent none."""
    if not isinstance(logprobs, dict):
        return None
    content = logprobs.get("content")
    if isinstance(content, list):
        return tuple(
            TokenLogprob(
                str(item["token"]),
                _number(item.get("logprob")),
                tuple(
                    (str(alt["token"]), _number(alt.get("logprob")))
                    for alt in item.get("top_logprobs") or ()
                ),
            )
            for item in content
        )
    tokens = logprobs.get("tokens")
    if isinstance(tokens, list):
        values = logprobs.get("token_logprobs") or [None] * len(tokens)
        tops = logprobs.get("top_logprobs") or [None] * len(tokens)
        return tuple(
            TokenLogprob(
                str(token),
                _number(value),
                _sorted((top or {}).items()),
            )
            for token, value, top in zip(tokens, values, tops, strict=False)
        )
    return None


def _number(value: Any) -> float:
    return -math.inf if value is None else float(value)


def _sorted(pairs: Any) -> tuple[tuple[str, float], ...]:
    items = [(str(t), _number(v)) for t, v in pairs]
    return tuple(sorted(items, key=lambda item: -item[1]))


# -- vLLM ----------------------------------------------------------------------------------------


def from_vllm(token_ids: Any, positions: Any) -> tuple[TokenLogprob, ...] | None:
    """``CompletionOutput.token_ids`` and ``.logprobs`` (a {token id: Logprob} per position,
    the top-k plus the sampled token)."""
    if not positions:
        return None
    out = []
    for token_id, position in zip(token_ids, positions, strict=False):
        chosen = position.get(token_id)
        alternatives = [
            (str(lp.decoded_token or ""), float(lp.logprob)) for lp in position.values()
        ]
        out.append(
            TokenLogprob(
                str(chosen.decoded_token or "") if chosen is not None else "",
                float(chosen.logprob) if chosen is not None else -math.inf,
                tuple(sorted(alternatives, key=lambda item: -item[1])),
            )
        )
    return tuple(out)


# -- transformers --------------------------------------------------------------------------------


def from_steps(
    tokens: list[int], steps: list[tuple[float, list[int], list[float]]], piece: Any
) -> tuple[TokenLogprob, ...]:
    """A row's generated ``tokens`` with its recorded ``steps``; ``piece(id)`` is a token's
    text."""
    return tuple(
        TokenLogprob(
            piece(token),
            chosen,
            tuple((piece(t), v) for t, v in zip(ids, values, strict=True)),
        )
        for token, (chosen, ids, values) in zip(tokens, steps, strict=False)
    )


# -- the journal ---------------------------------------------------------------------------------


def is_short(token: str) -> bool:
    """A token a judge may read a score or a label from: up to 3 letters or digits."""
    core = token.strip().strip("\"'")
    return 0 < len(core) <= 3 and core.isalnum()


def to_record(logprobs: tuple[TokenLogprob, ...] | None) -> list[Any] | None:
    """JSON for the journal: [token, logprob, [[alt, logprob], ...]] per token, the
    alternatives kept only at short tokens (``is_short``)."""
    if logprobs is None:
        return None
    return [
        [
            t.token,
            _finite(t.logprob),
            [[a, _finite(v)] for a, v in t.top] if is_short(t.token) else [],
        ]
        for t in logprobs
    ]


def from_record(record: Any) -> tuple[TokenLogprob, ...] | None:
    if not isinstance(record, list):
        return None
    return tuple(
        TokenLogprob(str(token), _number(value), tuple((str(a), _number(v)) for a, v in top))
        for token, value, top in record
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
