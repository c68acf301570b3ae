"""The step kernel at scale: one language partition on 1 vs 2 workers (process pool and Dask),
and each step's time, CPU and worker peak RSS as the partition grows.

    python bench/bench_kernel.py --files 2500,5000,10000 --engines inprocess,processes:1,processes:2,dask:1,dask:2
    python bench/bench_kernel.py --files 100000 --engines processes:1,processes:2,dask:1,dask:2 --roots DIR   # scaling
    python bench/bench_kernel.py --files 10000,40000,160000 --engines processes:2 --roots DIR               # fit

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
import json
import random
import shutil
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def find_files(n: int, extra_roots: list[str]) -> list[Path]:
    """Distinct real .py files (by content), in a seeded order so that smaller N are nested subsets
    of larger ones and every N mixes all sources (stdlib, site-packages, the ``--roots``)."""
    roots = {Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"]), Path("/usr/lib/python3"),
             Path("/usr/lib/python3.11"), Path("/root/.pyenv/versions"), *map(Path, extra_roots)}
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
    random.Random(0).shuffle(out)
    return out[:n]


def _vmrss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class RssSampler:
    """Largest resident set of this (driver) process while a step runs: /proc/self/status VmRSS
    sampled every 0.2 s, because ru_maxrss is a high-water mark of the whole benchmark."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self.start_kb = 0  # resident when the step starts: what earlier steps (and the walk) left behind
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, _vmrss_kb())
            self._stop.wait(0.2)

    def __enter__(self) -> RssSampler:
        self.start_kb = _vmrss_kb()
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


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
    with RssSampler() as walk:
        assert materialize([source_index], resources=res).success
    steps = {}
    print(f"  {kind} x{workers}: driver RSS {walk.start_kb / 1024:.0f} MB before source_index, "
          f"{walk.peak_kb / 1024:.0f} MB peak during it", flush=True)
    for a in STEP_ASSETS:
        t0 = time.perf_counter()
        with RssSampler() as driver:
            assert materialize([a], resources=res, partition_key="python").success, a.key
        wall = time.perf_counter() - t0
        m = res["storage"].manifest(a.key.to_user_string(), "python")
        steps[a.key.to_user_string()] = {"wall": wall, "cpu": float(m["extra"].get("cpu_seconds", 0)),
                                         "rss": float(m["extra"].get("unit_peak_rss_mb", 0)),
                                         "driver_rss": driver.peak_kb / 1024,
                                         "driver_rss_added": max(0, driver.peak_kb - driver.start_kb) / 1024,
                                         "mb": m["counts"]["input_bytes"] / 1e6, "files": m["counts"]["input_count"],
                                         "kept": m["counts"]["kept"]}
    _close_all()
    final = pq.read_table(res["storage"].shards("refinecode_code", "python"), columns=["file_id"])["file_id"]
    steps["_final_ids"] = hashlib.sha256("\n".join(sorted(final.to_pylist())).encode()).hexdigest()[:16]
    return steps


