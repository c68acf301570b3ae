"""A real-text corpus nobody on this project wrote, for the web-recall tests and benchmark.

Nothing is downloaded at test time.  Code-related pages come from what the project's own
dependencies install: the Python language reference shipped in the stdlib (``pydoc_data``),
pydoc's HTML rendering of stdlib modules, the README (METADATA description) of every
installed PyPI distribution, and the numpy/pandas API docstrings.  Not-code pages are the
installed distributions' license texts plus a small vendored set
(``tests/data/web_recall/not_code_pages.json.gz``: BSD fortune cookies, GNOME desktop help,
four public-domain Project Gutenberg books; origin and licenses in its README), which
:func:`build_vendored_pages` rebuilt from the upstream files.

Boilerplate: FineWeb-style text is main-content only, so navigation lines repeated across a doc
set are stripped (``strip_repeated_lines``) before pages are used, as a crawl's text extraction
would; otherwise a classifier learns each doc set's menu bar instead of its content.
"""

from __future__ import annotations

import collections
import email
import glob
import gzip
import hashlib
import importlib
import inspect
import json
import os
import random
import re
import sys
import sysconfig
import warnings
from pathlib import Path

from opencoder_assets.core.web_recall import CODE_LABEL, OTHER_LABEL, html_to_text

VENDORED = Path(__file__).resolve().parent / "data" / "web_recall" / "not_code_pages.json.gz"
PAGES_PER_SOURCE = 250
MIN_CHARS = 300

#: source -> label.  Held-out sources (see tests/test_web_recall.py) are never trained on.
SOURCE_LABELS = {
    "python-reference": CODE_LABEL,  # stdlib pydoc_data: the language reference topics
    "stdlib-pydoc": CODE_LABEL,  # pydoc HTML of stdlib modules
    "pypi-readmes": CODE_LABEL,  # METADATA descriptions of installed distributions
    "numpy-docs": CODE_LABEL,  # numpy API docstrings (numpydoc, with examples)
    "pandas-docs": CODE_LABEL,  # pandas DataFrame/Series method docstrings
    "pypi-licenses": OTHER_LABEL,  # LICENSE/COPYING/NOTICE files of installed distributions
    "fortunes": OTHER_LABEL,  # vendored: fortune-mod cookie files (quotes, jokes, poems)
    "gutenberg": OTHER_LABEL,  # vendored: four public-domain books
    "gnome-help": OTHER_LABEL,  # vendored: GNOME desktop user help (technical-ish, not code)
}

#: stdlib modules whose import has side effects (a browser, a window, printing) or that are
#: not meant to be imported on their own
_SKIP_MODULES = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "ensurepip", "__phello__",
                 "__hello__", "pydoc_data", "lib2to3", "test"}


# ------------------------------------------------------------------ code (installed packages)
def _python_reference_pages() -> list[dict]:
    from pydoc_data.topics import topics

    return [{"path": f"pydoc_data/topics/{name}", "text": text} for name, text in sorted(topics.items())]


def _stdlib_pydoc_pages() -> list[dict]:
    """pydoc's HTML page of every importable public stdlib module, reduced to text."""
    import pydoc

    names = sorted(n for n in sys.stdlib_module_names if not n.startswith("_") and n not in _SKIP_MODULES)
    pages = []
    html = pydoc.HTMLDoc()
    for name in names:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(name)
                page = html.page(f"Python: module {name}", html.docmodule(module))
        except Exception:  # noqa: BLE001 - platform-specific modules (winreg, msvcrt, ...)
            continue
        # pydoc spaces everything with &nbsp;: a crawler's text extraction would give spaces
        pages.append({"path": f"pydoc/{name}.html", "text": html_to_text(page).replace("\xa0", " ")})
    return pages


