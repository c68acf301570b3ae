"""HTML signals (``qsc_codehtml_*``): visible text via BeautifulSoup's ``html.parser``."""

from __future__ import annotations

from collections.abc import Callable

from .document import PRECISION, CodeDocument

Value = float | int | bool | None


def _is_html(doc: CodeDocument) -> bool:
    return doc.program_lang == "html"


def cate_ast(doc: CodeDocument) -> float | None:
    if not _is_html(doc):
        return None
    return float(doc.html_soup is not None)


def frac_words_text(doc: CodeDocument) -> float | None:
    """Character share of ``get_text()`` (excludes script/style bodies and comments)."""
    if not _is_html(doc) or len(doc.text) == 0:
        return None
    text = doc.html_text
    if text is None:
        return None
    return round(len(text) / len(doc.text), PRECISION)


def num_chars_text(doc: CodeDocument) -> float | None:
    if not _is_html(doc):
        return None
    text = doc.html_text
    return None if text is None else float(len(text))


SIGNALS: list[tuple[str, Callable[[CodeDocument], Value]]] = [
    ("qsc_codehtml_cate_ast", cate_ast),
    ("qsc_codehtml_frac_words_text", frac_words_text),
    ("qsc_codehtml_num_chars_text", num_chars_text),
]
