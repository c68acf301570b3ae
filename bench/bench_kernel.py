"""The step kernel at scale: one language partition on 1 vs 2 workers (process pool and Dask),
and each step's time, CPU and worker peak RSS as the partition grows.

    python bench/bench_kernel.py --files 2500,5000,10000 --engines inprocess,processes:1,processes:2,dask:1,dask:2

Input: real Python files found on this machine (stdlib, site-packages of every interpreter),
copied into ``repos/rNNN/`` of a scratch directory; every configuration materializes
``source_index`` and then each code step of the ``python`` partition in order, so each step is timed
on its own. Printed side by side: wall seconds per step, MB/s, speed-up over 1 worker, unit CPU
and the largest worker RSS (the kernel's memory is bounded by a unit, not the partition), a linear
fit of CPU seconds against MB per step (a superlinear step shows as a large residual at the largest
N), and whether the published outputs of every configuration are identical.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def find_files(n: int) -> list[Path]:
    roots = {Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"]), Path("/usr/lib/python3"),
             Path("/usr/lib/python3.11"), Path("/root/.pyenv/versions")}
    seen: set[str] = set()
    out: list[Path] = []
    for root in sorted(r for r in roots if r.is_dir()):
        for p in sorted(root.rglob("*.py")):
            try:
                if not p.is_file() or p.is_symlink() or p.stat().st_size < 200 or p.stat().st_size > 1_000_000:
                    continue
                digest = hashlib.blake2b(p.read_bytes(), digest_size=12).hexdigest()
            except OSError:
                continue
            if digest in seen:  # distinct contents only: exact dedup would remove copies at once
                continue
            seen.add(digest)
            out.append(p)
            if len(out) >= n:
                return out
    return out


def build_repos(files: list[Path], dest: Path) -> int:
    total = 0
    for i, f in enumerate(files):
        target = dest / f"r{i // 1000:03d}" / f"{i:06d}_{f.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
        total += f.stat().st_size
    return total


def run_config(repos: Path, work: Path, kind: str, workers: int) -> dict:
    from dagster import materialize

    from opencoder_assets.assets.code import STEP_ASSETS
    from opencoder_assets.assets.ingestion import source_index
    from resources import CodeSources, CorpusStorage, MetricsStore, PipelineSettings
    from resources.engine import ExecutionEngine, _close_all

    res = {"sources": CodeSources(folders=[str(repos)], manifest=None),
           "storage": CorpusStorage(root=str(work / "corpus")),
           "metrics": MetricsStore(db_path=str(work / "metrics.duckdb")),
           "settings": PipelineSettings(),
           "engine": ExecutionEngine(kind=kind, workers=workers, dask_scheduler=None)}
    assert materialize([source_index], resources=res).success
    steps = {}
    for a in STEP_ASSETS:
        t0 = time.perf_counter()
        assert materialize([a], resources=res, partition_key="python").success, a.key
        wall = time.perf_counter() - t0
        m = res["storage"].manifest(a.key.to_user_string(), "python")
        steps[a.key.to_user_string()] = {"wall": wall, "cpu": float(m["extra"].get("cpu_seconds", 0)),
                                         "rss": float(m["extra"].get("unit_peak_rss_mb", 0)),
                                         "mb": m["counts"]["input_bytes"] / 1e6, "files": m["counts"]["input_count"],
                                         "kept": m["counts"]["kept"]}
    _close_all()
    final = pq.read_table(res["storage"].shards("refinecode_code", "python"), columns=["file_id"])["file_id"]
    steps["_final_ids"] = hashlib.sha256("\n".join(sorted(final.to_pylist())).encode()).hexdigest()[:16]
    return steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", default="2500,5000,10000")
    ap.add_argument("--engines", default="inprocess,processes:2,dask:2")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    sizes = [int(x) for x in args.files.split(",")]
    configs = []
    for e in args.engines.split(","):
        kind, _, w = e.partition(":")
        configs.append((kind, int(w or 1)))
    pool = find_files(max(sizes))
    print(f"{len(pool)} distinct real .py files found (asked {max(sizes)})")
    scratch = Path(tempfile.mkdtemp(prefix="bench-kernel-"))
    results: dict[tuple, dict] = {}
    try:
        for n in sizes:
            repos = scratch / f"repos{n}"
            mb = build_repos(pool[:n], repos) / 1e6
            print(f"\n== {n} files, {mb:.1f} MB ==")
            for kind, workers in configs:
                r = run_config(repos, scratch / f"run-{n}-{kind}-{workers}", kind, workers)
                results[(n, kind, workers)] = r
                total = sum(v["wall"] for k, v in r.items() if not k.startswith("_"))
                print(f"{kind:>9} x{workers}: {total:7.1f} s wall, {mb / total:5.2f} MB/s, final ids {r['_final_ids']}")
            steps = [k for k in results[(n, *configs[0])] if not k.startswith("_")]
            base = results[(n, *configs[0])]
            header = "step".ljust(20) + "".join(f"{k[:4]}x{w} s".rjust(11) for k, w in configs) + \
                "  speed-up vs first".rjust(20) + "  unit CPU s  worker RSS MB"
            print(header)
            for s in steps:
                row = s.ljust(20) + "".join(f"{results[(n, k, w)][s]['wall']:11.1f}" for k, w in configs)
                ups = " ".join(f"{base[s]['wall'] / max(results[(n, k, w)][s]['wall'], 1e-9):.2f}x"
                               for k, w in configs[1:])
                rss = max(results[(n, k, w)][s]["rss"] for k, w in configs)
                print(row + ups.rjust(20) + f"{base[s]['cpu']:12.1f}{rss:15.0f}")
            same = len({results[(n, k, w)]["_final_ids"] for k, w in configs}) == 1
            print(f"identical final corpus across engines: {same}")
        if len(sizes) >= 2:
            kind, workers = configs[0]
            print(f"\nlinear fit of unit CPU seconds vs input MB per step ({kind} x{workers}); "
                  "residual at the largest N in % (superlinear -> large positive)")
            for s in [k for k in results[(sizes[0], kind, workers)] if not k.startswith("_")]:
                xs = np.array([results[(n, kind, workers)][s]["mb"] for n in sizes])
                ys = np.array([results[(n, kind, workers)][s]["cpu"] for n in sizes])
                slope, icept = np.polyfit(xs, ys, 1)
                resid = (ys[-1] - (slope * xs[-1] + icept)) / max(ys[-1], 1e-9) * 100
                print(f"  {s:<20} {slope:7.3f} s/MB + {icept:6.2f} s   residual {resid:+5.1f}%   "
                      f"({xs[-1] / max(ys[-1], 1e-9):.2f} MB/CPU-s at N={sizes[-1]})")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
