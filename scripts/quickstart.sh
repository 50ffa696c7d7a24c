#!/usr/bin/env bash
# One command from a fresh checkout: install, then generate the example dataset on the
# embedded defaults (local Ray, Prefect's ephemeral server, a local folder).
#   bash scripts/quickstart.sh [SPEC] [synthfactory run options, e.g. --output s3://bucket/x]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export RAY_USAGE_STATS_ENABLED="${RAY_USAGE_STATS_ENABLED:-0}"
export PREFECT_SERVER_ANALYTICS_ENABLED="${PREFECT_SERVER_ANALYTICS_ENABLED:-false}"
# RAY_AUTH_MODE is left to Ray (scripts/test.sh disables it for the tests): the local
# cluster `run` starts listens on every network interface, so its token authentication
# stays on. `run` prints no banner about it, nor Prefect's (see `synthfactory run -v`).
spec="${1:-examples/tabular_penguins.yaml}"
shift || true
exec .venv/bin/synthfactory run "$spec" "$@"
