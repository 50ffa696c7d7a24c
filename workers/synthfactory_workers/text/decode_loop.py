"""The transformers backend's decoding loop: continuous batching with a seed per row.

Up to ``capacity`` rows decode together. A row leaves the batch the step it finishes (its
end-of-sequence token, a stop string or ``max_new_tokens``) and a waiting prompt takes its
place at once: the newcomers are prefilled on their own and their key/value cache is joined
to the running one, left-padded to a common length (positions come from each row's own
attention mask, so padding never shifts a row's positions). No step is spent on a finished
row, so a batch whose rows end at different times (constrained JSON, judges' short replies)
runs as full as the queue allows, as vLLM's scheduler does. Columns every row masks (the
left padding of rows that have left) are cut after each departure. The prompts' common
start (the chat template's system turn, a judge's rubric) is prefilled once per call and
copied into each newcomer's cache, which then holds [shared prefix | padding | own prompt];
the attention mask hides the padding, as vLLM's prefix caching shares those blocks.

Per step, on the logits of the rows in the batch, in this order: the repetition penalty (on
each row's own prompt and tokens), the top-k log-probabilities a request asked for (the
model's distribution, before any mask), the JSON Schema mask (``grammar.RowGrammar``), then
the row's own sampler (``sample``: its own ``torch.Generator``, one draw per token) or the
argmax. A row's random draws never depend on other rows; the logits can still differ in
the last bits with the batch's composition (padding changes the shapes of the matrix
products), so the batch size is part of the content hash: same spec + seed -> same text on
the same device and dtype.

Caches other than plain ``DynamicLayer`` layers (sliding-window attention) are not joined:
there the loop admits a new group only when the batch is empty (static batches, still
without steps for finished rows).
"""

from __future__ import annotations

import copy
import inspect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LOOP = "continuous-batching"
"""This loop's name, a preflight fact in the content hash of transformers text jobs."""

MIN_PREFIX = 8
"""Shortest common prompt start worth prefilling once for all rows (tokens)."""

StepRecord = tuple[float, list[int], list[float]]
"""(chosen token's log-probability, top ids, top log-probabilities) at one position."""


@dataclass(slots=True)
class Row:
    """One completion being made."""

    index: int
    prompt_ids: list[int]
    seed: int
    top: int = 0
    """Top log-probabilities to record per position (0: none)."""
    tokens: list[int] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    finish: str = ""
    generator: Any = None
    matcher: Any = None
    """The row's xgrammar matcher; None when decoding is free (or the row was freed)."""


@dataclass(slots=True)
class Batch:
    """The rows decoding now, their key/value cache and attention mask (one row each)."""

    rows: list[Row]
    cache: Any
    mask: Any
    logits: Any
    """[rows, vocab] logits for each row's next token."""


