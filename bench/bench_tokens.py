"""Benchmark: ``core/tokens.count_tokens`` throughput, and how wrong the old ``bytes / 3.6`` was.

Corpus: real files on this machine, none of them in the default tokenizer's training sample
(which is the Python stdlib + CPython/glibc top-level headers): site-packages Python, Linux
kernel UAPI headers, the JDK's Java sources (src.zip), Node's npm JavaScript, Valgrind's HTML
manual, Node's Markdown docs. Up to ``--mb`` MB per language, files in sorted path order.

Reports per language: files, MB, tokens, bytes/token, the estimate's ratio (est / real tokens,
1.0 = exact) and MB/s, tokens/s of ``count_tokens`` per wall second and per CPU second (HF
tokenizers may use its own threads in ``encode_batch_fast``; CPU time counts all of them, so the
per-CPU-second figure is the one to compare on a loaded machine).

    .venv/bin/python bench/bench_tokens.py [--mb 2] [--tokenizer path/to/tokenizer.json]
"""

from __future__ import annotations

import argparse
import glob
import sysconfig
import time
import zipfile
from pathlib import Path

from opencoder_assets.core.tokens import count_tokens, tokenizer_info

EST_BYTES_PER_TOKEN = 3.6


def _files(pattern: str) -> list[Path]:
    return sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())


def _take(paths: list[Path], budget: int) -> list[str]:
    out, used = [], 0
    for p in paths:
        try:
            text = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if not text.strip():
            continue
        out.append(text)
        used += len(text.encode())
        if used >= budget:
            break
    return out


def _java(budget: int) -> list[str]:
    zips = sorted(Path("/usr/lib/jvm").glob("*/lib/src.zip"))
    if not zips:
        return []
    out, used = [], 0
    with zipfile.ZipFile(zips[0]) as z:
        for name in sorted(n for n in z.namelist() if n.startswith("java.base/") and n.endswith(".java")):
            text = z.read(name).decode("utf-8", "replace")
            out.append(text)
            used += len(text.encode())
            if used >= budget:
                break
    return out


def corpora(budget: int) -> dict[str, list[str]]:
    site = sysconfig.get_paths()["purelib"]
    return {
        "python": _take(_files(f"{site}/dagster/**/*.py"), budget),
        "c": _take(_files("/usr/include/linux/**/*.h"), budget),
        "java": _java(budget),
        "javascript": _take(_files("/usr/lib/node_modules/npm/node_modules/**/*.js"), budget),
        "html": _take(_files("/usr/share/doc/valgrind/html/*.html"), budget),
        "markdown": _take(_files("/usr/share/doc/nodejs/api/*.md"), budget),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=2.0)
    ap.add_argument("--tokenizer", default=None)
    args = ap.parse_args()
    info = tokenizer_info(args.tokenizer)
    print(f"tokenizer: {info.label} ({info.path})")
    count_tokens(["warm up"], args.tokenizer)
    print("| language | files | MB | tokens | bytes/token | est/real (bytes/3.6) | MB/s wall | MB/CPU-s | tokens/CPU-s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    all_b = all_t = 0
    all_s = all_c = 0.0
    for lang, texts in corpora(int(args.mb * 1e6)).items():
        if not texts:
            print(f"| {lang} | 0 | - | - | - | - | - | - | - |")
            continue
        size = sum(len(t.encode()) for t in texts)
        t0, c0 = time.perf_counter(), time.process_time()
        n = sum(count_tokens(texts, args.tokenizer))
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        all_b, all_t, all_s, all_c = all_b + size, all_t + n, all_s + dt, all_c + dc
        print(f"| {lang} | {len(texts)} | {size / 1e6:.2f} | {n} | {size / n:.2f} | "
              f"{size / EST_BYTES_PER_TOKEN / n:.3f} | {size / 1e6 / dt:.2f} | {size / 1e6 / dc:.2f} | {n / dc:,.0f} |")
    print(f"| all | | {all_b / 1e6:.2f} | {all_t} | {all_b / all_t:.2f} | {all_b / EST_BYTES_PER_TOKEN / all_t:.3f} | "
          f"{all_b / 1e6 / all_s:.2f} | {all_b / 1e6 / all_c:.2f} | {all_t / all_c:,.0f} |")


if __name__ == "__main__":
    main()
