"""Python-specific signals (``qsc_codepython_*``), based on the stdlib AST."""

from __future__ import annotations

import re
from collections.abc import Callable

from .code import PythonAstFacts, python_ast_facts
from .document import PRECISION, CodeDocument

Value = float | int | bool | None

_SIMPLE_RETURN_RE = re.compile(r"^\s*return(\s+.+)?\s*$", re.MULTILINE)
_PASS_WORD_RE = re.compile(r"\bpass\b")


def r8(x: float) -> float:
    return round(x, PRECISION)


def _stats(doc: CodeDocument) -> PythonAstFacts | None:
    return python_ast_facts(doc)


def _is_py(doc: CodeDocument) -> bool:
    return doc.program_lang == "python"


def cate_ast(doc: CodeDocument) -> float | None:
    if not _is_py(doc):
        return None
    return float(doc.python_ast is not None)


def frac_lines_func_ratio(doc: CodeDocument) -> float | None:
    if not _is_py(doc):
        return None
    st = _stats(doc)
    if st is None or not doc.code_lines:
        return None
    return r8(st.functions / len(doc.code_lines))


def cate_var_zero(doc: CodeDocument) -> bool | None:
    if not _is_py(doc):
        return None
    st = _stats(doc)
    if st is None:
        return None
    return len(st.variables) == 0


def frac_lines_pass(doc: CodeDocument) -> float | None:
    if not _is_py(doc):
        return None
    lines = doc.code_lines
    if not lines:
        return 0.0
    if doc.compat.python_pass_substring:
        n = sum(1 for ln in lines if "pass" in ln.lower())
    else:
        n = sum(1 for ln in lines if _PASS_WORD_RE.search(ln) is not None)
    return r8(n / len(lines))


def frac_lines_import(doc: CodeDocument) -> float | None:
    if not _is_py(doc):
        return None
    lines = doc.code_lines
    if not lines:
        return 0.0
    return r8(sum(1 for ln in lines if "import" in ln.lower()) / len(lines))


def frac_lines_simplefunc(doc: CodeDocument) -> float | None:
    if not _is_py(doc):
        return None
    st = _stats(doc)
    if st is None or not doc.code_lines:
        return None
    return st.simple_functions / len(doc.code_lines)  # not rounded in the reference


def score_lines_no_logic(doc: CodeDocument) -> float | None:
    if not _is_py(doc):
        return None
    st = _stats(doc)
    lines = doc.code_lines
    if st is None or not lines:
        return None
    imports = sum(1 for ln in lines if "import" in ln.strip().lower())
    returns = len(_SIMPLE_RETURN_RE.findall(doc.code_content))
    total = st.functions + imports + st.classes + returns + st.class_simple_vars
    return r8(total / len(lines))


def frac_lines_print(doc: CodeDocument) -> float | None:
    if not _is_py(doc):
        return None
    lines = doc.code_lines
    if not lines:
        return None
    return r8(sum(1 for ln in lines if "print" in ln) / len(lines))


SIGNALS: list[tuple[str, Callable[[CodeDocument], Value]]] = [
    ("qsc_codepython_cate_ast", cate_ast),
    ("qsc_codepython_frac_lines_func_ratio", frac_lines_func_ratio),
    ("qsc_codepython_cate_var_zero", cate_var_zero),
    ("qsc_codepython_frac_lines_pass", frac_lines_pass),
    ("qsc_codepython_frac_lines_import", frac_lines_import),
    ("qsc_codepython_frac_lines_simplefunc", frac_lines_simplefunc),
    ("qsc_codepython_score_lines_no_logic", score_lines_no_logic),
    ("qsc_codepython_frac_lines_print", frac_lines_print),
]
