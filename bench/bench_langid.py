"""Benchmark: language identification of text documents, accuracy and documents/s.

Corpus (tests/langid_corpus.py): real documents on this machine -- English man pages and Node's
Markdown docs, Chinese man pages / Vim tutors / GnuPG help, and man pages in 12 other languages.
What the pipeline needs is the ``zh`` vs rest decision (it picks the ``zh`` or ``en`` threshold
table), so that accuracy is reported next to the full-label accuracy; "other" labels come from
the man page's directory, and several translated man pages are partly English, so full-label
accuracy is a lower bound.

Candidates: the pipeline's ``core/langid.detect_language`` (py3langid), and, when installed,
``lingua-language-detector`` (all languages; high and low accuracy modes). fastText LID packages
download their model at run time and are not eligible.

    .venv/bin/python bench/bench_langid.py
"""

from __future__ import annotations

import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opencoder_assets.core.langid import detect_language  # noqa: E402
from tests.langid_corpus import labelled_docs  # noqa: E402


def _rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _lingua(low: bool) -> Callable[[str], str] | None:
    try:
        from lingua import LanguageDetectorBuilder
    except ImportError:
        return None
    builder = LanguageDetectorBuilder.from_all_languages()
    det = (builder.with_low_accuracy_mode() if low else builder).build()

    def f(text: str) -> str:
        lang = det.detect_language_of(text[:20_000])
        return lang.iso_code_639_1.name.lower() if lang else "und"

    return f


def main() -> None:
    docs = labelled_docs()
    gold = [lang for _, lang, _ in docs]
    texts = [t for _, _, t in docs]
    print(f"{len(docs)} documents: {dict(Counter(gold).most_common())}")
    print("| identifier | accuracy (all labels) | zh vs rest | zh recall | zh precision | docs/s (CPU) | load s | RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, make in (("py3langid (core/langid.py)", lambda: detect_language),
                       ("lingua high accuracy", lambda: _lingua(False)),
                       ("lingua low accuracy", lambda: _lingua(True))):
        t0 = time.perf_counter()
        fn = make()
        if fn is None:
            print(f"| {name} | not installed | | | | | | |")
            continue
        fn(texts[0])
        load = time.perf_counter() - t0
        c0 = time.process_time()
        pred = [fn(t) for t in texts]
        cpu = time.process_time() - c0
        acc = sum(p == g for p, g in zip(pred, gold, strict=True)) / len(gold)
        zh_ok = sum((p == "zh") == (g == "zh") for p, g in zip(pred, gold, strict=True)) / len(gold)
        tp = sum(p == g == "zh" for p, g in zip(pred, gold, strict=True))
        recall = tp / max(gold.count("zh"), 1)
        precision = tp / max(pred.count("zh"), 1)
        print(f"| {name} | {acc:.3f} | {zh_ok:.4f} | {recall:.3f} | {precision:.3f} | {len(texts) / cpu:,.0f} | "
              f"{load:.2f} | {_rss_mb()} |")
        errors = Counter((g, p) for p, g in zip(pred, gold, strict=True) if p != g)
        print(f"|   errors (gold, predicted) | {errors.most_common(6)} | | | | | | |")


if __name__ == "__main__":
    main()
