"""Go signals (``qsc_codego_*``): regexes over the code content."""

from __future__ import annotations

from collections.abc import Callable

import regex

from .document import PRECISION, CodeDocument

Value = float | int | bool | None

SINGLE_IMPORT_RE = regex.compile(r'^import\s+"[^"]+"$')
FUNCTION_RE = regex.compile(
    r"(^func\s+"
    r"(?:\(\s*\w+\s+\*?\w+\s*\))?\s*"
    r"(?:\w+)\s*"
    r"\((?:[^)]*)\)\s*"
    r"(?:\([^)]+\)|[\w\[\]]+)?\s*)",
    regex.MULTILINE,
)
CLASS_RE = regex.compile(r"^\s*type\s+\w+\s+(struct|interface)\s*\{[^}]*\}", regex.MULTILINE | regex.DOTALL)
SIMPLE_RETURN_RE = regex.compile(r"^\s*return(?:\s+[^;\n]+)?\s*;?\s*$", regex.MULTILINE)
VARIABLE_RE = regex.compile(
    r"^\s*((?:var|const)\s+\w+(?:,\s*\w+)*\s+[\w\[\]\*]+"
    r"|(?:var|const)\s+\w+(?:,\s*\w+)*(?:\s+[\w\[\]\*]+)?\s*=\s*[^;\n]+"
    r"|\w+(?:\s*,\s*\w+)*\s*:=\s*[^;\n]+"
    r"|(?:var|const)\s+\(\s*(?:\w+\s+[\w\*\[\]]+\s*)+\))",
    regex.MULTILINE,
)
SIMPLE_VAR_RE = regex.compile(r"^\s*var\s+(\w+)\s+(\w+)\s*;?\s*$", regex.MULTILINE)


def r8(x: float) -> float:
    return round(x, PRECISION)


def _n(doc: CodeDocument, pattern: regex.Pattern[str]) -> int:
    return len(pattern.findall(doc.code_content, timeout=doc.compat.regex_timeout))


def _is_go(doc: CodeDocument) -> bool:
    return doc.program_lang == "go"


def count_import_lines(content: str, block_bug: bool) -> int:
    """Import lines: single-line imports plus ``import (`` blocks.

    With ``block_bug`` (reference) the in-block state is reset on every line, so only
    the ``import (`` line of a block counts.
    """
    n = 0
    in_block = False
    for line in content.split("\n"):
        s = line.strip()
        if block_bug:
            in_block = False
        if SINGLE_IMPORT_RE.match(s):
            n += 1
        elif s == "import (":
            in_block = True
            n += 1
        elif in_block:
            if s == ")":
                in_block = False
            n += 1
    return n


def cate_testfile(doc: CodeDocument) -> float | None:
    if not _is_go(doc):
        return None
    name = doc.filename
    if doc.compat.go_testfile_stem_bug and "." in name:
        name = name.rsplit(".", 1)[0]
    return float(name.lower().endswith("_test.go"))


def frac_lines_func_ratio(doc: CodeDocument) -> float | None:
    if not _is_go(doc) or not doc.code_lines:
        return None
    return r8(_n(doc, FUNCTION_RE) / len(doc.code_lines))


def cate_var_zero(doc: CodeDocument) -> float | None:
    if not _is_go(doc):
        return None
    if doc.compat.var_zero_always_false:
        return 0.0  # reference: ``list == 0`` is always False
    return float(_n(doc, VARIABLE_RE) == 0)


def score_lines_no_logic(doc: CodeDocument) -> float | None:
    if not _is_go(doc) or not doc.code_lines:
        return None
    count = (
        _n(doc, FUNCTION_RE)
        + count_import_lines(doc.code_content, doc.compat.go_import_block_bug)
        + _n(doc, SIMPLE_VAR_RE)
        + _n(doc, SIMPLE_RETURN_RE)
        + _n(doc, CLASS_RE)
    )
    return r8(count / len(doc.code_lines))


def frac_lines_print(doc: CodeDocument) -> float | None:
    if not _is_go(doc) or not doc.code_lines:
        return None
    lines = doc.code_lines
    return r8(sum(1 for ln in lines if "fmt.Print" in ln) / len(lines))


SIGNALS: list[tuple[str, Callable[[CodeDocument], Value]]] = [
    ("qsc_codego_cate_testfile", cate_testfile),
    ("qsc_codego_frac_lines_func_ratio", frac_lines_func_ratio),
    ("qsc_codego_cate_var_zero", cate_var_zero),
    ("qsc_codego_score_lines_no_logic", score_lines_no_logic),
    ("qsc_codego_frac_lines_print", frac_lines_print),
]