class DecodeLoop:
    """Continuous batching over one loaded causal LM (see the module docstring)."""

    def __init__(
        self,
        model: Any,
        pad_id: int,
        stop_ids: set[int],
        sampling: Any,
        decode: Callable[[list[int]], str],
        grammar: Any = None,
    ) -> None:
        self.model = model
        self.pad_id = pad_id
        self.stop_ids = stop_ids
        self.s = sampling
        self.decode = decode
        self.grammar = grammar
        self.device = next(model.parameters()).device
        params = inspect.signature(model.forward).parameters
        self._keep = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
        # transformers 5 names the cache argument ``cache`` (``past_key_values`` before)
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._prefix: tuple[int, Any] | None = None
        # a stop string completed by this step ends in the last tokens: each token is at
        # least one character, or a piece of one (byte fallback: up to 4 per character)
        self._tail = 4 * max((len(stop) for stop in sampling.stop), default=0) + 4

    def run(
        self,
        rows: list[Row],
        capacity: int,
        on_done: Callable[[Row], None],
        on_admit: Callable[[int], None] | None = None,
    ) -> None:
        """Decode every row, ``capacity`` at a time; ``on_admit(count)`` as rows join the
        batch, ``on_done(row)`` as each one finishes."""
        import torch

        pending = deque(rows)
        batch: Batch | None = None
        with torch.inference_mode():
            self._prefix = self._shared_prefix([r.prompt_ids for r in rows])
            while pending or batch is not None:
                room = capacity - (len(batch.rows) if batch is not None else 0)
                if pending and room > 0 and (batch is None or joinable(batch.cache)):
                    fresh = [pending.popleft() for _ in range(min(room, len(pending)))]
                    if on_admit is not None:
                        on_admit(len(fresh))
                    batch = self._admit(batch, fresh)
                assert batch is not None
                chosen = self._choose(batch)
                keep = [i for i, row in enumerate(batch.rows) if not self._advance(row, chosen[i])]
                for row in batch.rows:
                    if row.finish:
                        on_done(row)
                batch = self._step(batch, keep, chosen)

    # -- the batch ------------------------------------------------------------------------

    def _forward(self, ids: Any, mask: Any, cache: Any) -> tuple[Any, Any]:
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1] :]
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{self._cache_arg: cache},
            **self._keep,
        )
        return out.logits[:, -1, :], getattr(out, self._cache_arg)

    def _shared_prefix(self, prompts: list[list[int]]) -> tuple[int, Any] | None:
        """The prompts' common first tokens (the chat template's system turn, a judge's
        rubric), prefilled once: (length, its cache) when that is worth it, else None."""
        import torch

        if len(prompts) < 2:
            return None
        length = min(len(p) for p in prompts) - 1  # every row keeps a token of its own
        first = prompts[0]
        for other in prompts[1:]:
            length = next((i for i in range(length) if other[i] != first[i]), length)
        if length < MIN_PREFIX:
            return None
        ids = torch.tensor([first[:length]], device=self.device)
        _, cache = self._forward(ids, torch.ones_like(ids), None)
        return (length, cache) if joinable(cache) else None

    def _admit(self, batch: Batch | None, fresh: list[Row]) -> Batch:
        """Prefill ``fresh`` (after the shared prefix, left-padded among themselves) and
        join them to ``batch``."""
        import torch

        skip, prefix = self._prefix if self._prefix is not None else (0, None)
        width = max(len(r.prompt_ids) for r in fresh) - skip
        ids = torch.full((len(fresh), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(fresh), skip + width), dtype=torch.long)
        mask[:, :skip] = 1
        for i, row in enumerate(fresh):
            own = row.prompt_ids[skip:]
            ids[i, width - len(own) :] = torch.tensor(own)
            mask[i, skip + width - len(own) :] = 1
            if self.grammar is not None:
                row.matcher = self.grammar.matcher()
            if not self.s.greedy:
                row.generator = torch.Generator().manual_seed(int(row.seed) & (2**63 - 1))
        ids, mask = ids.to(self.device), mask.to(self.device)
        cache = None
        if prefix is not None:  # [prefix | padding | own tokens]: positions follow the mask
            cache = copy.deepcopy(prefix)
            cache.batch_repeat_interleave(len(fresh))
        logits, cache = self._forward(ids, mask, cache)
        if batch is None:
            return Batch(fresh, cache, mask, logits)
        joined_mask = join(batch.cache, batch.mask, cache, mask)
        logits = torch.cat([batch.logits, logits])
        return Batch(batch.rows + fresh, batch.cache, joined_mask, logits)

    def _step(self, batch: Batch, keep: list[int], chosen: Any) -> Batch | None:
        """Drop finished rows and cut all-padding columns, then decode one token for the
        rest."""
        import torch

        if not keep:
            return None
        cache, mask = batch.cache, batch.mask
        if len(keep) < len(batch.rows):
            index = torch.tensor(keep, device=mask.device)
            cache.batch_select_indices(index)
            mask = mask[index]
            cut = int(mask.any(0).long().argmax())
            if cut and joinable(cache):
                crop_left(cache, cut)
                mask = mask[:, cut:]
        ids = chosen[keep].unsqueeze(-1).to(self.device)
        mask = torch.cat([mask, mask.new_ones((len(keep), 1))], dim=-1)
        logits, cache = self._forward(ids, mask, cache)
        return Batch([batch.rows[i] for i in keep], cache, mask, logits)

    # -- one token per row ----------------------------------------------------------------

    def _choose(self, batch: Batch) -> Any:
        """Each row's next token (a CPU tensor), recording log-probabilities and masking."""
        import torch

        logits = batch.logits.float()
        if self.s.repetition_penalty != 1.0:
            penalize(logits, batch.rows, self.s.repetition_penalty)
        top = max(r.top for r in batch.rows)
        logp = torch.log_softmax(logits, dim=-1) if top else None
        if logp is not None:
            values, index = torch.topk(logp, min(top, logp.shape[-1]), dim=-1)
            values, index = values.cpu(), index.cpu()
        if self.grammar is not None:
            self.grammar.mask(logits, [r.matcher for r in batch.rows])
        if self.s.greedy:
            chosen = logits.argmax(dim=-1).cpu()
        else:
            chosen = sample(logits, [r.generator for r in batch.rows], self.s)
        if logp is not None:
            picked = logp.gather(-1, chosen.to(logp.device).unsqueeze(-1)).squeeze(-1).cpu()
            for i, row in enumerate(batch.rows):
                if row.top:
                    ids, tops = index[i, : row.top].tolist(), values[i, : row.top].tolist()
                    row.steps.append((float(picked[i]), ids, tops))
        if self.grammar is not None:
            for i in self.grammar.accept([r.matcher for r in batch.rows], chosen.tolist()):
                batch.rows[i].matcher = None  # refused (never with the mask): freed
        return chosen

    def _advance(self, row: Row, token: Any) -> bool:
        """Append the row's token; True (and ``row.finish`` set) when the row is done."""
        token = int(token)
        if token in self.stop_ids:
            row.finish = "stop"
            return True
        row.tokens.append(token)
        if self.s.stop and any(
            stop in self.decode(row.tokens[-self._tail :]) for stop in self.s.stop
        ):
            row.finish = "stop"
        elif len(row.tokens) >= self.s.max_new_tokens:
            row.finish = "length"
        return bool(row.finish)


