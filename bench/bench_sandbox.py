"""Sandbox throughput: verifications/s for small passing snippets (the synthetic-snippet workload).

Run: .venv/bin/python bench/bench_sandbox.py [--n 200] [--workers 1 4]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from opencoder_assets.core.sandbox import Sandbox, SandboxLimits

CODE = '''def pair_with_sum(nums: list[int], target: int):
    seen = {}
    for j, value in enumerate(nums):
        if target - value in seen:
            return seen[target - value], j
        seen.setdefault(value, j)
    return None
'''
TESTS = "assert pair_with_sum([2, 7, 11, 15], 9) == (0, 1)\nassert pair_with_sum([1, 2], 7) is None\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 2])
    args = ap.parse_args()
    out = {"cpus": os.cpu_count()}
    for isolation in ("bwrap", "unsafe-audit-only"):
        try:
            sb = Sandbox(SandboxLimits(), isolation=isolation)
        except RuntimeError as exc:  # SandboxUnavailable: no kernel isolation here
            out[isolation] = f"unavailable: {exc}"
            continue
        for workers in args.workers:
            t0 = time.perf_counter()
            results = sb.verify_many([(CODE, TESTS)] * args.n, workers=workers)
            dt = time.perf_counter() - t0
            assert all(r.passed for r in results), [r for r in results if not r.passed][:1]
            out[f"{isolation}_workers{workers}"] = {"verifications": args.n, "seconds": round(dt, 2),
                                                    "verifications_per_s": round(args.n / dt, 1)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
