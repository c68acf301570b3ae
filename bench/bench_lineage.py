"""Lineage on a large metrics store: `opencoder why` against millions of per-file decision rows.

    python bench/bench_lineage.py --rows 10000000 --steps 2

Builds published versions (real manifests, real Parquet decision files, as the kernel writes
them: one file per unit of 100k rows) for ``--steps`` steps of one partition, with ``--rows``
decision rows per step, then times: building the views (one connection), a lookup by file id, a
lookup by repo/path, ``lineage.where`` end to end, and a group-by over all rows (``drop_reasons``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

UNIT = 100_000


def build(root: Path, rows: int, steps: list[str]) -> None:
    from opencoder_assets.core.schema import DECISION_SCHEMA
    from resources import CorpusStorage

    storage = CorpusStorage(root=str(root / "corpus"))
    rng = np.random.default_rng(0)
    for s, step in enumerate(steps):
        with storage.writer(step, "python") as w:
            names = []
            for u, start in enumerate(range(0, rows, UNIT)):
                n = min(UNIT, rows - start)
                idx = np.arange(start, start + n)
                ids = pa.array([f"{i:020x}" for i in idx])
                repo = pa.array([f"repo{i // 1000:05d}" for i in idx])
                path = pa.array([f"src/pkg{i % 97}/module_{i}.py" for i in idx])
                dropped = rng.random(n) < 0.1 * (s + 1)
                t = pa.table({"file_id": ids, "repo": repo, "path": path, "language": pa.array(["Python"] * n),
                              "decision": pa.array(np.where(dropped, "dropped", "kept")),
                              "reason": pa.array(np.where(dropped, f"reason_{s}", None)),
                              "detail": pa.nulls(n, pa.string()),
                              "size_bytes": pa.array(rng.integers(100, 50_000, n))}, schema=DECISION_SCHEMA)
                name = f"decisions-{u:05d}-00000.parquet"
                pq.write_table(t, w.path / name, row_group_size=10_000)
                names.append(name)
            w.commit({"step": step, "partition": "python", "run_id": "bench",
                      "counts": {"input_count": rows, "kept": rows, "dropped": 0},
                      "tables": {"file_decisions": names}})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--steps", type=int, default=2)
    args = ap.parse_args()
    from opencoder_assets.core.steps import STEP_NAMES
    from opencoder_assets.lineage import resolve_file_ids, where
    from resources import MetricsStore

    tmp = Path(tempfile.mkdtemp(prefix="bench-lineage-"))
    try:
        t0 = time.perf_counter()
        build(tmp, args.rows, STEP_NAMES[: args.steps])
        print(f"built {args.steps} steps x {args.rows:,} decision rows in {time.perf_counter() - t0:.1f}s "
              f"({sum(f.stat().st_size for f in tmp.rglob('*.parquet')) / 1e6:.0f} MB of Parquet)")
        store = MetricsStore(db_path=str(tmp / "metrics.duckdb"))
        target = args.rows * 3 // 4
        fid, repo, path = f"{target:020x}", f"repo{target // 1000:05d}", f"src/pkg{target % 97}/module_{target}.py"
        with store.connect() as con:
            t0 = time.perf_counter()
            for _ in range(3):
                with store.connect():
                    pass
            views = (time.perf_counter() - t0) / 3
            timings = {}
            for label, sql, params in [
                ("by file_id", "SELECT step, decision, reason FROM file_decisions WHERE file_id = ?", [fid]),
                ("by repo/path", "SELECT step, decision FROM file_decisions WHERE repo = ? AND path = ?", [repo, path]),
                ("drop_reasons (all rows)", "SELECT step, reason, files FROM drop_reasons", []),
            ]:
                t0 = time.perf_counter()
                rows = con.execute(sql, params).fetchall()
                timings[label] = (time.perf_counter() - t0, len(rows))
        t0 = time.perf_counter()
        res = [where(store, f) for f in resolve_file_ids(store, f"{repo}/{path}")]
        lineage_s = time.perf_counter() - t0
        total = args.rows * args.steps
        print(f"views for one connection: {views * 1000:.0f} ms")
        for label, (sec, n) in timings.items():
            print(f"{label:<26} {sec * 1000:8.0f} ms  ({n} rows; {total / sec / 1e6:.0f} M decision rows/s)")
        print(f"lineage where (end to end) {lineage_s * 1000:8.0f} ms  ({len(res)} file(s), "
              f"{len(res[0].steps) if res else 0} steps)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