def penalize(logits: Any, rows: list[Row], penalty: float) -> None:
    """The repetition penalty (CTRL's, as transformers applies it) on each row's own prompt
    and generated tokens, in place."""
    import torch

    for i, row in enumerate(rows):
        ids = torch.tensor(row.prompt_ids + row.tokens, device=logits.device)
        score = logits[i].gather(0, ids)
        logits[i].scatter_(0, ids, torch.where(score < 0, score * penalty, score / penalty))


def sample(logits: Any, generators: list[Any], s: Any) -> Any:
    """One token per row from temperature / top-k / top-p sampling, each row drawing from
    its own generator (one uniform draw per token)."""
    import torch

    logits = logits / s.temperature
    k = min(s.top_k, logits.shape[-1]) if s.top_k else logits.shape[-1]
    # work in the top-k space: sorting k candidates instead of the whole vocabulary
    values, index = torch.topk(logits, k, dim=-1)
    probs = torch.softmax(values, dim=-1)
    if s.top_p < 1.0:
        before = probs.cumsum(dim=-1) - probs  # mass of the candidates ranked above
        probs = probs.masked_fill(before > s.top_p, 0.0)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    cdf = probs.cumsum(dim=-1).cpu()
    draws = torch.stack([torch.rand(1, generator=g) for g in generators])
    position = torch.searchsorted(cdf, draws * cdf[:, -1:]).clamp(max=k - 1)
    return index.cpu().gather(-1, position).squeeze(-1)


# -- key/value caches ------------------------------------------------------------------------


def joinable(cache: Any) -> bool:
    """Whether rows can join this cache (every layer a plain, growing ``DynamicLayer``)."""
    from transformers.cache_utils import DynamicLayer

    layers: list[Any] = getattr(cache, "layers", None) or []
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def _pad_left(tensor: Any, width: int, dim: int) -> Any:
    import torch

    missing = width - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def join(cache: Any, mask: Any, fresh: Any, fresh_mask: Any) -> Any:
    """Append ``fresh``'s rows to ``cache`` in place (both left-padded to the longer one's
    length); returns the joined attention mask."""
    import torch

    width = max(mask.shape[1], fresh_mask.shape[1])
    for layer, new in zip(cache.layers, fresh.layers, strict=True):
        layer.keys = torch.cat([_pad_left(layer.keys, width, 2), _pad_left(new.keys, width, 2)])
        layer.values = torch.cat(
            [_pad_left(layer.values, width, 2), _pad_left(new.values, width, 2)]
        )
    return torch.cat([_pad_left(mask, width, 1), _pad_left(fresh_mask, width, 1)])


def crop_left(cache: Any, columns: int) -> None:
    """Drop the first ``columns`` positions of every layer (padding no row attends to)."""
    for layer in cache.layers:
        layer.keys = layer.keys[:, :, columns:, :]
        layer.values = layer.values[:, :, columns:, :]
