"""Constrained (guided) decoding for the transformers backend, with xgrammar.

A JSON Schema becomes a grammar over the model's tokens, compiled once per schema per actor
(``Grammars``, keyed by the schema's hash). In the decode loop (``decode_loop.py``) a
``RowGrammar`` keeps one ``GrammarMatcher`` per row: each step it fills the batch's token
bitmask in one call, sets the logits of forbidden tokens to -inf in place (xgrammar's CPU
kernel on CPU) and feeds every live row the token it chose. The mask comes before the
row's own sampler, so each row still samples with its own seed, among allowed tokens
only: a small model cannot write invalid JSON, a score outside the rubric, or a string longer
than its ``maxLength``. The JSON is written compactly (no free whitespace), so a model cannot
spend its token budget on blank lines; a completion can still be cut by ``max_new_tokens``.

xgrammar is imported inside the actor only (``Grammars.__init__``); ``xgrammar_missing``
lets preflight say how to install it without importing it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError

if TYPE_CHECKING:
    from synthfactory.spec.generators.text import LLMConfig

XGRAMMAR = "xgrammar==0.2.8"
INSTALL = f'pip install "apache-tvm-ffi>=0.1.11"; pip install --no-deps "{XGRAMMAR}"'
"""--no-deps: xgrammar declares triton (286 MB) on Linux, used only by its CUDA kernel."""


def guided(config: LLMConfig) -> bool:
    """Whether the transformers backend constrains decoding (its ``guided_decoding``)."""
    return bool(getattr(config.backend, "guided_decoding", False))


def uses_schema(config: LLMConfig) -> bool:
    """Whether any completion of this job is asked for against a JSON Schema: the one-prompt
    ``json_schema``, or an LLM column other than ``llm_text`` (structured output, judges)."""
    if config.json_schema is not None:
        return True
    return any(c.structured for c in config.llm_columns)


def xgrammar_missing() -> bool:
    return importlib.util.find_spec("xgrammar") is None


def check_guided(config: LLMConfig) -> dict[str, str]:
    """Preflight: xgrammar is installed where a schema will be enforced; the fact that joins
    the content hash (constrained completions differ from free ones)."""
    if not (guided(config) and uses_schema(config)):
        return {}
    if xgrammar_missing():
        raise ConfigError(
            "generator.backend.guided_decoding: the transformers backend constrains JSON "
            "output with xgrammar, which is not installed",
            fix=f"{INSTALL} (scripts/install.sh does), or set backend: {{kind: transformers, "
            "guided_decoding: false}} to generate freely and validate + retry",
        )
    return {"guided_decoding": XGRAMMAR}


def schema_key(schema: dict[str, Any]) -> str:
    blob = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class Grammars:
    """Compiled grammars of one model's tokenizer, one per schema (compiled on first use)."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_ids: list[int]) -> None:
        try:
            import xgrammar as xgr
        except ImportError:
            raise ConfigError(
                "generator.backend.guided_decoding: xgrammar is not installed on this worker",
                fix=f"{INSTALL}, or set guided_decoding: false",
            ) from None
        info = xgr.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab_size, stop_token_ids=stop_ids
        )
        self.vocab_size = vocab_size
        self.compiler = xgr.GrammarCompiler(info, max_threads=1)
        self.compiled: dict[str, Any] = {}
        self.compiles = 0

    def get(self, schema: dict[str, Any]) -> Any:
        key = schema_key(schema)
        grammar = self.compiled.get(key)
        if grammar is None:
            try:
                grammar = self.compiler.compile_json_schema(
                    json.dumps(schema), any_whitespace=False, strict_mode=True
                )
            except (RuntimeError, ValueError) as exc:  # xgrammar's errors for a schema
                raise ConfigError(
                    f"generator.backend.guided_decoding: xgrammar cannot turn the JSON Schema "
                    f"{json.dumps(schema)[:200]} into a grammar: {exc}",
                    fix="simplify the schema (the column's json_schema or generator.json_schema)"
                    ", or set guided_decoding: false to generate freely and validate + retry",
                ) from None
            self.compiled[key] = grammar
            self.compiles += 1
        return grammar

    def for_rows(self, schema: dict[str, Any], capacity: int) -> RowGrammar:
        return RowGrammar(self.get(schema), capacity, self.vocab_size)


