#!/usr/bin/env bash
# The live demo on a fresh machine: set-up, then local Kafka + worker + simulator + live summary.
# Extra arguments go to `streamer demo` (e.g. --meters 2000 --duration-seconds 120); readings and
# forecasts flow for --duration-seconds (600 by default), then it stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
STREAMER_EXTRAS="${STREAMER_EXTRAS:-dev}" scripts/bootstrap.sh
exec .venv/bin/streamer demo "$@"
