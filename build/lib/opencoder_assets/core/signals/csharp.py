"""C# signals (``qsc_codecsharp_*``): regexes over the code content."""

from __future__ import annotations

from collections.abc import Callable

import regex

from .document import PRECISION, CodeDocument

Value = float | int | bool | None

FUNCTION_RE = regex.compile(
    r"^\s*"
    r"((?:(?:public|protected|private|internal)\s+)?"
    r"(?:(?:static|virtual|override|abstract|async)\s+)?"
    r"(?:(?!\s*(?:public|private|protected|if|else)\s*)(?:<\w+>)?\s*\w+\s+)"
    r"(?:\w+\s*)"
    r"(?:\((?:[^\)]*)\)))",
    regex.MULTILINE,
)
VARIABLE_RE = regex.compile(
    r"\b(?:int|float|double|char|string|var|bool|byte|sbyte|short|ushort|uint|long|ulong|decimal)\s+\w+"
    r"(?:\s*=\s*[^;\n]+)?",
    regex.MULTILINE,
)
USING_RE = regex.compile(r"^\s*using\s+[a-zA-Z0-9_.]+\s*;", regex.MULTILINE)
CLASS_RE = regex.compile(r"\b(?:public|private|protected|internal|static|abstract|sealed)?\s*class\s+\w+", regex.MULTILINE)
SIMPLE_RETURN_RE = regex.compile(r"^\s*return\b(?:\s+[^;\n]+)?\s*;", regex.MULTILINE)
SIMPLE_VAR_RE = regex.compile(
    r"\b(?:int|float|double|char|string|bool|byte|sbyte|short|ushort|uint|long|ulong|decimal)\s+\w+\s*;",
    regex.MULTILINE,
)


def r8(x: float) -> float:
    return round(x, PRECISION)


def _n(doc: CodeDocument, pattern: regex.Pattern[str]) -> int:
    return len(pattern.findall(doc.code_content, timeout=doc.compat.regex_timeout))


def _is_cs(doc: CodeDocument) -> bool:
    return doc.program_lang == "csharp"


def frac_lines_func_ratio(doc: CodeDocument) -> float | None:
    if not _is_cs(doc) or not doc.code_lines:
        return None
    return r8(_n(doc, FUNCTION_RE) / len(doc.code_lines))


def cate_var_zero(doc: CodeDocument) -> float | None:
    if not _is_cs(doc):
        return None
    if doc.compat.var_zero_always_false:
        return 0.0  # reference: ``list == 0`` is always False
    return float(_n(doc, VARIABLE_RE) == 0)


def score_lines_no_logic(doc: CodeDocument) -> float | None:
    if not _is_cs(doc) or not doc.code_lines:
        return None
    count = sum(_n(doc, p) for p in (FUNCTION_RE, USING_RE, SIMPLE_VAR_RE, SIMPLE_RETURN_RE, CLASS_RE))
    return r8(count / len(doc.code_lines))


def frac_lines_print(doc: CodeDocument) -> float | None:
    if not _is_cs(doc) or not doc.code_lines:
        return None
    lines = doc.code_lines
    return r8(sum(1 for ln in lines if "Console.WriteLine" in ln) / len(lines))


SIGNALS: list[tuple[str, Callable[[CodeDocument], Value]]] = [
    ("qsc_codecsharp_frac_lines_func_ratio", frac_lines_func_ratio),
    ("qsc_codecsharp_cate_var_zero", cate_var_zero),
    ("qsc_codecsharp_score_lines_no_logic", score_lines_no_logic),
    ("qsc_codecsharp_frac_lines_print", frac_lines_print),
]
