#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, lints, type-checks, then runs
# unit, integration (real local Kafka, started and stopped by tests/conftest.py) and e2e tests.
set -euo pipefail
cd "$(dirname "$0")/.."
STREAMER_EXTRAS="${STREAMER_EXTRAS:-dev,train,plot}" scripts/bootstrap.sh
echo "[test] ruff"
.venv/bin/ruff check streamer tests bench
.venv/bin/ruff format --check streamer tests bench
echo "[test] mypy --strict streamer"
.venv/bin/mypy
echo "[test] pytest"
.venv/bin/python -m pytest "$@"
