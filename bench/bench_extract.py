"""Benchmark: main-text extraction of real HTML pages for the code-web corpus.

Compares the stdlib ``html_to_text`` of core/web_recall.py (used for the classifier) with
Resiliparse (``extract_plain_text``, with and without ``main_content``) and trafilatura, on real
HTML documentation found on this machine (never downloaded):

- ``pydoc``: pydoc's HTML page of stdlib modules (navigation tables, code signatures);
- ``valgrind``: the Valgrind manual (/usr/share/doc/valgrind/html, DocBook, nav header/footer);
- ``npm``: npm's CLI docs (/usr/lib/node_modules/npm/docs/output, site template + sidebar);
- ``libxslt``: libxslt API docs (/usr/share/doc/libxslt1-dev, gtk-doc);
- ``rust-std``: rustdoc pages of the Rust standard library (rustup toolchain), when present.

Per extractor and doc set:

- ``chars``: characters of text kept per page;
- ``code_kept``: share of the lines of every ``<pre>`` block that appear in the output (the
  code-web corpus is about code: an extractor that drops code blocks is useless here);
- ``boilerplate``: share of output lines that repeat in >= 30 % of the doc set's pages
  (menus, footers, "Next/Prev" bars: what main-content extraction should remove);
- ``pages/s`` and ``MB/s`` of HTML on one core.

    .venv/bin/python bench/bench_extract.py [--pages 150]
"""

from __future__ import annotations

import argparse
import collections
import html as htmllib
import importlib
import importlib.util
import re
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opencoder_assets.core import web_recall as wr  # noqa: E402
from opencoder_assets.core.web_extract import extract_main_text  # noqa: E402

SKIP = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "ensurepip", "__phello__",
        "__hello__", "pydoc_data", "lib2to3", "test"}


def pydoc_pages(limit: int) -> list[str]:
    import pydoc

    out = []
    doc = pydoc.HTMLDoc()
    for name in sorted(n for n in sys.stdlib_module_names if not n.startswith("_") and n not in SKIP):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mod = importlib.import_module(name)
                out.append(doc.page(f"Python: module {name}", doc.docmodule(mod)))
        except Exception:  # noqa: BLE001 - platform-specific modules
            continue
        if len(out) >= limit:
            break
    return out


def files(pattern_root: str, glob: str, limit: int, step: int = 1) -> list[str]:
    root = Path(pattern_root)
    if not root.is_dir():
        return []
    paths = sorted(p for p in root.rglob(glob) if p.is_file() and p.stat().st_size > 2000)[::step][:limit]
    return [p.read_text(encoding="utf-8", errors="replace") for p in paths]


def rust_root() -> str:
    for p in sorted(Path.home().glob(".rustup/toolchains/*/share/doc/rust/html/std")):
        return str(p)
    return "/nonexistent"


_PRE = re.compile(r"<pre\b[^>]*>(.*?)</pre>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")


def pre_lines(markup: str) -> list[str]:
    lines = []
    for block in _PRE.findall(markup):
        text = htmllib.unescape(_TAG.sub("", block))
        lines += [" ".join(ln.split()) for ln in text.split("\n") if len(ln.strip()) >= 8]
    return lines


def _resiliparse(main: bool) -> Callable[[str], str]:
    from resiliparse.extract.html2text import extract_plain_text

    def run(markup: str) -> str:
        return extract_plain_text(markup, main_content=main, preserve_formatting=True, list_bullets=True)

    return run


def _trafilatura(markup: str) -> str:
    import trafilatura

    return trafilatura.extract(markup, include_comments=False, include_tables=True, deduplicate=False) or ""


EXTRACTORS: dict[str, Callable[[str], str]] = {
    "html_to_text (stdlib)": wr.html_to_text,
    "resiliparse": _resiliparse(False),
    "resiliparse main_content": _resiliparse(True),
    "extract_main_text (ours)": lambda m: extract_main_text(m).text,
}
if importlib.util.find_spec("trafilatura") is not None:  # pip install '.[bench]'
    EXTRACTORS["trafilatura"] = _trafilatura
else:
    print("trafilatura not installed (pip install '.[bench]'): not compared", file=sys.stderr)


def measure(pages: list[str], fn: Callable[[str], str]) -> dict[str, float]:
    t0 = time.process_time()
    outs = [fn(p) for p in pages]
    cpu = time.process_time() - t0
    counts: collections.Counter = collections.Counter()
    out_lines = []
    for o in outs:
        lines = [" ".join(ln.split()) for ln in o.split("\n") if ln.strip()]
        out_lines.append(lines)
        counts.update(set(lines))
    limit = max(2, 0.3 * len(pages))
    total = sum(len(x) for x in out_lines) or 1
    boiler = sum(1 for lines in out_lines for ln in lines if counts[ln] >= limit)
    pre_total = pre_hit = 0
    for markup, o in zip(pages, outs, strict=True):
        flat = " ".join(o.split())
        for ln in pre_lines(markup):
            pre_total += 1
            pre_hit += ln in flat
    mb = sum(len(p.encode()) for p in pages) / 1e6
    return {"chars": sum(len(o) for o in outs) / len(pages), "code_kept": pre_hit / pre_total if pre_total else float("nan"),
            "boilerplate": boiler / total, "pages_s": len(pages) / max(cpu, 1e-9), "mb_s": mb / max(cpu, 1e-9)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=150, help="pages per doc set")
    args = ap.parse_args(argv)
    sets = {
        "pydoc": pydoc_pages(args.pages),
        "valgrind": files("/usr/share/doc/valgrind/html", "*.html", args.pages),
        "npm": files("/usr/lib/node_modules/npm/docs/output", "*.html", args.pages),
        "libxslt": files("/usr/share/doc/libxslt1-dev", "*.html", args.pages),
        "rust-std": files(rust_root(), "*.html", args.pages, step=17),
    }
    sets = {k: v for k, v in sets.items() if v}
    print("| doc set | pages | MB | extractor | chars/page | code kept | boilerplate | pages/s | MB/s |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for name, pages in sets.items():
        mb = sum(len(p.encode()) for p in pages) / 1e6
        for ex_name, fn in EXTRACTORS.items():
            m = measure(pages, fn)
            print(f"| {name} | {len(pages)} | {mb:.1f} | {ex_name} | {m['chars']:.0f} | {m['code_kept']:.1%} | "
                  f"{m['boilerplate']:.1%} | {m['pages_s']:.0f} | {m['mb_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