def mask_backend(device_type: str) -> str:
    """xgrammar's kernel for logits on this device (its triton kernel only if triton is
    there; torch ops otherwise)."""
    if device_type == "cpu":
        return "cpu"
    if device_type == "cuda" and importlib.util.find_spec("triton") is not None:
        return "triton"
    return "torch_native"


class RowGrammar:
    """One schema's grammar in a decode loop: a ``GrammarMatcher`` per row and one batched
    token bitmask for up to ``capacity`` rows.

    A row whose matcher has terminated (it took the end-of-sequence token) is not masked.
    ``refused`` counts tokens a matcher did not accept (none when the mask was applied;
    kept as a stat, and that row is freed rather than failed)."""

    def __init__(self, compiled: Any, capacity: int, vocab_size: int) -> None:
        import xgrammar as xgr

        self.xgr = xgr
        self.compiled = compiled
        self.bitmask = xgr.allocate_token_bitmask(capacity, vocab_size)
        self.batcher = xgr.BatchGrammarMatcher(max_threads=1)
        self.vocab_size = vocab_size
        self.refused = 0

    def matcher(self) -> Any:
        return self.xgr.GrammarMatcher(self.compiled)

    @staticmethod
    def _live(matchers: list[Any]) -> list[int]:
        return [i for i, m in enumerate(matchers) if m is not None and not m.is_terminated()]

    def mask(self, logits: Any, matchers: list[Any]) -> None:
        """Set the logits of tokens each row's grammar forbids to -inf, in place (row i of
        ``logits`` is ``matchers[i]``'s; None: not masked)."""
        xgr = self.xgr
        rows = self._live(matchers)
        if not rows:
            return
        bitmask = self.bitmask[: len(matchers)]
        xgr.reset_token_bitmask(bitmask)
        self.batcher.batch_fill_next_token_bitmask(
            [matchers[i] for i in rows], bitmask, indices=rows
        )
        xgr.apply_token_bitmask_inplace(
            logits,
            bitmask.to(logits.device, non_blocking=True),
            vocab_size=min(self.vocab_size, logits.shape[-1]),
            indices=rows,
            backend=mask_backend(logits.device.type),
        )

    def accept(self, matchers: list[Any], tokens: list[int]) -> list[int]:
        """Feed each live row its chosen token; the rows whose matcher refused it."""
        rows = self._live(matchers)
        if not rows:
            return []
        accepted = self.xgr.BatchGrammarMatcher.batch_accept_token(
            [matchers[i] for i in rows], [int(tokens[i]) for i in rows]
        )
        refused = [i for i, ok in zip(rows, accepted, strict=True) if not ok]
        self.refused += len(refused)
        return refused


# -- servers that refuse structured output (the openai backend's fallback) ------------------

NOT_REFUSALS = {401, 403, 404, 408, 409, 425, 429}
"""4xx answers that are about the key, the model or the load, never about the schema."""


def refuses_response_format(status: int, body: str) -> bool:
    """Whether an HTTP answer refuses the request's ``response_format`` (a 4xx whose error
    names it, or its json_schema): the request is sent again without it."""
    if not 400 <= status < 500 or status in NOT_REFUSALS:
        return False
    lowered = body.lower()
    return "response_format" in lowered or "json_schema" in lowered


def with_schema_note(
    messages: list[dict[str, str]], schema: dict[str, Any]
) -> list[dict[str, str]]:
    """The messages with the schema asked for in words, at the end of the last one (what a
    server that refused ``response_format`` gets; the reply is validated and retried)."""
    note = "Reply with JSON only, valid against this JSON Schema:\n" + json.dumps(schema)
    if not messages:
        return [{"role": "user", "content": note}]
    last = messages[-1]
    return [*messages[:-1], {**last, "content": f"{last['content']}\n\n{note}"}]