def _steps(r: dict) -> list[str]:
    return [k for k in r if not k.startswith("_")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", default="2500,5000,10000")
    ap.add_argument("--engines", default="inprocess,processes:2,dask:2")
    ap.add_argument("--roots", default="", help="extra folders of real .py files (comma separated)")
    ap.add_argument("--json", default="", help="append each configuration's result to this JSON-lines file")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    sizes = [int(x) for x in args.files.split(",")]
    configs = []
    for e in args.engines.split(","):
        kind, _, w = e.partition(":")
        configs.append((kind, int(w or 1)))
    pool = find_files(max(sizes), [r for r in args.roots.split(",") if r])
    print(f"{len(pool)} distinct real .py files found (asked {max(sizes)})", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-kernel-"))
    results: dict[tuple, dict] = {}
    try:
        for n in sizes:
            repos = scratch / f"repos{n}"
            mb = build_repos(pool[:n], repos) / 1e6
            print(f"\n== {n} files, {mb:.1f} MB ==", flush=True)
            for kind, workers in configs:
                r = run_config(repos, scratch / f"run-{n}-{kind}-{workers}", kind, workers)
                shutil.rmtree(scratch / f"run-{n}-{kind}-{workers}", ignore_errors=True)
                results[(n, kind, workers)] = r
                total = sum(r[k]["wall"] for k in _steps(r))
                cpu = sum(r[k]["cpu"] for k in _steps(r))
                print(f"{kind:>9} x{workers}: {total:7.1f} s wall, {mb / total:5.2f} MB/s, "
                      f"{mb / total / workers:5.2f} MB/s per worker core, unit CPU {cpu:.0f} s "
                      f"({mb / max(cpu, 1e-9):.2f} MB per CPU-s), final ids {r['_final_ids']}", flush=True)
                if args.json:
                    with open(args.json, "a") as f:
                        f.write(json.dumps({"files": n, "mb": mb, "engine": kind, "workers": workers, **r}) + "\n")
            base = results[(n, *configs[0])]
            header = "step".ljust(20) + "".join(f"{k[:4]}x{w} s".rjust(11) for k, w in configs) + \
                "  speed-up 2 vs 1 worker".rjust(25) + "  unit CPU s  worker RSS MB  driver RSS MB"
            print(header)
            for s in _steps(base):
                row = s.ljust(20) + "".join(f"{results[(n, k, w)][s]['wall']:11.1f}" for k, w in configs)
                ups = []
                for k, w in configs:
                    if w > 1 and (n, k, 1) in results:
                        ups.append(f"{k[:4]} {results[(n, k, 1)][s]['wall'] / max(results[(n, k, w)][s]['wall'], 1e-9):.2f}x")
                rss = max(results[(n, k, w)][s]["rss"] for k, w in configs)
                drss = max(results[(n, k, w)][s]["driver_rss"] for k, w in configs)
                print(row + " ".join(ups).rjust(25) + f"{base[s]['cpu']:12.1f}{rss:14.0f}{drss:15.0f}")
            totals = {(k, w): sum(results[(n, k, w)][s]["wall"] for s in _steps(base)) for k, w in configs}
            for k, w in configs:
                if w > 1 and (k, 1) in totals:
                    print(f"whole pipeline {k} {w} vs 1 worker: {totals[(k, 1)] / totals[(k, w)]:.2f}x")
            same = len({results[(n, k, w)]["_final_ids"] for k, w in configs}) == 1
            print(f"identical final corpus across engines: {same}", flush=True)
        if len(sizes) >= 2:
            kind, workers = configs[0]
            print(f"\nlinear fit of unit CPU seconds vs input MB per step ({kind} x{workers}); "
                  "residual at the largest N in % (superlinear -> large positive); peak RSS per N")
            for s in _steps(results[(sizes[0], kind, workers)]):
                xs = np.array([results[(n, kind, workers)][s]["mb"] for n in sizes])
                ys = np.array([results[(n, kind, workers)][s]["cpu"] for n in sizes])
                slope, icept = np.polyfit(xs, ys, 1)
                resid = (ys[-1] - (slope * xs[-1] + icept)) / max(ys[-1], 1e-9) * 100
                rss = "/".join(f"{results[(n, kind, workers)][s]['rss']:.0f}" for n in sizes)
                drss = "/".join(f"{results[(n, kind, workers)][s]['driver_rss']:.0f}" for n in sizes)
                dadd = "/".join(f"{results[(n, kind, workers)][s]['driver_rss_added']:.0f}" for n in sizes)
                print(f"  {s:<20} {slope:7.3f} s/MB + {icept:6.2f} s   residual {resid:+5.1f}%   "
                      f"({xs[-1] / max(ys[-1], 1e-9):.2f} MB/CPU-s at N={sizes[-1]})  worker RSS {rss} MB, "
                      f"driver RSS {drss} MB (added by the step {dadd} MB)")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
