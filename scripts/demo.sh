#!/usr/bin/env bash
# Set up, gather the small default corpus from this machine, and run the main job on it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
mkdir -p "$DAGSTER_HOME"
[ -s "$DAGSTER_HOME/dagster.yaml" ] || printf 'telemetry:\n  enabled: false\n' > "$DAGSTER_HOME/dagster.yaml"
export OPENCODER_WORKERS="${OPENCODER_WORKERS:-$(nproc)}"
exec .venv/bin/opencoder demo "$@"
