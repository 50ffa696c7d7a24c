"""Fixtures for the text tests: a real vLLM server (OpenAI-compatible) on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .fault_proxy import FaultProxy
from .servers import VLLM_PYTHON, start_vllm


@pytest.fixture(scope="session")
def vllm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The /v1 root of a vLLM server serving SmolLM2 as 'smollm2' (session-wide: it takes
    about a minute to start). SYNTHFACTORY_TEST_OPENAI_URL reuses a server already up."""
    given = os.environ.get("SYNTHFACTORY_TEST_OPENAI_URL")
    if given:
        yield given.rstrip("/")
        return
    if not VLLM_PYTHON.exists():
        pytest.skip(
            f"no vLLM environment at {VLLM_PYTHON.parent.parent}: run bash scripts/install_vllm.sh"
        )
    server = start_vllm(tmp_path_factory.mktemp("vllm"))
    yield server.base_url
    server.stop()


@pytest.fixture
def stub() -> Iterator[FaultProxy]:
    """The stub OpenAI-compatible server (no upstream)."""
    proxy = FaultProxy(upstream=None)
    yield proxy
    proxy.stop()


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries back off for milliseconds (``pytestmark = usefixtures("fast_backoff")``)."""
    from synthfactory_workers.text import openai_backend

    monkeypatch.setattr(openai_backend, "BACKOFF_BASE_SECONDS", 0.02)
