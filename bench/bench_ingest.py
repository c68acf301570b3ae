"""Benchmark: source_index + raw_code + preprocessed_code + exact_deduped_code on one core.

Corpus: real files already on this machine (nobody here wrote them), one "repo" per directory,
referenced by a manifest (no copying): the Python installation's library (stdlib + site-packages),
/usr/share, /usr/include, Node's global modules, optionally Rust's docs (``--with-rust-docs``).
The steps run through Dagster's in-process executor exactly as in production; we report files/s
and MB/s per step and overall, and the process's peak RSS.

    .venv/bin/python bench/bench_ingest.py            # full (>= 100k files)
    .venv/bin/python bench/bench_ingest.py --quick    # ~10k files
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPOS_FULL = {
    "python-lib": Path(sysconfig.get_paths()["stdlib"]),
    "usr-share": Path("/usr/share"),
    "usr-include": Path("/usr/include"),
    "node-modules": Path("/usr/lib/node_modules"),
    "google-cloud-sdk": Path("/usr/lib/google-cloud-sdk"),
}
REPOS_QUICK = {"usr-include": Path("/usr/include"), "node-modules": Path("/usr/lib/node_modules")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--with-rust-docs", action="store_true")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    repos = dict(REPOS_QUICK if args.quick else REPOS_FULL)
    if args.with_rust_docs:
        repos.update({f"rust-{p.name}": p for p in Path("/root/.rustup/toolchains").glob("*/share/doc")})
    repos = {k: v for k, v in repos.items() if v.is_dir()}
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_ingest_"))
    (work / "repos").mkdir(parents=True, exist_ok=True)
    manifest = work / "manifest.json"
    manifest.write_text(json.dumps({"repos": [
        {"name": k, "path": str(v), "stars": i, "commit_time": "2024-01-01T00:00:00Z"}
        for i, (k, v) in enumerate(sorted(repos.items()))]}))
    os.environ["OPENCODER_DATA"] = str(work / "data")

    from dagster import materialize

    from opencoder_assets.definitions import code_assets
    from resources import CodeSources, CorpusStorage, MetricsStore, PipelineSettings
    from resources.engine import ExecutionEngine

    res = {
        "sources": CodeSources(folders=[str(work / "repos")], manifest=str(manifest)),
        "storage": CorpusStorage(root=str(work / "data" / "corpus")),
        "metrics": MetricsStore(db_path=str(work / "data" / "metrics.duckdb")),
        "settings": PipelineSettings(),
        "engine": ExecutionEngine(kind="inprocess"),
    }
    by_name = {a.key.to_user_string(): a for a in code_assets}
    t0 = time.perf_counter()
    index = materialize([by_name["source_index"]], resources=res)
    t_index = time.perf_counter() - t0
    md = index.get_asset_materialization_events()[0].materialization.metadata
    partitions = md["partitions_with_files"].value
    n_files = md["files"].value
    timings = {"source_index": t_index}
    cpu: dict[str, float] = {"source_index": time.process_time()}
    volumes: dict[str, list[int]] = {}
    steps = ["raw_code", "preprocessed_code", "exact_deduped_code"]
    for step in steps:
        timings[step] = 0.0
        cpu[step] = 0.0
        volumes[step] = [0, 0]
    for partition in partitions:
        for step in steps:
            t, c = time.perf_counter(), time.process_time()
            r = materialize([by_name[step]], resources=res, partition_key=partition)
            timings[step] += time.perf_counter() - t
            cpu[step] += time.process_time() - c
            m = r.get_asset_materialization_events()[0].materialization.metadata
            volumes[step][0] += m["input_files"].value
            volumes[step][1] += m["input_bytes"].value
    total = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    in_bytes = volumes["raw_code"][1]
    print(f"corpus: {n_files} files, {in_bytes / 1e6:.1f} MB in {len(partitions)} partitions ({', '.join(sorted(repos))})")
    print("wall = elapsed seconds; cpu = this process's CPU seconds (robust when the machine is shared)")
    print(f"{'step':<20} {'wall s':>8} {'cpu s':>8} {'files/s':>10} {'MB/s':>8} {'files/cpu-s':>12} {'MB/cpu-s':>9}")
    print(f"{'source_index':<20} {t_index:8.1f} {cpu['source_index']:8.1f} {n_files / t_index:10.0f} {'-':>8}")
    for step in steps:
        files, nbytes = volumes[step]
        print(f"{step:<20} {timings[step]:8.1f} {cpu[step]:8.1f} {files / timings[step]:10.0f} "
              f"{nbytes / 1e6 / timings[step]:8.1f} {files / cpu[step]:12.0f} {nbytes / 1e6 / cpu[step]:9.1f}")
    total_cpu = sum(cpu.values())
    print(f"{'total (1 core)':<20} {total:8.1f} {total_cpu:8.1f} {n_files / total:10.0f} "
          f"{in_bytes / 1e6 / total:8.1f} {n_files / total_cpu:12.0f} {in_bytes / 1e6 / total_cpu:9.1f}")
    print(f"peak RSS: {peak_mb:.0f} MB")
    kept = res["metrics"].query("SELECT sum(kept) FROM latest_step_runs WHERE step='exact_deduped_code'")[0][0]
    print(f"kept after exact dedup: {kept} of {n_files} ({kept / max(n_files, 1):.1%})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
