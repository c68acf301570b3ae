"""Python-specific signals (``qsc_codepython_*``), based on the stdlib AST."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from .code import _stmt_fields
from .document import PRECISION, CodeDocument

Value = float | int | bool | None

_SIMPLE_RETURN_RE = re.compile(r"^\s*return(\s+.+)?\s*$", re.MULTILINE)
_PASS_WORD_RE = re.compile(r"\bpass\b")


def r8(x: float) -> float:
    return round(x, PRECISION)


class _AstStats:
    """One iterative walk collecting everything the Python signals need."""

    __slots__ = ("functions", "simple_functions", "classes", "variables", "class_simple_vars")

    def __init__(self, tree: ast.AST) -> None:
        self.functions = 0
        self.simple_functions = 0
        self.classes = 0
        self.variables: set[str] = set()
        self.class_simple_vars = 0
        # (node, inside_visited_class): class-level simple vars are only collected for
        # classes not nested in another class (the reference visitor does not recurse).
        stack: list[tuple[ast.AST, bool]] = [(tree, False)]
        while stack:
            node, in_class = stack.pop()
            if isinstance(node, ast.FunctionDef):
                self.functions += 1
                if len(node.body) == 1 and isinstance(node.body[0], ast.Return):
                    self.simple_functions += 1
                for a in node.args.args:
                    self.variables.add(a.arg)
            elif isinstance(node, ast.ClassDef):
                self.classes += 1
                if not in_class:
                    for item in node.body:
                        if isinstance(item, ast.Assign):
                            self.class_simple_vars += sum(isinstance(t, ast.Name) for t in item.targets)
                        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                            self.class_simple_vars += 1
                in_class = True
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        self.variables.add(t.id)
            elif isinstance(node, ast.For) and isinstance(node.target, ast.Name):
                self.variables.add(node.target.id)
            # Every node this walk looks at is a statement (FunctionDef, ClassDef, Assign,
            # For); expressions never contain statements, so only statement lists are
            # descended into (ExceptHandler/match_case are passed through).
            for fname in _stmt_fields(node.__class__):
                children = getattr(node, fname, None)
                if children.__class__ is list:
                    for child in children:
                        stack.append((child, in_class))


def _stats(doc: CodeDocument) -> _AstStats | None:
    if "_py_stats" not in doc.__dict__:
        tree = doc.python_ast
        doc.__dict__["_py_stats"] = None if tree is None else _AstStats(tree)
    return doc.__dict__["_py_stats"]


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