def _docstring_pages(objects: list[tuple[str, object]], min_doc: int = 800) -> list[dict]:
    pages = []
    for qualname, obj in objects:
        doc = inspect.getdoc(obj) or ""
        if len(doc) < min_doc:
            continue
        try:
            sig = str(inspect.signature(obj))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            sig = "(...)"
        pages.append({"path": qualname, "text": f"{qualname}{sig}\n\n{doc}"})
    return pages


def _numpy_pages() -> list[dict]:
    import numpy as np

    objs = [(f"numpy.{n}", getattr(np, n)) for n in sorted(dir(np)) if not n.startswith("_")]
    return _docstring_pages([(q, o) for q, o in objs if callable(o)])


def _pandas_pages() -> list[dict]:
    import pandas as pd

    objs = []
    for cls in (pd.DataFrame, pd.Series):
        objs += [(f"pandas.{cls.__name__}.{n}", getattr(cls, n)) for n in sorted(dir(cls)) if not n.startswith("_")]
    return _docstring_pages([(q, o) for q, o in objs if callable(o)])


def _pypi_pages() -> dict[str, list[dict]]:
    """README (METADATA description) and license texts of every installed distribution."""
    readmes: dict[str, dict] = {}
    licenses: dict[str, dict] = {}
    site = Path(sysconfig.get_paths()["purelib"])
    for dist in sorted(site.glob("*.dist-info")):
        meta = dist / "METADATA"
        if meta.is_file():
            msg = email.message_from_string(meta.read_text(encoding="utf-8", errors="replace"))
            body = msg.get_payload()
            if isinstance(body, str) and len(body) > 800:
                readmes.setdefault(hashlib.md5(body.encode()).hexdigest(),
                                   {"path": f"{dist.name}/METADATA", "text": body})
        for f in sorted(dist.rglob("*")):
            if f.is_file() and re.search(r"^(LICEN[CS]E|COPYING|NOTICE)", f.name, re.I):
                text = f.read_text(encoding="utf-8", errors="replace")
                if len(text) > 400:
                    licenses.setdefault(hashlib.md5(text.encode()).hexdigest(),
                                        {"path": f.relative_to(site).as_posix(), "text": text})
    return {"pypi-readmes": list(readmes.values()), "pypi-licenses": list(licenses.values())}


# ------------------------------------------------------------------ vendored not-code pages
FORTUNE_FILES = ("art", "education", "food", "humorists", "kids", "law", "literature", "love", "medicine",
                 "men-women", "miscellaneous", "news", "people", "pets", "platitudes", "politics", "riddles",
                 "science", "songs-poems", "sports", "wisdom", "work")


def _fortune_pages(path: Path, per_page: int = 12) -> list[str]:
    items = [t.strip() for t in path.read_text(encoding="utf-8", errors="replace").split("\n%\n") if t.strip()]
    return ["\n\n".join(items[i:i + per_page]) for i in range(0, len(items), per_page)]


def _book_pages(path: Path, size: int = 2000) -> list[str]:
    """A Project Gutenberg plain-text book without the PG header/footer, in ~``size``-char pages
    of whole paragraphs."""
    text = path.read_text(encoding="latin-1").replace("\r\n", "\n")
    start = re.search(r"\*\*\* ?START OF TH[EI]S? PROJECT GUTENBERG EBOOK[^\n]*\n", text)
    end = re.search(r"\*\*\* ?END OF TH[EI]S? PROJECT GUTENBERG EBOOK", text)
    body = text[start.end() if start else 0:end.start() if end else len(text)]
    pages, cur = [], ""
    for para in (p.strip() for p in body.split("\n\n")):
        if para:
            cur = f"{cur}\n\n{para}" if cur else para
        if len(cur) >= size:
            pages.append(cur)
            cur = ""
    return pages + ([cur] if cur else [])


