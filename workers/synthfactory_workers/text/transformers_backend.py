"""The transformers backend: continuous batching with a seed per completion.

The model decodes up to ``batch_size`` rows at a time in ``decode_loop.DecodeLoop``: a
finished row leaves the batch at once and the next prompt takes its place. Each completion
samples from its own torch.Generator (seeded from the row seed), so a row's random draws
never depend on other rows; the logits can still differ in the last bits with the batch's
composition, so the batch size is part of the dataset's content hash: same spec + seed ->
same text on the same device and dtype. Prompts go in longest first; on running out of
memory the batch is halved and the unfinished rows are decoded again.
With a JSON Schema (``config.json_schema``) and ``backend.guided_decoding`` (the default),
decoding is constrained to the schema (``grammar.py``, xgrammar): completions parse.
"""

from __future__ import annotations

from typing import Any

from synthfactory.spec.generators.text import LLMConfig
from synthfactory_workers.devices import resolve_device_dtype
from synthfactory_workers.telemetry import METER
from synthfactory_workers.text.backend import Completion, OnResult, Request, TextBackend
from synthfactory_workers.text.logprobs import from_steps
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

    def _stop_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        ids = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        ids.update(eos if isinstance(eos, list) else [eos])
        return {int(i) for i in ids if i is not None}

    def _grammar(self, capacity: int) -> Any:
        """A RowGrammar for this call (grammar compiled once per schema), or None."""
        schema = self._schema()
        if schema is None:
            return None
        if self._grammars is None:
            from synthfactory_workers.text.grammar import Grammars

            vocab = int(self.model.get_output_embeddings().weight.shape[0])
            self._grammars = Grammars(self.tokenizer, vocab, sorted(self._stop_ids()))
        return self._grammars.for_rows(schema, capacity)

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
        from synthfactory_workers.text.decode_loop import Row

        ids = [
            self.tokenizer(self._prompt(r), add_special_tokens=False)["input_ids"] for r in requests
        ]
        # longest prompts first: rows that join together pad less
        order = sorted(range(len(requests)), key=lambda i: -len(ids[i]))
        results: dict[int, Completion] = {}
        size = batch_size
        while len(results) < len(requests):
            rows = [
                Row(i, ids[i], requests[i].seed, requests[i].top_logprobs)
                for i in order
                if i not in results
            ]
            try:
                self._decode(rows, size, results, on_result)
            except BaseException as exc:
                if not isinstance(exc, RuntimeError) or not is_oom(exc) or size == 1:
                    raise
                size = max(1, size // 2)  # out of memory: halve the batch, redo the rest
                self._free()
        return [results[i] for i in range(len(requests))]

    def _decode(
        self,
        rows: list[Any],
        capacity: int,
        results: dict[int, Completion],
        on_result: OnResult | None,
    ) -> None:
        from synthfactory_workers.text.decode_loop import DecodeLoop

        grammar = self._grammar(capacity)
        loop = DecodeLoop(
            self.model,
            int(self.tokenizer.pad_token_id),
            self._stop_ids(),
            self.config.sampling,
            lambda tokens: self.tokenizer.decode(tokens, skip_special_tokens=True),
            grammar,
        )
        admitted = 0

        def admit(count: int) -> None:
            nonlocal admitted
            admitted += count
            METER.started(count)

        def done(row: Any) -> None:
            completion = self._completion(row)
            results[row.index] = completion
            METER.finished(1, completion.completion_tokens)
            if grammar is not None:
                self._guided["guided_completions"] += 1
            if on_result is not None:
                on_result(row.index, completion)

        try:
            loop.run(rows, capacity, done, admit)
        finally:
            unfinished = admitted - sum(1 for r in rows if r.index in results)
            if unfinished:
                METER.finished(unfinished)
            if grammar is not None:
                self._guided["guided_refused_tokens"] += grammar.refused

    def _completion(self, row: Any) -> Completion:
        text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        finish = row.finish
        for stop in self.config.sampling.stop:
            if stop in text:
                text, finish = text[: text.index(stop)], "stop"
        logprobs = from_steps(row.tokens, row.steps, self._piece) if row.top else None
        return Completion(
            text.strip(), len(row.prompt_ids), len(row.tokens), finish, logprobs=logprobs
        )

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
