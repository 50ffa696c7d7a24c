"""A shard's requests: sent through the request journal (answers an earlier attempt at the
shard received are reused, never paid for again), failures counted against the backend's
``max_error_rate``, and the shard's counters (``new_stats``, ``cost_usd``,
``add_backend_stats``), the same for every text job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synthfactory_workers.journal import Journal, shard_prefix
from synthfactory_workers.text.backend import Completion, Request, TextBackend

if TYPE_CHECKING:
    from synthfactory_workers.contract import ShardTask


def new_stats(journaled: bool, *extra: str) -> dict[str, float]:
    """A shard's counters, all at zero (``journal_hits`` where a journal is kept)."""
    names = ("prompt_tokens", "completion_tokens", "attempts", "requests_failed", *extra)
    stats = dict.fromkeys(names, 0.0)
    if journaled:
        stats["journal_hits"] = 0.0
    return stats


def cost_usd(engine: Any, prompt_tokens: float, completion_tokens: float) -> float | None:
    """What these tokens cost at the engine's ``price_per_million_tokens`` (None: no price)."""
    prices = getattr(engine, "price_per_million_tokens", None)
    if prices is None:
        return None
    return (prompt_tokens * prices.prompt + completion_tokens * prices.completion) / 1e6


def add_backend_stats(stats: dict[str, float], backends: list[TextBackend]) -> None:
    """The backends' own counters of the shard (retries, backoff) into its stats."""
    for backend in backends:
        for key, value in backend.take_stats().items():
            if key != "requests_failed":
                stats[key] = stats.get(key, 0.0) + value


def _from_record(record: dict[str, Any]) -> Completion:
    from synthfactory_workers.text.logprobs import from_record

    return Completion(
        str(record["text"]),
        int(record["prompt_tokens"]),
        int(record["completion_tokens"]),
        str(record["finish_reason"]),
        logprobs=from_record(record.get("logprobs")),
    )


def _record(completion: Completion) -> dict[str, Any]:
    from synthfactory_workers.text.logprobs import to_record

    record: dict[str, Any] = {
        "text": completion.text,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "finish_reason": completion.finish_reason,
    }
    if completion.logprobs is not None:  # a judge's, kept where it reads scores
        record["logprobs"] = to_record(completion.logprobs)
    return record


class Requests:
    """The journaled sends of one generator, shard by shard (``open`` ... ``close``)."""

    def __init__(self, batch_size: int, journaled: bool) -> None:
        self.batch_size = batch_size
        self.journaled = journaled
        self.journal: Journal | None = None
        self.answered: dict[str, dict[str, Any]] = {}
        self.first_failure = ""

    def open(self, store: Any, shard: ShardTask) -> None:
        """What earlier attempts at this shard already received (their answers are reused,
        never requested again), and a journal for what this attempt receives."""
        if store is None or not self.journaled:
            return
        self.journal = Journal(store.child(shard_prefix(shard.index)))
        self.answered = self.journal.load()

    def close(self) -> None:
        if self.journal is not None:
            self.journal.flush()
        self.journal, self.answered, self.first_failure = None, {}, ""

    def failed(self, error: str) -> None:
        """Remember the first real failure (one not merely left unsent) for the error."""
        if not self.first_failure or self.first_failure.startswith("not sent"):
            self.first_failure = error

    def send(
        self, requests: list[Request], stats: dict[str, float], backend: TextBackend
    ) -> list[Completion]:
        """Completions for these requests: from the journal when an earlier attempt
        received them, from ``backend`` otherwise, journaled as they arrive."""
        journal = self.journal
        keys = backend.request_keys(requests) if journal is not None else []
        out: list[Completion | None] = [None] * len(requests)
        for n, key in enumerate(keys):
            record = self.answered.get(key)
            if record is not None:
                out[n] = _from_record(record)
        todo = [n for n, c in enumerate(out) if c is None]
        if journal is not None:
            stats["journal_hits"] += len(requests) - len(todo)

        def received(k: int, completion: Completion) -> None:
            if journal is None or completion.error is not None:
                return
            record = _record(completion)
            self.answered[keys[todo[k]]] = record
            journal.append(keys[todo[k]], record)

        if todo:
            allowed = backend.max_error_rate * (stats["attempts"] + len(requests))
            fresh = backend.generate(
                [requests[n] for n in todo],
                self.batch_size,
                on_result=received,
                max_failures=max(0, int(allowed) - int(stats["requests_failed"])),
            )
            for n, completion in zip(todo, fresh, strict=True):
                out[n] = completion
        return [c for c in out if c is not None]

    def check_failures(
        self, shard: ShardTask, stats: dict[str, float], backend: TextBackend
    ) -> None:
        """A RequestsFailedError once more of the shard's requests failed than the
        backend's ``max_error_rate`` allows."""
        failed, sent = stats["requests_failed"], stats["attempts"]
        if failed and failed > backend.max_error_rate * sent:
            from synthfactory_workers.text.openai_backend import RequestsFailedError

            first = self.first_failure or "unknown error"
            raise RequestsFailedError(
                f"shard {shard.index}: {failed:.0f} of {sent:.0f} requests failed after their "
                f"retries (max_error_rate {backend.max_error_rate:g}); first: {first}",
                fix="check the server (its logs, rate limits, the model name); the answers "
                "already received are journaled, so a re-run sends only the rest",
            )