def build_vendored_pages(fortune_datfiles: Path, gnome_help_c: Path, books: list[Path], out: Path = VENDORED) -> None:
    """Rebuild the vendored not-code pages from upstream checkouts (how the file was made;
    never run by the tests).  ``books``: Project Gutenberg ``*.txt`` files."""
    corpus: dict[str, list[dict]] = {"fortunes": [], "gnome-help": [], "gutenberg": []}
    for name in FORTUNE_FILES:
        corpus["fortunes"] += [{"path": f"datfiles/{name}#{i}", "text": t}
                               for i, t in enumerate(_fortune_pages(fortune_datfiles / name))]
    for f in sorted(gnome_help_c.glob("*.page")):
        corpus["gnome-help"].append({"path": f"gnome-help/C/{f.name}",
                                     "text": html_to_text(f.read_text(encoding="utf-8", errors="replace"))})
    per_book = PAGES_PER_SOURCE // max(len(books), 1)
    for book in books:
        corpus["gutenberg"] += [{"path": f"{book.name}#{i}", "text": t}
                                for i, t in enumerate(_book_pages(book)[:per_book])]
    corpus = {name: _finish(name, pages) for name, pages in corpus.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0: the same input gives the same bytes
    out.write_bytes(gzip.compress(json.dumps(corpus, ensure_ascii=False, sort_keys=True).encode(), mtime=0))


# ------------------------------------------------------------------ the corpus
def strip_repeated_lines(texts: list[str], min_share: float = 0.1) -> list[str]:
    """Drop lines that occur in >= ``min_share`` of a doc set's pages (menus, footers)."""
    counts: collections.Counter = collections.Counter()
    for t in texts:
        counts.update({ln.strip() for ln in t.split("\n") if ln.strip()})
    limit = max(2, min_share * len(texts))
    return ["\n".join(ln for ln in t.split("\n") if ln.strip() and counts[ln.strip()] < limit) for t in texts]


def _finish(name: str, pages: list[dict]) -> list[dict]:
    """Shuffle (seeded by source), strip repeated lines, drop short pages, cap the count."""
    pages = list(pages)
    random.Random(f"corpus:{name}").shuffle(pages)
    stripped = strip_repeated_lines([p["text"] for p in pages])
    return [{"path": p["path"], "text": t} for p, t in zip(pages, stripped, strict=True)
            if len(t) >= MIN_CHARS][:PAGES_PER_SOURCE]


_CORPUS: dict[str, list[dict]] | None = None


def load_corpus() -> dict[str, list[dict]]:
    """{source: [{"path", "text"}]} for every source of ``SOURCE_LABELS`` (built once per process)."""
    global _CORPUS
    if _CORPUS is None:
        corpus = {
            "python-reference": _finish("python-reference", _python_reference_pages()),
            "stdlib-pydoc": _finish("stdlib-pydoc", _stdlib_pydoc_pages()),
            "numpy-docs": _finish("numpy-docs", _numpy_pages()),
            "pandas-docs": _finish("pandas-docs", _pandas_pages()),
        }
        corpus.update({name: _finish(name, pages) for name, pages in _pypi_pages().items()})
        corpus.update(json.loads(gzip.decompress(VENDORED.read_bytes())))
        missing = set(SOURCE_LABELS) - set(corpus)
        assert not missing, f"{VENDORED}: sources {sorted(missing)} missing"
        _CORPUS = corpus
    return _CORPUS


def all_site_packages_texts(limit: int = 2000) -> list[str]:
    """More real text for the benchmark: README/.rst/.txt/.md files of installed packages."""
    site = sysconfig.get_paths()["purelib"]
    out: list[str] = []
    for pattern in ("**/*.rst", "**/*.md", "**/METADATA", "**/LICENSE*"):
        for f in sorted(glob.glob(os.path.join(site, pattern), recursive=True)):
            try:
                text = Path(f).read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if len(text) > 300:
                out.append(text)
            if len(out) >= limit:
                return out
    return out


__all__ = ["SOURCE_LABELS", "all_site_packages_texts", "build_vendored_pages", "load_corpus"]
