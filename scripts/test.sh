#!/usr/bin/env bash
# The test command: lint, load-check the Dagster definitions, then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
VIRTUAL_ENV="$PWD/.venv" .venv/bin/dg check defs
exec .venv/bin/python -m pytest -q "$@"
