"""The transformers backend: batched generation with a seed per completion.

Each completion samples from its own torch.Generator (seeded from the row seed) inside a
logits processor, so a row's random draws never depend on other rows. The logits themselves
can still differ in the last bits with batch composition (padding changes the shapes of the
matrix products), so the batch size is part of the dataset's content hash: same spec + seed
-> same text on the same device and dtype.
Prompts are sorted by length to cut padding, padded on the left, and a batch that runs out
of memory is split in half and retried.
With a JSON Schema (``config.json_schema``) and ``backend.guided_decoding`` (the default),
decoding is constrained to the schema (``grammar.py``, xgrammar): completions parse.
"""

from __future__ import annotations

from typing import Any

from synthfactory.spec.generators.text import LLMConfig
from synthfactory_workers.devices import resolve_device_dtype
from synthfactory_workers.telemetry import METER
from synthfactory_workers.text.backend import Completion, OnResult, Request, TextBackend
from synthfactory_workers.text.logprobs import TopLogprobs, from_steps, trimmed
from synthfactory_workers.text.models import load_causal_lm, resolve


def is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


class TransformersBackend(TextBackend):
    def __init__(self, config: LLMConfig, device_hint: str = "cpu") -> None:
        self.config = config
        self.device_hint = device_hint
        _, _, self.model_id = resolve(config.model, config.gguf_file)
        self.revision = config.revision or "unknown"
        self._grammars: Any = None
        self._guided = {"guided_completions": 0.0, "guided_refused_tokens": 0.0}

    def load(self) -> None:
        import torch  # noqa: F401

        from synthfactory_workers.threads import limit_torch_threads

        limit_torch_threads()
        self.device, self.dtype = resolve_device_dtype(
            self.config.device, self.config.dtype, self.device_hint, prefer_bf16=True
        )
        self.model, self.tokenizer = load_causal_lm(
            self.config.model, self.config.gguf_file, self.config.revision, self.dtype, self.device
        )
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        commit = getattr(self.model.config, "_commit_hash", None)
        if commit:
            self.revision = str(commit)

    def _prompt(self, request: Request) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            text: str = self.tokenizer.apply_chat_template(
                request.messages, tokenize=False, add_generation_prompt=True
            )
            return text
        return "\n\n".join(m["content"] for m in request.messages)

    def request_body(self, request: Request) -> dict[str, Any]:
        body = super().request_body(request)
        body["revision"] = self.revision
        body["sampling"] = self.config.sampling.model_dump(mode="json")
        schema = self._schema()
        if schema is not None:  # a constrained completion is not the free one
            from synthfactory_workers.text.grammar import schema_key

            body["guided"] = schema_key(schema)
        return body

    def _schema(self) -> dict[str, Any] | None:
        """The JSON Schema decoding is constrained to (None: free decoding)."""
        from synthfactory_workers.text.grammar import guided

        return self.config.json_schema if guided(self.config) else None

    def _constraint(self, batch: int) -> Any:
        """A GrammarConstraint for this batch (grammar compiled once per schema), or None."""
        schema = self._schema()
        if schema is None:
            return None
        if self._grammars is None:
            from synthfactory_workers.text.grammar import Grammars

            eos = self.model.generation_config.eos_token_id
            stops = sorted(
                {self.tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
            )
            vocab = int(self.model.get_output_embeddings().weight.shape[0])
            self._grammars = Grammars(self.tokenizer, vocab, stops)
        return self._grammars.constraint(schema, batch)

    def take_stats(self) -> dict[str, float]:
        stats = {k: v for k, v in self._guided.items() if v}
        self._guided = dict.fromkeys(self._guided, 0.0)
        return stats

    def complete(
        self,
        requests: list[Request],
        batch_size: int,
        on_result: OnResult | None,
        max_failures: int | None,
    ) -> list[Completion]:
        prompts = [self._prompt(r) for r in requests]
        self._top_logprobs = max((r.top_logprobs for r in requests), default=0)
        lengths = [len(self.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
        results: dict[int, Completion] = {}
        start = 0
        size = batch_size
        while start < len(order):
            chunk = order[start : start + size]
            METER.started(len(chunk))
            try:
                done = self._run([prompts[i] for i in chunk], [requests[i].seed for i in chunk])
                done = [
                    trimmed(c, requests[i].top_logprobs) for i, c in zip(chunk, done, strict=True)
                ]
            except BaseException as exc:
                METER.finished(len(chunk))
                if not isinstance(exc, RuntimeError) or not is_oom(exc) or size == 1:
                    raise
                size = max(1, size // 2)  # out of memory: halve the batch and retry
                self._free()
                continue
            METER.finished(len(chunk), sum(c.completion_tokens for c in done))
            results.update(zip(chunk, done, strict=True))
            if on_result is not None:
                for i, completion in zip(chunk, done, strict=True):
                    on_result(i, completion)
            start += len(chunk)
        return [results[i] for i in range(len(prompts))]

    def _piece(self, token_id: int) -> str:
        """A token's text (cached: judges read thousands of alternatives per batch)."""
        cache: dict[int, str] = self.__dict__.setdefault("_pieces", {})
        if token_id not in cache:
            cache[token_id] = self.tokenizer.decode([token_id])
        return cache[token_id]

    def _free(self) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _run(self, prompts: list[str], seeds: list[int]) -> list[Completion]:
        import torch
        from transformers import LogitsProcessorList

        s = self.config.sampling
        batch = self.tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=False
        ).to(self.device)
        kwargs: dict[str, Any] = {
            "max_new_tokens": s.max_new_tokens,
            "do_sample": False,
            "pad_token_id": self.tokenizer.pad_token_id,
            "repetition_penalty": s.repetition_penalty,
        }
        # generate() warns about sampling options when do_sample is False: clear them
        kwargs.update(temperature=None, top_p=None, top_k=None)
        constraint = self._constraint(len(prompts))
        processors = [] if constraint is None else [constraint]  # masks before sampling
        if not s.greedy:
            processors.append(SeededSampler(seeds, s))
        top = getattr(self, "_top_logprobs", 0)
        recorder = TopLogprobs(top) if top else None
        if recorder is not None:  # the model's own distribution, before any mask or sampling
            processors.insert(0, recorder)
        if processors:
            kwargs["logits_processor"] = LogitsProcessorList(processors)
        if s.stop:
            kwargs.update(stop_strings=list(s.stop), tokenizer=self.tokenizer)
        with torch.inference_mode():
            out = self.model.generate(**batch, **kwargs)
        if constraint is not None:
            self._guided["guided_completions"] += len(prompts)
            self._guided["guided_refused_tokens"] += constraint.refused
        new = out[:, batch["input_ids"].shape[1] :]
        steps = recorder.rows(new) if recorder is not None else None
        eos = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        completions = []
        for i, row in enumerate(new.tolist()):
            tokens = []
            finish = "length"
            for t in row:
                if t in eos:
                    finish = "stop"
                    break
                tokens.append(t)
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            for stop in s.stop:
                if stop in text:
                    text, finish = text[: text.index(stop)], "stop"
            logprobs = from_steps(tokens, steps[i], self._piece) if steps is not None else None
            prompt_tokens = int(batch["attention_mask"][i].sum())
            completions.append(
                Completion(text.strip(), prompt_tokens, len(tokens), finish, logprobs=logprobs)
            )
        return completions


class SeededSampler:
    """Samples each row's next token with that row's own generator; returns scores where
    only the chosen token is finite, so generate()'s greedy step picks it."""

    def __init__(self, seeds: list[int], sampling: Any) -> None:
        import torch

        self.generators = [torch.Generator().manual_seed(int(s) & (2**63 - 1)) for s in seeds]
        self.s = sampling

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        logits = scores.float() / self.s.temperature
        k = min(self.s.top_k, logits.shape[-1]) if self.s.top_k else logits.shape[-1]
        # work in the top-k space: sorting k candidates instead of the whole vocabulary
        values, index = torch.topk(logits, k, dim=-1)
        probs = torch.softmax(values, dim=-1)
        if self.s.top_p < 1.0:
            before = probs.cumsum(dim=-1) - probs  # mass of the candidates ranked above
            probs = probs.masked_fill(before > self.s.top_p, 0.0)
            probs = probs / probs.sum(dim=-1, keepdim=True)
        cdf = probs.cumsum(dim=-1).cpu()
        draws = torch.stack([torch.rand(1, generator=g) for g in self.generators])
        position = torch.searchsorted(cdf, draws * cdf[:, -1:]).clamp(max=k - 1)
        chosen = index.gather(-1, position.to(index.device))
        out = torch.full_like(scores, float("-inf"))
        return out.scatter(-1, chosen, 0.0)
