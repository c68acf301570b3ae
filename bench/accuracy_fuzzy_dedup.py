"""Precision/recall of fuzzy-dedup clusters vs brute-force exact Jaccard on real near-duplicates.

Sample: two versions of pip (the venv's and pyenv's own site-packages) plus both setuptools
copies -- natural near-duplicates (files touched or not between releases) mixed with
unrelated files.  Ground truth: all pairs with exact shingle Jaccard >= T (T = the LSH
threshold of each configuration, and fixed 0.8 / 0.9 levels).  A predicted pair = two files in
the same cluster.  Pairwise precision = predicted pairs that are true / predicted pairs;
recall = true pairs that are predicted / true pairs.

Usage: .venv/bin/python bench/accuracy_fuzzy_dedup.py [--max-files 2500]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from itertools import combinations
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from opencoder_assets.core.fuzzy_dedup import FuzzyDedupParams, run_fuzzy_dedup, shingle_hashes

PYENV_SP = Path("/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages")
VENV_SP = (
    Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
)
PKGS = ["pip", "setuptools", "pkg_resources", "_distutils_hack"]


def collect(max_files: int) -> list[tuple[str, str]]:
    out = []
    for sp, tag in ((VENV_SP, "venv"), (PYENV_SP, "pyenv")):
        for pkg in PKGS:
            for p in sorted((sp / pkg).rglob("*.py")):
                try:
                    out.append((f"{tag}:{p.relative_to(sp)}", p.read_text(encoding="utf-8")))
                except (OSError, UnicodeDecodeError):
                    pass
    return out[:max_files]


def true_pairs(sets: list[np.ndarray], ids: list[str], thr: float) -> set[tuple[str, str]]:
    """Brute force over pairs with a size filter (J <= min/max size) to skip hopeless pairs."""
    sizes = np.array([len(s) for s in sets])
    order = np.argsort(sizes, kind="stable")
    pairs = set()
    for a_pos, i in enumerate(order):
        if sizes[i] == 0:
            continue
        for j in order[a_pos + 1 :]:
            if sizes[i] < thr * sizes[j]:
                break
            inter = len(np.intersect1d(sets[i], sets[j], assume_unique=True))
            if inter / (sizes[i] + sizes[j] - inter) >= thr:
                pairs.add(tuple(sorted((ids[i], ids[j]))))
    return pairs


def predicted_pairs(clusters_path: Path) -> set[tuple[str, str]]:
    df = pl.read_parquet(clusters_path)
    pairs = set()
    for members in df.group_by("cluster_id").agg(pl.col("file_id"))["file_id"].to_list():
        pairs |= {tuple(sorted(p)) for p in combinations(members, 2)}
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-files", type=int, default=4000)
    args = ap.parse_args()
    files = collect(args.max_files)
    ids = [f for f, _ in files]
    work = Path(tempfile.mkdtemp(prefix="acc_fuzzy_"))
    pq.write_table(
        pa.table(
            {
                "file_id": ids,
                "content": [c for _, c in files],
                "stars": pa.array([1 if f.startswith("venv") else 0 for f in ids], pa.int64()),
                "commit_time": pa.nulls(len(ids), pa.timestamp("us", tz="UTC")),
            }
        ),
        work / "in.parquet",
    )
    base = FuzzyDedupParams()
    sets = shingle_hashes([c for _, c in files], base)
    print(f"{len(files)} real files ({sum(len(s) > 0 for s in sets)} shingled) from pip/setuptools x2")
    truth_cache: dict[float, set[tuple[str, str]]] = {}
    rows = []
    for bands, rows_per_band in ((16, 128), (128, 16)):
        for verify in (None, 0.8):
            p = FuzzyDedupParams(bands=bands, rows=rows_per_band, verify_jaccard=verify, workers=2)
            res = run_fuzzy_dedup([work / "in.parquet"], work / f"w{bands}x{rows_per_band}_{verify}", p)
            pred = predicted_pairs(res.clusters_path)
            for thr in sorted({round(p.threshold, 3), 0.8, 0.9}):
                truth = truth_cache.setdefault(thr, true_pairs(sets, ids, thr))
                tp = len(pred & truth)
                prec = tp / len(pred) if pred else float("nan")
                rec = tp / len(truth) if truth else float("nan")
                rows.append(
                    (
                        f"{bands}x{rows_per_band}",
                        verify,
                        thr,
                        len(truth),
                        len(pred),
                        tp,
                        prec,
                        rec,
                        res.stats["removed"],
                    )
                )
    print(
        f"{'LSH':>7} {'verify':>6} {'J>=':>6} {'true':>6} {'pred':>6} {'tp':>6} {'prec':>6} {'recall':>6} {'removed':>7}"
    )
    for r in rows:
        print(
            f"{r[0]:>7} {r[1]!s:>6} {r[2]:>6.3f} {r[3]:>6} {r[4]:>6} {r[5]:>6} {r[6]:>6.3f} {r[7]:>6.3f} {r[8]:>7}"
        )


if __name__ == "__main__":
    main()
