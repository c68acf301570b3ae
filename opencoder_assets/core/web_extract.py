"""Main-text extraction of recalled web pages (the code-web corpus), with Resiliparse.

Why Resiliparse (``bench/bench_extract.py``, real HTML docs on this machine, docs/web_recall.md):
its ``main_content`` mode keeps 95-100 % of ``<pre>`` code lines, removes most repeated
navigation (libxslt 11.7 % -> 2.7 % boilerplate lines, Valgrind 0.7 -> 0.2 %), and runs at
~18 MB/s per core -- 3x the stdlib parser used for the classifier and ~20x trafilatura, which
removes more boilerplate but drops 39 % of the code lines of rustdoc pages. Resiliparse ships
with FastWARC (same project), which already reads the crawl.

Pure function, no Dagster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The extractor and its settings, recorded in every kept page's decision detail.
METHOD = "resiliparse.main_content"
METHOD_FULL = "resiliparse.full_page"
METHOD_TEXT = "text"

_BLANKS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_TRAILING = re.compile(r"[ \t]+\n")


@dataclass(frozen=True)
class Extracted:
    """The main text of a page and how it was obtained."""

    text: str
    method: str


def tidy(text: str) -> str:
    """Trailing spaces off, runs of blank lines collapsed to one; code indentation kept."""
    return _BLANKS.sub("\n\n", _TRAILING.sub("\n", text.replace("\r\n", "\n"))).strip()


def extract_main_text(markup: str, kind: str = "html") -> Extracted:
    """Main text of a page: HTML through Resiliparse's main-content heuristics (formatting and
    ``<pre>`` blocks preserved, list bullets kept); if they leave nothing (a page that is all
    "navigation" to the heuristic) the whole page's visible text is used, and the method says
    so. ``kind="text"`` (WET/FineWeb pages, already extracted) only tidies whitespace."""
    if kind != "html":
        return Extracted(tidy(markup), METHOD_TEXT)
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    tree = HTMLTree.parse(markup)
    text = tidy(extract_plain_text(tree, main_content=True, preserve_formatting=True, list_bullets=True))
    if text:
        return Extracted(text, METHOD)
    return Extracted(tidy(extract_plain_text(tree, main_content=False, preserve_formatting=True,
                                             list_bullets=True)), METHOD_FULL)
