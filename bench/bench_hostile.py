"""Worst-case cost of one file per hostile class, with and without the per-file parse budget.

Usage::

    python bench/bench_hostile.py              # every class at --mb 2 (a few minutes unbudgeted)
    python bench/bench_hostile.py --mb 1 --cases minified_js huge_html
    python bench/bench_hostile.py --top 5      # also the 5 slowest signals of each unbudgeted run

Each (class, mode) runs ``compute_signals_with_errors`` once on one generated file in a fresh
interpreter, so peak RSS (``ru_maxrss``) is that file's alone (minus the interpreter's baseline
after imports). ``off`` disables the budgets (``SignalCompat(js_ast_max_chars=None,
html_parse_max_chars=None, python_ast_max_chars=None)``), ``on`` uses the defaults. Files are built from real code on this
machine where there is some (minified JS bundles that esprima 4 can parse, i.e. ES5, HTML docs,
stdlib modules), tiled to the size.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from opencoder_assets.core.filtering import compute_signals_with_errors, signal_groups  # noqa: E402
from opencoder_assets.core.signals import CodeDocument, SignalCompat  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def _real(patterns: list[str], fallback: str) -> str:
    """Concatenated text of the first real files matching ``patterns`` (else ``fallback``)."""
    roots = [Path(sys.prefix), Path("/usr/lib/node_modules"), Path("/usr/share/doc"), Path(sys.base_prefix)]
    for pattern in patterns:
        for root in roots:
            for path in sorted(root.rglob(pattern))[:3]:
                try:
                    text = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    continue
                if len(text) > 20_000:
                    return text
    return fallback


def _tile(unit: str, size: int, sep: str = "") -> str:
    reps = size // (len(unit) + len(sep)) + 1
    return (unit + sep) * reps


def minified_js(size: int) -> str:
    unit = _real(["react-dom.production.min.js", "diff.min.js", "*.min.js"], "function f(a,b){var c=a+b;if(c>2){return c*2}return a}")
    unit = " ".join(ln for ln in unit.splitlines() if not ln.lstrip().startswith("//"))  # sourceMappingURL
    return _tile(unit.replace("\n", " "), size, ";")[:size].rsplit(";", 1)[0] + ";"


def js_many_lines(size: int) -> str:
    return _tile("var a = 1;\n", size)[:size]


def deep_js(size: int) -> str:
    depth = min(size // 2, 200_000)
    return "x = " + "[" * depth + "]" * depth + ";\n"


def huge_html(size: int) -> str:
    unit = _real(["*.html"], "<div class='a'><p>Hello <b>world</b></p><a href='#'>link</a></div>\n")
    return _tile(unit, size)[:size]


def deep_html(size: int) -> str:
    depth = size // 11
    return "<div>" * depth + "x" + "</div>" * depth


def python_long_line(size: int) -> str:
    return "x = [" + _tile("1, ", size - 10)[: size - 10] + "]\n"


def python_many_tiny_lines(size: int) -> str:
    return _tile("a\n", size)[:size]


def deep_python(size: int) -> str:
    depth = min(size // 2, 200_000)
    return "x = " + "(" * depth + "1" + ")" * depth + "\n"


def python_real(size: int) -> str:
    return _tile((STDLIB / "typing.py").read_text(encoding="utf-8"), size)[:size]


def c_long_line(size: int) -> str:
    return "int a[] = {" + _tile("0x1f, ", size - 20)[: size - 20] + "};\n"


def markdown_text(size: int) -> str:
    return _tile(_real(["*.md", "*.txt"], "Some prose words here and there.\n"), size)[:size]


CASES: dict[str, tuple[str, str, str, Callable[[int], str]]] = {
    "minified_js": ("javascript", "code", "js", minified_js),
    "js_many_lines": ("javascript", "code", "js", js_many_lines),
    "deep_js": ("javascript", "code", "js", deep_js),
    "huge_html": ("html", "code", "html", huge_html),
    "deep_html": ("html", "code", "html", deep_html),
    "python_long_line": ("python", "code", "py", python_long_line),
    "python_many_tiny_lines": ("python", "code", "py", python_many_tiny_lines),
    "deep_python": ("python", "code", "py", deep_python),
    "python_real": ("python", "code", "py", python_real),
    "c_long_line": ("c", "code", "c", c_long_line),
    "markdown_text": ("markdown", "text", "md", markdown_text),
}


def _compat(mode: str) -> SignalCompat:
    return SignalCompat() if mode == "on" else SignalCompat(
        js_ast_max_chars=None, html_parse_max_chars=None, python_ast_max_chars=None)


def run_one(case: str, mode: str, size: int, top: int) -> dict:
    """Child process: one file, one mode -> seconds, peak RSS delta, error count, slowest signals."""
    lang, doc_type, ext, make = CASES[case]
    text = make(size)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    _, errors = compute_signals_with_errors(
        text, program_lang=lang, doc_type=doc_type, ext=ext, filename=f"f.{ext}",
        size_bytes=len(text.encode("utf-8")), compat=_compat(mode),
    )
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    slow: list[tuple[str, float]] = []
    if top:  # second pass with a clock per signal (cached views are charged to their first user)
        doc = CodeDocument(text, program_lang=lang, doc_type=doc_type, ext=ext, filename=f"f.{ext}",
                           size_bytes=len(text), compat=_compat(mode))
        for _, group in signal_groups(lang, doc_type):
            for name, fn in group:
                t1 = time.perf_counter()
                try:
                    fn(doc)
                except Exception:  # noqa: BLE001, S110 - errors are counted by the first pass
                    pass
                slow.append((name, time.perf_counter() - t1))
        slow = sorted(slow, key=lambda x: -x[1])[:top]
    return {"case": case, "mode": mode, "chars": len(text), "seconds": seconds,
            "rss_mb": max(0, peak - base_rss) / 1024, "errors": len(errors),
            "error_kinds": sorted({e.split(":", 1)[0] for e in errors.values()}), "slowest": slow}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=2.0, help="size of each hostile file in MB (default 2)")
    ap.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    ap.add_argument("--modes", nargs="*", default=["off", "on"], choices=["off", "on"])
    ap.add_argument("--top", type=int, default=0, help="also list the N slowest signals per run")
    ap.add_argument("--one", nargs=2, metavar=("CASE", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    size = int(args.mb * 1_000_000)
    if args.one:
        print(json.dumps(run_one(args.one[0], args.one[1], size, args.top)))
        return
    results: dict[tuple[str, str], dict] = {}
    for case in args.cases:
        for mode in args.modes:
            out = subprocess.run(
                [sys.executable, __file__, "--one", case, mode, "--mb", str(args.mb), "--top", str(args.top)],
                capture_output=True, text=True, check=True,
            ).stdout
            results[case, mode] = r = json.loads(out.strip().splitlines()[-1])
            slow = ", ".join(f"{n}={s:.2f}s" for n, s in r["slowest"])
            print(f"# {case:24s} {mode:3s} {r['seconds']:8.2f} s {r['rss_mb']:8.1f} MB  errors={r['errors']}"
                  f" {r['error_kinds']} {slow}", file=sys.stderr, flush=True)
    print(f"\nOne file per class, {args.mb:g} MB each (peak RSS above the interpreter's baseline)\n")
    print("| class | chars | off: s | off: MB | on: s | on: MB | time ratio | RSS ratio | errors on |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for case in args.cases:
        off, on = results.get((case, "off")), results.get((case, "on"))
        ref = off or on
        assert ref is not None
        cells = [case, f"{ref['chars']:,}"]
        for r in (off, on):
            cells += [f"{r['seconds']:.2f}", f"{r['rss_mb']:.0f}"] if r else ["-", "-"]
        if off and on:
            cells += [f"{off['seconds'] / max(on['seconds'], 1e-9):.1f}x",
                      f"{off['rss_mb'] / max(on['rss_mb'], 1.0):.1f}x"]
        else:
            cells += ["-", "-"]
        cells.append(", ".join(on["error_kinds"]) if on else "-")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
