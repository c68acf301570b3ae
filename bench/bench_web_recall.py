"""Benchmark: pages/s per core for fastText scoring (BPE segmentation + predict) and domain aggregation.

Real pages (installed-package docs + vendored texts from tests/web_recall_corpus.py; falls back to site-packages
texts if that fails) are replicated under synthetic URLs on 2,000 made-up hosts to reach ``--pages``
(default 100,000). Everything runs on one core: RAYON_NUM_THREADS=1 for the tokenizer, fastText
``predict`` is single-threaded, DuckDB ``threads=1``.

    .venv/bin/python bench/bench_web_recall.py [--pages 100000] [--score-pages 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from opencoder_assets.core import web_recall as wr  # noqa: E402


def real_pages() -> tuple[list[str], list[str]]:
    """(texts, labels) of real pages; labels only matter for training the model being timed."""
    try:
        import web_recall_corpus as corpus_mod

        corpus = corpus_mod.load_corpus()
        texts, labels = [], []
        for name, pages in corpus.items():
            texts += [p["text"] for p in pages]
            labels += [corpus_mod.SOURCE_LABELS[name]] * len(pages)
        return texts, labels
    except Exception as exc:  # corpus unavailable: site-packages texts, labelled by file kind
        print(f"(test corpus unavailable: {exc}; using site-packages texts)")
        import web_recall_corpus as corpus_mod

        texts = corpus_mod.all_site_packages_texts()
        labels = [wr.OTHER_LABEL if "Permission is hereby" in t or "LICENSE" in t[:200] else wr.CODE_LABEL
                  for t in texts]
        return texts, labels


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=100_000)
    ap.add_argument("--score-pages", type=int, default=20_000,
                    help="pages scored for the fastText timing (rate is per page; default keeps it short)")
    ap.add_argument("--max-chars", type=int, default=wr.BpeParams.max_chars)
    args = ap.parse_args()

    texts, labels = real_pages()
    print(f"real pages: {len(texts)} (mean {np.mean([len(t) for t in texts]):.0f} chars)")
    t0 = time.perf_counter()
    clf = wr.fit_classifier(texts, labels, wr.BpeParams(max_chars=args.max_chars), wr.FastTextParams())
    print(f"train (BPE + fastText, {len(texts)} pages, 1 thread): {time.perf_counter() - t0:.1f}s")

    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(texts), size=args.pages)
    hosts = [f"{['www', 'docs', 'blog', 'forum'][i % 4]}.site{i % 2000:04d}{['.com', '.org', '.co.uk'][i % 3]}"
             for i in range(args.pages)]
    urls = [f"https://{h}/p/{i}" for i, h in enumerate(hosts)]

    # --- scoring: segmentation + predict, in batches as recalled_web_pages does ---
    n_score = min(args.score_pages, args.pages)
    score_texts = [texts[i] for i in idx[:n_score]]
    # CPU time of this process (not wall time): the rate per core even on a busy machine
    t0, w0 = time.process_time(), time.perf_counter()
    seg_time = 0.0
    scores = []
    for s in range(0, n_score, 4000):
        batch = score_texts[s:s + 4000]
        ts = time.process_time()
        segmented = wr.segment(clf.tokenizer, batch, clf.max_chars)
        seg_time += time.process_time() - ts
        scores.append(wr.code_probabilities(clf.model, segmented))
    dt, wall = time.process_time() - t0, time.perf_counter() - w0
    mb = sum(len(t[:args.max_chars].encode()) for t in score_texts) / 1e6
    print(f"scoring: {n_score} pages in {dt:.1f}s CPU ({wall:.1f}s wall) = {n_score / dt:,.0f} pages/s/core "
          f"({mb / dt:.1f} MB/s; BPE {seg_time / dt:.0%} of time; fastText predict alone "
          f"{n_score / (dt - seg_time):,.0f} pages/s/core)")

    # --- fastText predict alone on --pages pre-segmented pages (real pages replicated) ---
    seg_unique = wr.segment(clf.tokenizer, texts, clf.max_chars)
    seg_all = [seg_unique[i] for i in idx]
    t0 = time.process_time()
    for s in range(0, len(seg_all), 10_000):
        wr.code_probabilities(clf.model, seg_all[s:s + 10_000])
    dt = time.process_time() - t0
    print(f"fastText predict alone: {len(seg_all)} pages in {dt:.1f}s CPU = {len(seg_all) / dt:,.0f} pages/s/core")

    # --- domain aggregation over >= 100k pages: base-domain extraction + DuckDB group-by ---
    all_scores = np.resize(np.concatenate(scores), args.pages).astype(np.float32)
    wr.base_domain.cache_clear()
    t0 = time.process_time()
    domains = [wr.base_domain(wr.url_host(u)) for u in urls]
    t_dom = time.process_time() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scores.parquet"
        pq.write_table(pa.table({"domain": domains, "score": pa.array(all_scores)}), path)
        t0 = time.process_time()
        out = wr.aggregate_domains([path], threshold=0.5, min_ratio=0.10, threads=1)
        t_agg = time.process_time() - t0
    n_code = int(np.sum(out["is_code_domain"].to_numpy(zero_copy_only=False)))
    print(f"base-domain extraction: {args.pages} URLs in {t_dom:.2f}s = {args.pages / t_dom:,.0f} pages/s/core "
          f"({len(set(hosts))} hosts)")
    print(f"domain aggregation (DuckDB, 1 thread): {args.pages} pages in {t_agg:.3f}s = "
          f"{args.pages / t_agg:,.0f} pages/s/core -> {out.num_rows} domains, {n_code} code domains")
    print(f"domain step end to end: {args.pages / (t_dom + t_agg):,.0f} pages/s/core")


if __name__ == "__main__":
    main()
