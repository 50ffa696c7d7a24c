"""A scriptable fault-injecting HTTP proxy for OpenAI-compatible servers (stdlib asyncio).

Between the backend and a real server it can answer 429 with a Retry-After, 5xx, respond
slowly or drop the connection, and it counts the requests that reached the server by the
sha256 of their body. With ``upstream=None`` it is its own tiny server speaking the OpenAI
chat/completions format (deterministic text from the seed), for fast tests without vLLM.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Action:
    kind: str = "ok"  # ok | status | drop | slow
    status: int = 200
    retry_after: str | None = None
    delay: float = 0.0


OK = Action()


def status(code: int, retry_after: str | None = None) -> Action:
    return Action("status", code, retry_after)


def drop() -> Action:
    return Action("drop")


def slow(seconds: float) -> Action:
    return Action("slow", delay=seconds)


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class FaultProxy:
    """``base_url`` ends in /v1. Script with ``plan(...)`` (actions for the next completion
    requests, in order) and ``fail_after(n, action)`` (every request once n were let
    through to the server). ``forwarded`` counts, per body hash, the completion requests
    that got to the server and were answered."""

    def __init__(self, upstream: str | None = None, vary: bool = False) -> None:
        self.upstream = upstream.rstrip("/") if upstream else None
        self.vary = vary
        """Stub mode: every answer differs (a server sampling without a seed), so two
        writers of one shard would write different bytes."""
        self.forwarded: collections.Counter[str] = collections.Counter()
        self.bodies: dict[str, dict[str, Any]] = {}
        self.received = 0
        self.admitted = 0
        self.faults: collections.Counter[str] = collections.Counter()
        self.authorizations: set[str] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        self.refuse_response_format = False
        """Answer 400 naming response_format to any request that carries one (a server
        without structured output)."""
        self._plan: collections.deque[Action] = collections.deque()
        self._fail_after: tuple[int, Action] | None = None
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    # -- scripting -------------------------------------------------------------------------

    def plan(self, *actions: Action) -> None:
        with self._lock:
            self._plan.extend(actions)

    def fail_after(self, n: int | None, action: Action = Action("drop")) -> None:
        with self._lock:
            self._fail_after = None if n is None else (n, action)

    def reset_faults(self) -> None:
        with self._lock:
            self._plan.clear()
            self._fail_after = None
            self.admitted = 0

    @property
    def total_forwarded(self) -> int:
        return sum(self.forwarded.values())

    def _next_action(self) -> Action:
        with self._lock:
            if self._fail_after is not None and self.admitted >= self._fail_after[0]:
                return self._fail_after[1]
            action = self._plan.popleft() if self._plan else OK
            if action.kind in ("ok", "slow"):
                self.admitted += 1  # on its way to the server
            return action

    # -- server ----------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            if self.upstream:
                import httpx

                self._client = httpx.AsyncClient(
                    timeout=httpx.Timeout(600.0),
                    limits=httpx.Limits(max_connections=256, max_keepalive_connections=256),
                )
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            if self.upstream:
                await self._client.aclose()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = h.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                if "authorization" in headers:
                    self.authorizations.add(headers["authorization"])
                keep = await self._handle(method, path, headers, body, writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()

    async def _handle(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        completion = method == "POST" and path.endswith(("/chat/completions", "/completions"))
        if not completion:
            code, payload, extra = await self._forward(method, path, headers, body)
            await self._respond(writer, code, payload, extra)
            return True
        self.received += 1
        if self.refuse_response_format and b'"response_format"' in body:
            self.faults["response_format"] += 1
            error = {"message": "response_format is not supported by this server"}
            await self._respond(writer, 400, json.dumps({"error": error}).encode(), {})
            return True
        action = self._next_action()
        if action.kind == "drop":
            self.faults["drop"] += 1
            return False  # close without an answer
        if action.kind == "status":
            self.faults[str(action.status)] += 1
            extra = {"Retry-After": action.retry_after} if action.retry_after else {}
            message = json.dumps({"error": {"message": f"injected {action.status}"}}).encode()
            await self._respond(writer, action.status, message, extra)
            return True
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if action.kind == "slow":
                self.faults["slow"] += 1
                await asyncio.sleep(action.delay)
            code, payload, extra = await self._forward(method, path, headers, body)
        finally:
            self.in_flight -= 1
        if code == 200:
            key = body_hash(body)
            with self._lock:
                self.forwarded[key] += 1
                self.bodies[key] = json.loads(body)
        try:
            await self._respond(writer, code, payload, extra)
        except ConnectionError:
            return False
        return True

    async def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        if not self.upstream:
            return stub_answer(method, path, body, self.received if self.vary else None)
        target = self.upstream.removesuffix("/v1") + path
        keep = {k: v for k, v in headers.items() if k in ("content-type", "authorization")}
        response = await self._client.request(method, target, headers=keep, content=body)
        return response.status_code, response.content, {}

    async def _respond(
        self, writer: asyncio.StreamWriter, code: int, payload: bytes, extra: dict[str, str]
    ) -> None:
        head = [f"HTTP/1.1 {code} X", "Content-Type: application/json"]
        head += [f"Content-Length: {len(payload)}", "Connection: keep-alive"]
        head += [f"{k}: {v}" for k, v in extra.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        await writer.drain()


STUB_MODEL = "stub-model"


def stub_answer(
    method: str, path: str, body: bytes, nonce: int | None = None
) -> tuple[int, bytes, dict[str, str]]:
    """A minimal OpenAI-compatible answer: the model list, or a completion whose text is
    derived from the request's seed and last message (same request -> same text, unless
    a ``nonce`` is given: then it is part of the text)."""
    if method == "GET" and path == "/v1/models":
        data = {"object": "list", "data": [{"id": STUB_MODEL, "object": "model"}]}
        return 200, json.dumps(data).encode(), {}
    if method != "POST" or path not in ("/v1/chat/completions", "/v1/completions"):
        return 404, b'{"error": {"message": "not found"}}', {}
    request = json.loads(body or b"{}")
    if request.get("model") != STUB_MODEL:
        return 404, b'{"error": {"message": "model not found"}}', {}
    if "messages" in request:
        prompt = request["messages"][-1]["content"]
    else:
        prompt = request.get("prompt", "")
    seed = int(request.get("seed", 0))
    judged = stub_judgement(prompt, seed) if request.get("logprobs") else None
    if judged is not None:
        text = judged
    # a schema asked for in the prompt (no response_format) is followed for even seeds only
    elif "response_format" in request or ("JSON Schema" in prompt and seed % 2 == 0):
        text = json.dumps({"name": f"item {seed % 997}", "n": seed % 10})
    else:
        text = f"Answer {seed % 100_003} to: {prompt}"
        if nonce is not None:
            text += f" (#{nonce})"
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
    if "messages" in request:
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice["text"] = text
    if request.get("logprobs"):
        choice["logprobs"] = stub_logprobs(text, "messages" in request)
    usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
    payload = {"id": "x", "object": "chat.completion", "created": int(time.time())}
    payload.update(choices=[choice], usage=usage, model=STUB_MODEL)
    return 200, json.dumps(payload).encode(), {}


STUB_TOKEN = re.compile(r"\d+|\w+|\s+|[^\w\s]")


def stub_judgement(prompt: str, seed: int) -> str | None:
    """A judge's JSON reply to a rubric prompt (``criterion (1 to N):`` lines): criterion i
    scores (seed + i) % N + 1."""
    rubric = re.findall(r"^(\w+) \(1 to (\d+)\):", prompt, re.M)
    if "Rate the response" not in prompt or not rubric:
        return None
    scores = {
        name: {"score": (seed + i) % int(n) + 1, "reason": "stub"}
        for i, (name, n) in enumerate(rubric)
    }
    return json.dumps(scores)


def stub_logprobs(text: str, chat: bool) -> dict[str, Any]:
    """Logprobs of ``text`` split into digit runs, words, spaces and marks. A number token
    N has alternatives N (0.7), " N" (0.1, the same score spelled with a space), "x" (0.1)
    and M (0.1), M = 2 if N is 1 else 1: an expected score of (0.8 N + 0.1 M) / 0.9 on a
    mass of 0.9. Other tokens are certain."""
    content = []
    for token in STUB_TOKEN.findall(text):
        if token.isdigit():
            other = "2" if token == "1" else "1"
            top = [(token, 0.7), (" " + token, 0.1), ("x", 0.1), (other, 0.1)]
        else:
            top = [(token, 1.0)]
        content.append(
            {
                "token": token,
                "logprob": math.log(top[0][1]),
                "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in top],
            }
        )
    if chat:
        return {"content": content}
    return {
        "tokens": [c["token"] for c in content],
        "token_logprobs": [c["logprob"] for c in content],
        "top_logprobs": [{t["token"]: t["logprob"] for t in c["top_logprobs"]} for c in content],
    }
