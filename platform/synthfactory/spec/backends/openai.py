"""Any OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp's server, Ollama, a hosted
API): requests go over HTTP, concurrently from each actor; the API key is read from an
environment variable on the workers and never written into a spec."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from synthfactory.spec.backends import BACKENDS
from synthfactory.spec.base import Frozen


class TokenPrices(Frozen):
    """Prices of a hosted API, for the `cost_usd` stat."""

    prompt: float = Field(0.0, ge=0, description="USD per million prompt tokens.")
    completion: float = Field(0.0, ge=0, description="USD per million completion tokens.")


@BACKENDS.register("synthfactory_workers.text.openai_backend:OpenAIBackend")
class OpenAIBackendConfig(Frozen):
    """Requests go to an OpenAI-compatible HTTP server, concurrently from each actor."""

    RUN_SETTINGS: ClassVar[tuple[str, ...]] = (
        "api_key_env",
        "max_concurrency",
        "connect_timeout_seconds",
        "request_timeout_seconds",
        "max_retries",
        "max_error_rate",
        "price_per_million_tokens",
        "journal",
    )
    """How requests are sent and paid for, not what they ask: left out of the spec's content hash,
    so changing them resumes the same version."""

    kind: Literal["openai"] = Field("openai", description="Backend kind.")
    base_url: str = Field(
        description="The API root, ending in /v1 (e.g. http://vllm:8000/v1).",
        min_length=1,
    )
    api: Literal["chat", "completions"] = Field(
        "chat",
        description="chat: /chat/completions with the messages; completions: /completions "
        "with the messages joined into one prompt.",
    )
    model: str | None = Field(
        None, description="The served model name; default the generator's `model`."
    )
    api_key_env: str | None = Field(
        None,
        description="NAME of the environment variable holding the API key (sent as a Bearer "
        "token). The key itself never belongs in a spec.",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
    )
    max_concurrency: int = Field(
        16, ge=1, le=1024, description="Requests in flight per actor (the AIMD ceiling)."
    )
    connect_timeout_seconds: float = Field(5.0, gt=0, le=300, description="TCP connect timeout.")
    request_timeout_seconds: float = Field(
        120.0, gt=0, le=3600, description="Timeout for one response."
    )
    max_retries: int = Field(
        6,
        ge=0,
        le=50,
        description="Retries of one request after 429/5xx/timeouts/dropped connections "
        "(exponential backoff with jitter, honouring Retry-After).",
    )
    max_error_rate: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Fraction of a shard's requests that may still fail after retries (they "
        "become rejected rows) before the shard fails.",
    )
    price_per_million_tokens: TokenPrices | None = Field(
        None, description="Prices for the `cost_usd` stat; none: no cost is reported."
    )
    structured_output: Literal["auto", "response_format", "none"] = Field(
        "auto",
        description="With a json_schema: auto sends response_format (json_schema, strict) on "
        "the chat API and asks for the schema in the prompt on the completions API (stat "
        "response_format_fallback); response_format sends it on either API; none never sends "
        "it (the completions are still validated and retried). A server that refuses "
        "response_format (a 4xx naming it) gets the schema in the prompt instead, validated "
        "and retried; the stats count response_format_refused and response_format_fallback.",
    )
    journal: bool = Field(
        True,
        description="Keep a per-shard journal of completions on the dataset's storage, so a "
        "retried shard or resumed job never pays for a request twice.",
    )

    @field_validator("base_url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, not {url!r}")
        return url.rstrip("/")
