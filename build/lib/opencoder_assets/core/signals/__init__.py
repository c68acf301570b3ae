"""Per-file quality signals of the RefineCode filter, grouped as in the reference.

``TEXT_SIGNALS`` (``qsc_doc_*``) run for ``doc_type == "text"``; ``CODE_SIGNALS``
(``qsc_code_*``) plus ``LANG_SIGNALS[program_lang]`` run for ``code``/``data``.
Each entry is ``(name, fn)`` with ``fn(CodeDocument) -> float | int | bool | None``.
"""

from __future__ import annotations

from collections.abc import Callable

from . import code, csharp, go, html, java, javascript, python, text
from .c import C_SIGNALS, CPP_SIGNALS
from .document import (
    CodeDocument,
    SignalBudgetExceeded,
    SignalCompat,
    normalize_text,
    split_lines,
    wordpunct_tokenize,
)

Value = float | int | bool | None
SignalFn = Callable[[CodeDocument], Value]

TEXT_SIGNALS: list[tuple[str, SignalFn]] = list(text.SIGNALS)
CODE_SIGNALS: list[tuple[str, SignalFn]] = list(code.SIGNALS)
LANG_SIGNALS: dict[str, list[tuple[str, SignalFn]]] = {
    "html": list(html.SIGNALS),
    "python": list(python.SIGNALS),
    "go": list(go.SIGNALS),
    "c": list(C_SIGNALS),
    "cpp": list(CPP_SIGNALS),
    "csharp": list(csharp.SIGNALS),
    "java": list(java.SIGNALS),
    "javascript": list(javascript.SIGNALS),
}

#: Every registered signal name (118, as in the reference).
ALL_SIGNAL_NAMES: frozenset[str] = frozenset(
    [n for n, _ in TEXT_SIGNALS]
    + [n for n, _ in CODE_SIGNALS]
    + [n for sigs in LANG_SIGNALS.values() for n, _ in sigs]
)

__all__ = [
    "ALL_SIGNAL_NAMES",
    "CODE_SIGNALS",
    "CodeDocument",
    "LANG_SIGNALS",
    "SignalBudgetExceeded",
    "SignalCompat",
    "SignalFn",
    "TEXT_SIGNALS",
    "normalize_text",
    "split_lines",
    "wordpunct_tokenize",
]
