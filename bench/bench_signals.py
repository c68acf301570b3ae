"""Single-core throughput of compute_signals + apply_filters over a real multi-language corpus.

Usage::

    python bench/bench_signals.py              # quick run (~2k files)
    python bench/bench_signals.py --full       # >= 50k files if the machine has them
    python bench/bench_signals.py --max-files 10000 --roots /usr/include /usr/share

Throughput is measured on the production path (``compute_signals_with_errors`` +
``apply_filters``, one clock pair per file).  Per-group and per-signal cost shares come
from every ``--sample``-th file, computed a second time with a clock around each signal
(a lazily cached view, e.g. the Pygments split or an AST, is charged to the first signal that needs it) and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from opencoder_assets.core.filtering import (
    apply_filters,
    compute_signals_with_errors,
    select_config,
    signal_groups,
)
from opencoder_assets.core.signals import CodeDocument, SignalCompat

EXT_MAP: dict[str, tuple[str, str]] = {
    "py": ("python", "code"),
    "c": ("c", "code"),
    "h": ("c", "code"),
    "cpp": ("cpp", "code"),
    "cc": ("cpp", "code"),
    "hpp": ("cpp", "code"),
    "js": ("javascript", "code"),
    "mjs": ("javascript", "code"),
    "html": ("html", "code"),
    "htm": ("html", "code"),
    "java": ("java", "code"),
    "go": ("go", "code"),
    "cs": ("csharp", "code"),
    "sh": ("shell", "code"),
    "sql": ("sql", "code"),
    "ts": ("typescript", "code"),
    "rb": ("ruby", "code"),
    "pl": ("perl", "code"),
    "json": ("json", "data"),
    "xml": ("xml", "data"),
    "css": ("css", "data"),
    "yaml": ("yaml", "data"),
    "yml": ("yaml", "data"),
    "md": ("markdown", "text"),
    "rst": ("restructuredtext", "text"),
    "txt": ("text", "text"),
}
DEFAULT_ROOTS = [
    f"{sys.base_prefix}/lib/python{sys.version_info.major}.{sys.version_info.minor}",
    "/root/.pyenv/versions/3.11.7/lib/python3.11",
    "/usr/include",
    "/usr/lib/node_modules",
    "/usr/share",
    "/usr/lib/python3",
    str(Path(__file__).resolve().parent.parent / ".venv" / "lib"),
]
MAX_BYTES = 3_000_000
_clock = time.perf_counter


def iter_files(roots: list[str]) -> Iterator[Path]:
    seen: set[str] = set()
    for root in roots:
        if not os.path.isdir(root):
            continue
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                ext = f.rsplit(".", 1)[-1] if "." in f else ""
                if ext not in EXT_MAP:
                    continue
                p = os.path.join(dirpath, f)
                real = os.path.realpath(p)
                if real in seen:
                    continue
                seen.add(real)
                yield Path(p)


def load(path: Path) -> str | None:
    try:
        if not path.is_file() or path.stat().st_size > MAX_BYTES:
            return None
        raw = path.read_bytes()
    except OSError:
        return None
    if b"\x00" in raw[:8192]:
        return None
    text = raw.decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines


def _profile_signals(
    text: str,
    program_lang: str,
    doc_type: str,
    ext: str,
    name: str,
    size: int,
    compat: SignalCompat,
    seed: int,
    file_id: str,
    per_signal: dict[str, float],
    per_group: dict[str, float],
) -> None:
    """The same file once more, with a clock around every signal (cost shares only)."""
    doc = CodeDocument(
        text,
        program_lang=program_lang,
        doc_type=doc_type,
        ext=ext,
        filename=name,
        size_bytes=size,
        compat=compat,
    )
    groups = signal_groups(program_lang, doc_type)
    signals: dict[str, float | int | bool | None] = {}
    for gname, group in groups:
        for sname, fn in group:
            s0 = _clock()
            try:
                signals[sname] = fn(doc)
            except Exception:  # noqa: BLE001 - same guard as compute_signals
                signals[sname] = None
            dt = _clock() - s0
            per_signal[sname] += dt
            per_group[gname] += dt
    f0 = _clock()
    apply_filters(
        signals, program_lang=program_lang, doc_type=doc_type, lang="en", file_id=file_id, seed=seed
    )
    per_group["apply_filters"] += _clock() - f0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="aim for >= 50k files")
    ap.add_argument("--max-files", type=int, default=None)
    ap.add_argument("--roots", nargs="*", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top", type=int, default=15, help="number of most expensive signals to print")
    ap.add_argument("--file-list", default=None, help="read the (ordered) file paths from this file")
    ap.add_argument("--save-list", default=None, help="write the files actually benchmarked to this file")
    ap.add_argument("--sample", type=int, default=8, help="per-signal costs from every k-th file")
    ap.add_argument(
        "--cpu", action="store_true", help="measure process CPU time instead of wall time (busy machines)"
    )
    args = ap.parse_args()
    global _clock
    _clock = time.process_time if args.cpu else time.perf_counter
    max_files = args.max_files or (60_000 if args.full else 2_000)

    if args.file_list:
        paths = [Path(ln) for ln in Path(args.file_list).read_text().splitlines() if ln]
    else:
        paths = list(iter_files(args.roots or DEFAULT_ROOTS))
        random.Random(args.seed).shuffle(paths)
    benchmarked: list[str] = []
    print(f"found {len(paths)} candidate files; benchmarking up to {max_files}", flush=True)

    compat = SignalCompat()
    per_signal: dict[str, float] = defaultdict(float)
    per_group: dict[str, float] = defaultdict(float)
    per_lang_bytes: dict[str, int] = defaultdict(int)
    per_lang_time: dict[str, float] = defaultdict(float)
    n_files = n_bytes = n_kept = n_errors = 0
    t_total = t_sampled = 0.0
    for path in paths:
        if n_files >= max_files:
            break
        text = load(path)
        if text is None:
            continue
        name = path.name
        ext = name.rsplit(".", 1)[-1]
        program_lang, doc_type = EXT_MAP[ext]
        size = len(text.encode("utf-8"))
        t0 = _clock()
        signals, errors = compute_signals_with_errors(
            text,
            program_lang=program_lang,
            doc_type=doc_type,
            ext=ext,
            filename=name,
            size_bytes=size,
            compat=compat,
        )
        decision = apply_filters(
            signals,
            program_lang=program_lang,
            doc_type=doc_type,
            lang="en",
            file_id=str(path),
            seed=args.seed,
        )
        elapsed = _clock() - t0
        n_errors += len(errors)
        if n_files % args.sample == 0:
            t_sampled += elapsed
            _profile_signals(
                text,
                program_lang,
                doc_type,
                ext,
                name,
                size,
                compat,
                args.seed,
                str(path),
                per_signal,
                per_group,
            )
        t_total += elapsed
        per_lang_time[select_config(program_lang, doc_type, "en")] += elapsed
        per_lang_bytes[select_config(program_lang, doc_type, "en")] += size
        n_kept += decision.keep
        benchmarked.append(str(path))
        n_files += 1
        n_bytes += size
        if n_files % 5000 == 0:
            print(
                f"  {n_files} files, {n_bytes / 1e6:.1f} MB, {n_bytes / 1e6 / t_total:.2f} MB/s", flush=True
            )

    if args.save_list:
        Path(args.save_list).write_text("\n".join(benchmarked) + "\n")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\nfiles: {n_files}  bytes: {n_bytes / 1e6:.1f} MB  kept: {n_kept} ({n_kept / max(n_files, 1):.1%})"
        f"  signal errors: {n_errors}"
    )
    print(
        f"time ({'cpu' if args.cpu else 'wall'}): {t_total:.1f} s  ->  {n_files / t_total:.1f} files/s, {n_bytes / 1e6 / t_total:.2f} MB/s (one core)"
    )
    print(f"peak RSS: {rss_mb:.0f} MB")
    t_prof = sum(per_group.values()) or 1.0
    print(
        f"\ncost share by group (per-signal clocks on every {args.sample}th file, {t_sampled:.1f} s of it):"
    )
    for g, t in sorted(per_group.items(), key=lambda x: -x[1]):
        print(f"  {g:<16} {t:8.2f} s  {t / t_prof:6.1%}")
    print("\nthroughput by config:")
    for c, t in sorted(per_lang_time.items(), key=lambda x: -x[1]):
        print(
            f"  {c:<12} {per_lang_bytes[c] / 1e6:8.1f} MB  {per_lang_bytes[c] / 1e6 / t:6.2f} MB/s  {t / t_total:6.1%} of time"
        )
    print(f"\ntop {args.top} signals by cost (same sample; lazy shared views charged to first user):")
    for s, t in sorted(per_signal.items(), key=lambda x: -x[1])[: args.top]:
        print(f"  {s:<52} {t:8.2f} s  {t / t_prof:6.1%}")


if __name__ == "__main__":
    main()
