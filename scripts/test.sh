#!/usr/bin/env bash
# Install with test tools, then lint, type-check and run the whole test suite.
# Exit code is the suite's; "no tests collected" (pytest exit 5) counts as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh dev
# CPU vLLM in its own venv (.venv-vllm): the vllm backend's actors and the openai backend's server.
bash scripts/install_vllm.sh
# System packages some tests use: Debian's Chromium (the dashboard is tested in a real
# browser; browser downloads do not work here), PostgreSQL (a Prefect server on it) and
# bubblewrap (the sandbox of the python validator's run: true).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing ${missing[*]}: the tests that need them will be skipped" >&2
  fi
fi
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled PREFECT_SERVER_ANALYTICS_ENABLED=false
# the sandbox tests fail (not skip) when bubblewrap or user namespaces do not work
export SYNTHFACTORY_REQUIRE_SANDBOX=1
.venv/bin/ruff check .
.venv/bin/mypy
status=0
# two workers (pytest-xdist): most tests wait on start-ups (Ray, Prefect, a model, a server),
# so two at a time overlap the waits; tests sharing the vLLM server stay on one worker
.venv/bin/python -m pytest -n "${SYNTHFACTORY_TEST_WORKERS:-2}" --dist loadgroup "$@" || status=$?
if [[ $status -eq 5 ]]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit $status
