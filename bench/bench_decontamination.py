"""Decontamination throughput: samples/s on one core against HumanEval + a large synthetic benchmark.

The synthetic benchmark is built from real code (CPython stdlib functions, one "task" per function,
entry point = function name) until it holds >= 100k plain 10-grams. Samples are real SFT-like pairs:
instruction text + a stdlib function as the answer (all clean, i.e. the worst case: every n-gram of
every sample is looked up), plus a few contaminated ones to check the index works.

Run: .venv/bin/python bench/bench_decontamination.py [--samples 20000]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from opencoder_assets.core.decontamination import (
    BenchmarkSpec,
    Decontaminator,
    load_humaneval,
    load_jsonl_benchmark,
)

STDLIB = Path(ast.__file__).parent


def functions(paths: list[Path]) -> list[tuple[str, str]]:
    out = []
    for path in paths:
        src = path.read_text(errors="replace")
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        lines = src.splitlines()
        out.extend((n.name, "\n".join(lines[n.lineno - 1:n.end_lineno])) for n in ast.walk(tree)
                   if isinstance(n, ast.FunctionDef) and n.end_lineno)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--min-ngrams", type=int, default=100_000)
    args = ap.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    files = sorted(STDLIB.glob("*.py"))
    half = len(files) // 2
    bench_funcs = functions(files[:half])  # benchmark: first half of the stdlib
    sample_funcs = functions(files[half:])  # samples: the other half (unrelated to the benchmark)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic_bench.jsonl"
        with open(path, "w") as f:
            for i, (name, code) in enumerate(bench_funcs):
                f.write(json.dumps({"task_id": f"Synth/{i}", "prompt": code, "entry_point": f"{name}_synth{i}"}) + "\n")
        items = load_humaneval() + load_jsonl_benchmark(
            BenchmarkSpec(path=str(path), name="synthetic", text_fields=("prompt",)))
    t0 = time.perf_counter()
    index = Decontaminator(items)
    build_s = time.perf_counter() - t0
    assert index.stats.plain_ngrams >= args.min_ngrams, index.stats.plain_ngrams
    samples = []
    for i in range(args.samples):
        name, code = sample_funcs[i % len(sample_funcs)]
        samples.append(f"Explain what `{name}` does and how to use it.\n\n```python\n{code}\n```")
    he = load_humaneval()
    samples[::1000] = [he[i % 164].texts[0] for i in range(len(samples[::1000]))]
    total_bytes = sum(len(s) for s in samples)
    t0 = time.perf_counter()
    hits = sum(1 for s in samples if index.check(s) is not None)
    dt = time.perf_counter() - t0
    print(json.dumps({
        "benchmark_items": len(items), "plain_10grams": index.stats.plain_ngrams,
        "canonical_10grams": index.stats.canonical_ngrams, "entry_points": index.stats.entry_points,
        "index_build_s": round(build_s, 2), "samples": len(samples), "mean_sample_bytes": total_bytes // len(samples),
        "flagged": hits, "seconds": round(dt, 2), "samples_per_s_per_core": round(len(samples) / dt, 1),
        "MB_per_s_per_core": round(total_bytes / dt / 1e6, 2), "python": sys.version.split()[0],
    }, indent=2))


if __name__ == "__main__":
    main()
