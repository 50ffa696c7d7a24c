"""The openai backend: any OpenAI-compatible server (vLLM, SGLang, a hosted API).

Inside an actor, one shard's requests run concurrently on one asyncio loop with an
``httpx.AsyncClient`` (no thread per request). The number in flight adapts (AIMD): it
starts at ``max_concurrency``, halves on 429/503 (once per congestion window) while every
request waits out a ``Retry-After``, and climbs back by one per window of successes.
Transient failures (dropped or refused connections, timeouts, 5xx) retry with exponential
backoff and jitter up to ``max_retries``; a request that still fails comes back as a failed
Completion (a rejected row), and once more than the allowed share of a shard's requests
failed the rest are not sent and the shard fails.

The API key is read from ``os.environ[api_key_env]`` in the actor when the backend loads;
it is sent as a Bearer token and kept out of every request body, log line and stat.
Backoff events are logged (logger ``synthfactory.openai``, WARNING) and counted in the
shard's stats (``http_429``, ``http_retries``, ``backoff_seconds``, ...), which the flow
sums into the progress and the manifest (actor logs do not reach Prefect's log).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError, GenerationError
from synthfactory_workers.stopping import NOT_SENT, stopping
from synthfactory_workers.telemetry import METER
from synthfactory_workers.text.backend import Completion, OnResult, Request, TextBackend
from synthfactory_workers.text.grammar import refuses_response_format, schema_key, with_schema_note
from synthfactory_workers.text.logprobs import from_openai, openai_fields
from synthfactory_workers.text.throttle import (
    AIMD,
    RETRY_AFTER_CAP_SECONDS,
    Gate,
    parse_retry_after,
)

if TYPE_CHECKING:
    from synthfactory.spec.backends.openai import OpenAIBackendConfig
    from synthfactory.spec.generators.text import LLMConfig

log = logging.getLogger("synthfactory.openai")

OVERLOAD = {429, 503}
RETRYABLE = {408, 409, 425, 500, 502, 504}
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0
COUNTERS = (
    "http_requests",
    "http_429",
    "http_503",
    "http_5xx",
    "http_4xx",
    "http_connection_errors",
    "http_timeouts",
    "http_retries",
    "backoff_seconds",
    "concurrency_decreases",
    "requests_failed",
    "response_format_refused",
    "response_format_fallback",
)


class RequestsFailedError(GenerationError):
    """Too many of a shard's requests failed after their retries. Transient: a retry of
    the shard sends only the requests its journal has no answer for."""

    transient = True


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: half to all of base * 2**attempt, capped."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
    return ceiling * (rng or random).uniform(0.5, 1.0)


@dataclass
class _Run:
    """One generate() call: failure budget and counters."""

    max_failures: int | None
    stats: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0.0))
    failed: int = 0
    aborted: bool = False
    first_error: str = ""


class OpenAIBackend(TextBackend):
    def __init__(self, config: LLMConfig, device_hint: str = "cpu") -> None:
        from synthfactory.spec.backends.openai import OpenAIBackendConfig

        assert isinstance(config.backend, OpenAIBackendConfig)
        self.config = config
        self.options: OpenAIBackendConfig = config.backend
        self.model_id = config.served_model
        self.revision = config.revision or "served"
        self.max_error_rate = self.options.max_error_rate
        self.aimd = AIMD(self.options.max_concurrency)
        self._api_key: str | None = None
        self._stats: dict[str, float] = dict.fromkeys(COUNTERS, 0.0)
        self._rng = random.Random()
        self._refused: set[str] = set()
        """Schemas (by key) whose response_format this server refused: sent without it."""

    # -- setup -----------------------------------------------------------------------------

    def load(self) -> None:
        import httpx  # noqa: F401  (fail here, not mid-shard, if it is missing)

        self._api_key = api_key(self.options)

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    # -- request bodies --------------------------------------------------------------------

    @property
    def path(self) -> str:
        return "/chat/completions" if self.options.api == "chat" else "/completions"

    def response_format(self) -> dict[str, Any] | None:
        schema = self.config.json_schema
        if schema is None or self.options.structured_output == "none" or self.schema_in_prompt():
            return None
        name = str(schema.get("title") or "row")
        name = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:64] or "row"
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        }

    def request_body(self, request: Request) -> dict[str, Any]:
        """The exact JSON sent (and the journal's key): model, messages, sampling, seed."""
        s = self.config.sampling
        body: dict[str, Any] = {"model": self.model_id}
        messages = request.messages
        if self.schema_in_prompt():  # the fallback: the schema asked for in the prompt
            messages = with_schema_note(messages, self.config.json_schema or {})
        if self.options.api == "chat":
            body["messages"] = messages
        else:
            body["prompt"] = "\n\n".join(m["content"] for m in messages)
        body["max_tokens"] = s.max_new_tokens
        body["seed"] = request.seed & (2**63 - 1)
        if s.greedy:
            body["temperature"] = 0.0
        else:
            body["temperature"] = s.temperature
            body["top_p"] = s.top_p
            if s.top_k:
                body["top_k"] = s.top_k  # an extra field vLLM and SGLang accept
        if s.repetition_penalty != 1.0:
            body["repetition_penalty"] = s.repetition_penalty  # extra field (vLLM)
        if s.stop:
            body["stop"] = list(s.stop)
        response_format = self.response_format()
        if response_format is not None:
            body["response_format"] = response_format
        if request.top_logprobs:  # a judge scoring from probabilities
            body.update(openai_fields(self.options.api, request.top_logprobs))
        return body

    def schema_in_prompt(self) -> bool:
        """Whether the schema is asked for in words (validated + retried) instead of sent as
        ``response_format``: the server refused it, or ``auto`` on the completions API
        (which has no response_format)."""
        if self.config.json_schema is None:
            return False
        return schema_in_words(self.options) or self._schema_refused()

    def _schema_refused(self) -> bool:
        schema = self.config.json_schema
        return schema is not None and schema_key(schema) in self._refused

    # -- generation ------------------------------------------------------------------------

    def take_stats(self) -> dict[str, float]:
        stats, self._stats = self._stats, dict.fromkeys(COUNTERS, 0.0)
        return {k: v for k, v in stats.items() if v}

    def complete(
        self,
        requests: list[Request],
        batch_size: int,
        on_result: OnResult | None,
        max_failures: int | None,
    ) -> list[Completion]:
        run = _Run(max_failures)
        try:
            return asyncio.run(self._generate(requests, on_result, run))
        finally:
            for key, value in run.stats.items():
                self._stats[key] = self._stats.get(key, 0.0) + value

    async def _generate(
        self, requests: list[Request], on_result: OnResult | None, run: _Run
    ) -> list[Completion]:
        import httpx

        o = self.options
        timeout = httpx.Timeout(o.request_timeout_seconds, connect=o.connect_timeout_seconds)
        limits = httpx.Limits(
            max_connections=o.max_concurrency, max_keepalive_connections=o.max_concurrency
        )
        gate = Gate(self.aimd)
        async with httpx.AsyncClient(
            base_url=o.base_url, timeout=timeout, limits=limits, headers=self.headers()
        ) as client:

            async def one(index: int, request: Request) -> Completion:
                completion = await self._one(client, gate, request, run)
                METER.finished(0, completion.completion_tokens)
                if completion.error is not None:
                    run.failed += 1
                    run.stats["requests_failed"] += 1
                    run.first_error = run.first_error or completion.error
                    if run.max_failures is not None and run.failed > run.max_failures:
                        run.aborted = True
                if on_result is not None:
                    on_result(index, completion)
                return completion

            return list(await asyncio.gather(*(one(i, r) for i, r in enumerate(requests))))

    async def _one(self, client: Any, gate: Gate, request: Request, run: _Run) -> Completion:
        body = self.request_body(request)
        attempt = 0
        if self.schema_in_prompt():
            run.stats["response_format_fallback"] += 1
        while True:
            if run.aborted:
                return failed(f"not sent: too many failures in this shard ({run.first_error})")
            if stopping():
                return failed(NOT_SENT)
            epoch = await gate.acquire()
            if run.aborted or stopping():
                await gate.release()
                continue
            try:
                outcome = await self._post(client, body, run, epoch)
            finally:
                await gate.release()
            if isinstance(outcome, Completion):
                return outcome
            if outcome is None:  # response_format refused: prompt + validate + retry instead
                body = self.request_body(request)
                run.stats["response_format_fallback"] += 1
                continue
            reason, retry_after = outcome
            if attempt >= self.options.max_retries or run.aborted:
                return failed(f"{reason} (after {attempt + 1} tries)")
            await self._back_off(attempt, reason, retry_after, run)
            attempt += 1

    async def _post(
        self, client: Any, body: dict[str, Any], run: _Run, epoch: int
    ) -> Completion | tuple[str, float | None] | None:
        """One HTTP try: the completion (or a final failure), (why to retry, the server's
        Retry-After), or None when the server refused response_format."""
        import httpx

        try:
            run.stats["http_requests"] += 1
            response = await client.post(self.path, json=body)
        except httpx.TimeoutException as exc:
            run.stats["http_timeouts"] += 1
            return f"timeout ({type(exc).__name__})", None
        except httpx.TransportError as exc:
            run.stats["http_connection_errors"] += 1
            return f"connection error ({type(exc).__name__}: {exc})", None
        return self._answer(response, body, run, epoch)

    def _answer(
        self, response: Any, body: dict[str, Any], run: _Run, epoch: int
    ) -> Completion | tuple[str, float | None] | None:
        """What an HTTP response means (see ``_post``); overloads lower the concurrency."""
        status = response.status_code
        if status == 200:
            try:
                completion = self._parse(response.json())
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                return f"unreadable response ({type(exc).__name__}: {exc})", None
            self.aimd.on_success()
            return completion
        if status in OVERLOAD:
            run.stats[f"http_{status}"] += 1
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if self.aimd.on_overload(epoch, retry_after, time.monotonic()):
                run.stats["concurrency_decreases"] += 1
                log.warning(
                    "HTTP %d from %s: concurrency down to %d%s",
                    status,
                    self.options.base_url,
                    self.aimd.limit,
                    f", pausing {retry_after:.1f} s (Retry-After)" if retry_after else "",
                )
            return f"http {status}: {snippet(response)}", retry_after
        if status in RETRYABLE or status >= 500:
            run.stats["http_5xx" if status >= 500 else "http_4xx"] += 1
            return f"http {status}: {snippet(response)}", None
        if "response_format" in body and refuses_response_format(status, response.text):
            run.stats["response_format_refused"] += 1
            log.warning("%s refused response_format: %s", self.options.base_url, snippet(response))
            self._refused.add(schema_key(self.config.json_schema or {}))
            return None
        run.stats["http_4xx"] += 1
        return failed(f"http {status}: {snippet(response)}")

    async def _back_off(
        self, attempt: int, reason: str, retry_after: float | None, run: _Run
    ) -> None:
        """Wait before retry ``attempt + 1``: exponential with jitter, at least the server's
        Retry-After (capped)."""
        delay = backoff_delay(attempt, self._rng)
        if retry_after is not None:
            delay = max(delay, min(retry_after, RETRY_AFTER_CAP_SECONDS))
        run.stats["http_retries"] += 1
        run.stats["backoff_seconds"] += delay
        log.warning(
            "request to %s failed (%s); retry %d/%d in %.2f s",
            self.options.base_url,
            reason,
            attempt + 1,
            self.options.max_retries,
            delay,
        )
        await asyncio.sleep(delay)

    def _parse(self, payload: dict[str, Any]) -> Completion:
        choice = payload["choices"][0]
        if self.options.api == "chat":
            text = choice["message"].get("content") or ""
        else:
            text = choice.get("text") or ""
        usage = payload.get("usage") or {}
        finish = choice.get("finish_reason") or "stop"
        return Completion(
            text=str(text).strip(),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason="length" if finish == "length" else str(finish),
            logprobs=from_openai(choice.get("logprobs")),
        )


def failed(reason: str) -> Completion:
    return Completion("", 0, 0, "error", error=reason)


def snippet(response: Any, limit: int = 200) -> str:
    """The start of an error body (servers explain 4xx there), on one line."""
    try:
        text = response.text
    except Exception:  # a body that cannot be decoded says nothing useful
        return ""
    return " ".join(str(text).split())[:limit]


def schema_in_words(options: OpenAIBackendConfig) -> bool:
    """Whether a schema is asked for in the prompt from the start (``structured_output:
    auto`` on the completions API, which has no response_format), not only after a refusal."""
    return options.structured_output == "auto" and options.api != "chat"


def api_key(options: OpenAIBackendConfig) -> str | None:
    """The key from the variable the spec names; a named but unset variable is an error."""
    if not options.api_key_env:
        return None
    value = os.environ.get(options.api_key_env)
    if not value:
        raise ConfigError(
            f"the API key variable {options.api_key_env} is not set",
            fix=f"export {options.api_key_env}=... where the job runs (and on the workers)",
        )
    return value


def check_server(config: LLMConfig) -> None:
    """Preflight in the driver: the key variable is set, the server answers GET /models
    within the connect timeout, and it serves the model the requests name."""
    import httpx

    from synthfactory.spec.backends.openai import OpenAIBackendConfig

    options = config.backend
    assert isinstance(options, OpenAIBackendConfig)
    key = api_key(options)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    connect = min(options.connect_timeout_seconds, 5.0)
    timeout = httpx.Timeout(10.0, connect=connect)
    url = f"{options.base_url}/models"
    try:
        response = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        raise ConfigError(
            f"the openai backend's server at {options.base_url} did not answer within "
            f"{connect:.0f} s",
            fix="check backend.base_url and that the server is up and reachable from here",
        ) from None
    except httpx.TransportError as exc:
        raise ConfigError(
            f"cannot reach the openai backend's server at {options.base_url}: "
            f"{type(exc).__name__}: {exc}",
            fix="check backend.base_url (it ends in /v1) and that the server is running",
        ) from None
    if response.status_code in (401, 403):
        raise ConfigError(
            f"{options.base_url} refused the API key (HTTP {response.status_code})",
            fix=f"check the key in {options.api_key_env or 'backend.api_key_env'}",
        )
    if response.status_code != 200:
        raise ConfigError(
            f"GET {url} answered HTTP {response.status_code}: {snippet(response)}",
            fix="check backend.base_url points at an OpenAI-compatible API root (.../v1)",
        )
    try:
        served = [str(m["id"]) for m in response.json()["data"]]
    except (ValueError, KeyError, TypeError):
        return
    name = config.served_model
    if served and name not in served:
        raise ConfigError(
            f"{options.base_url} does not serve model {name!r}; it serves: "
            + ", ".join(served[:20]),
            fix="set backend.model (or generator.model) to one of the served names",
        )


__all__ = [
    "AIMD",
    "OpenAIBackend",
    "RequestsFailedError",
    "backoff_delay",
    "check_server",
    "parse_retry_after",
]
