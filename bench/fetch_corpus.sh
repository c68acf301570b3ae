#!/usr/bin/env bash
# Real Python files for bench/bench_kernel.py at 100k+ files: wheels of large real projects,
# downloaded from PyPI (no dependencies) and unpacked under DIR (default /tmp/pysrc/x), ~180k
# distinct .py files after the kernel bench's content dedup.  Then:
#   python bench/bench_kernel.py --files 100000 --engines processes:1,processes:2,dask:1,dask:2 --roots /tmp/pysrc/x
set -euo pipefail
DIR=${1:-/tmp/pysrc/x}
WHEELS=$(dirname "$DIR")/wheels
mkdir -p "$DIR" "$WHEELS"
PIP="${PIP:-python3 -m pip}"
fetch() { $PIP download -q --no-deps --only-binary=:all: --python-version 3.12 -d "$WHEELS" "$@" || echo "skipped: $*" >&2; }
for v in 6.7.0 7.7.0 8.7.0 9.13.0 10.5.0 11.1.0; do fetch "ansible==$v"; done
for v in 2020.12.2 2021.3.4 2021.6.6 2021.12.10 2022.6.7 2022.12.9 2023.1.7 2023.6.3 2024.3.3 2024.10.4; do
  fetch "homeassistant==$v"; done
for v in 1.0.0 1.8.0 1.12.0; do fetch "msgraph-sdk==$v"; done
for v in 1.0.0 1.12.0; do fetch "msgraph-beta-sdk==$v"; done
for v in 4.2.16 5.1.3; do fetch "django==$v"; done
for p in sympy kubernetes azure-mgmt-network azure-mgmt-compute azure-mgmt-storage google-cloud-aiplatform pulumi-aws; do
  fetch "$p"; done
for w in "$WHEELS"/*.whl; do
  d="$DIR/$(basename "$w" .whl)"
  [ -d "$d" ] || python3 -m zipfile -e "$w" "$d"
done
echo "$(find "$DIR" -name '*.py' | wc -l) .py files under $DIR"
