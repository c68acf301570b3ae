"""esprima vs tree-sitter for the JavaScript AST signals, on real npm JavaScript.

Usage::

    python bench/bench_js_parser.py                 # quick: 300 files sampled from the npm trees
    python bench/bench_js_parser.py --max-files 0   # every file found
    python bench/bench_js_parser.py --roots ~/node_modules

Files: every ``*.js``/``*.mjs``/``*.cjs`` under ``--roots`` (default: the npm trees this machine has,
``/usr/lib/node_modules`` and ``/usr/share/nodejs``), up to the 1 MB per-file AST budget.

Per parser, printed side by side with the tree-sitter/esprima ratio:

* ``cate_ast=1``: share of files the parser accepts (``qsc_codejavascript_cate_ast``);
* ``kept by filter``: share kept by the full ``[javascript]`` threshold table (seeded mode, the
  pipeline default), and share whose drop rules include ``cate_ast``;
* ``parse MB/s``: parse + the AST collection the signals use (one clock pair per file);
* ``signals MB/s``: the production path, ``compute_signals_with_errors`` + ``apply_filters``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import warnings
from pathlib import Path

from opencoder_assets.core.filtering import apply_filters, compute_signals_with_errors
from opencoder_assets.core.signals import CodeDocument
from opencoder_assets.core.signals.document import JS_PARSERS
from opencoder_assets.core.signals.javascript import _stats, _tree

DEFAULT_ROOTS = ["/usr/lib/node_modules", "/usr/share/nodejs"]
MAX_CHARS = 1_000_000


def find_files(roots: list[str], max_files: int, seed: int) -> list[tuple[Path, str]]:
    files: list[tuple[Path, str]] = []
    for root in roots:
        base = Path(root)
        if not base.is_dir():
            continue
        for ext in ("js", "mjs", "cjs"):
            for p in sorted(base.rglob(f"*.{ext}")):
                if not p.is_file() or p.is_symlink():
                    continue
                try:
                    text = p.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    continue
                if text.strip() and len(text) <= MAX_CHARS:
                    files.append((p, text))
    if max_files and len(files) > max_files:
        files = random.Random(seed).sample(files, max_files)
    return files


def run(files: list[tuple[Path, str]], parser: str) -> dict[str, float]:
    parsed = kept = ast_drop = 0
    t_parse = t_signals = 0.0
    for path, text in files:
        doc = CodeDocument(text, program_lang="javascript", doc_type="code", filename=path.name, js_parser=parser)
        t0 = time.perf_counter()
        tree = _tree(doc)
        if tree is not None:
            _stats(doc)
        t_parse += time.perf_counter() - t0
        parsed += tree is not None
        t0 = time.perf_counter()
        sig, _ = compute_signals_with_errors(text, program_lang="javascript", doc_type="code", ext=path.suffix[1:],
                                             filename=path.name, size_bytes=len(text.encode()), js_parser=parser)
        decision = apply_filters(sig, program_lang="javascript", doc_type="code", lang="en", file_id=str(path))
        t_signals += time.perf_counter() - t0
        kept += decision.keep
        ast_drop += "qsc_codejavascript_cate_ast" in decision.hits
    mb = sum(len(t.encode()) for _, t in files) / 1e6
    n = len(files)
    return {"cate_ast=1": parsed / n, "kept by filter": kept / n, "dropped by cate_ast": ast_drop / n,
            "parse MB/s": mb / t_parse, "signals MB/s": mb / t_signals}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--roots", nargs="+", default=DEFAULT_ROOTS)
    ap.add_argument("--max-files", type=int, default=300, help="0 = all")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")  # esprima's regex FutureWarnings
    files = find_files(args.roots, args.max_files, args.seed)
    if not files:
        print(f"no JavaScript files under {args.roots}", file=sys.stderr)
        return 1
    mb = sum(len(t.encode()) for _, t in files) / 1e6
    print(f"{len(files)} files, {mb:.2f} MB from {[r for r in args.roots if Path(r).is_dir()]}")
    results = {p: run(files, p) for p in JS_PARSERS}
    es, ts = results["esprima"], results["tree-sitter"]
    print(f"| {'':22} | {'esprima':>9} | {'tree-sitter':>11} | {'ratio ts/es':>11} |")
    print(f"|{'-' * 24}|{'-' * 10}:|{'-' * 12}:|{'-' * 12}:|")
    for key in es:
        pct = "MB/s" not in key
        fmt = (lambda v: f"{100 * v:.1f} %") if pct else (lambda v: f"{v:.3f}")
        ratio = f"{ts[key] / es[key]:.2f}x" if es[key] else "-"
        print(f"| {key:22} | {fmt(es[key]):>9} | {fmt(ts[key]):>11} | {ratio:>11} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
