"""JavaScript signals (``qsc_codejavascript_*``), based on the esprima 4.0.1 AST."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import regex

from .document import PRECISION, CodeDocument

Value = float | int | bool | None

LEGAL_VAR_RE = regex.compile(r"^[a-z\$][a-zA-Z0-9]*$")
LEGAL_FUNC_RE = regex.compile(r"^[a-zA-Z\$][a-zA-Z0-9]*$")
LEGAL_CLASS_RE = regex.compile(r"^[A-Z][a-zA-Z0-9]*$")
_SIMPLE_TYPES = ("Literal", "Identifier", "UnaryExpression")


def r8(x: float) -> float:
    return round(x, PRECISION)


@dataclass
class _JsStats:
    variables: list[Any] = field(default_factory=list)
    simple_variables: list[Any] = field(default_factory=list)
    functions: list[Any] = field(default_factory=list)
    classes: list[Any] = field(default_factory=list)
    simple_returns: int = 0
    imports: int = 0


def _is_module_exports_member(left: Any) -> bool:
    """``module.exports.X = ...`` target (esprima nodes return None for missing attrs)."""
    return (
        left.type == "MemberExpression"
        and left.object is not None
        and left.object.type == "MemberExpression"
        and getattr(left.object.object, "name", None) == "module"
        and getattr(left.object.property, "name", None) == "exports"
    )


def _collect(tree: Any) -> _JsStats:
    """One iterative pass over the esprima tree (the reference does five recursive walks)."""
    import esprima

    node_cls = esprima.nodes.Node
    func_expr = esprima.nodes.FunctionExpression
    class_decl = esprima.nodes.ClassDeclaration
    st = _JsStats()
    stack = [tree]
    while stack:
        node = stack.pop()
        ntype = node.type
        if ntype == "VariableDeclaration":
            for d in node.declarations:
                if not d:
                    continue
                init = d.init
                name = d.id.name if d.id is not None else None
                is_fexpr = isinstance(init, func_expr)
                if name and not is_fexpr:
                    st.variables.append(name)
                if not is_fexpr and (init is None or init.type in _SIMPLE_TYPES):
                    st.simple_variables.append(name)
                if is_fexpr and d.id and name:
                    st.functions.append(name)
        elif ntype == "FunctionDeclaration":
            if node.id and node.id.name:
                st.functions.append(node.id.name)
        elif ntype == "AssignmentExpression":
            left = node.left
            if _is_module_exports_member(left):
                exported = left.property.name if left.property is not None else None
                rtype = node.right.type
                if exported:
                    if rtype in ("FunctionExpression", "ArrowFunctionExpression"):
                        st.functions.append(exported)
                    else:
                        st.variables.append(exported)
                        if rtype in _SIMPLE_TYPES:
                            st.simple_variables.append(exported)
        elif ntype == "ReturnStatement":
            if node.argument is None or node.argument.type in _SIMPLE_TYPES:
                st.simple_returns += 1
        elif ntype == "ImportDeclaration":
            st.imports += 1
        if isinstance(node, class_decl) and node.id and node.id.name:
            st.classes.append(node.id.name)
        for value in vars(node).values():
            if isinstance(value, node_cls):
                stack.append(value)
            elif isinstance(value, list):
                stack.extend(v for v in value if isinstance(v, node_cls))
    return st


def _stats(doc: CodeDocument) -> _JsStats | None:
    if "_js_stats" not in doc.__dict__:
        tree = doc.js_ast
        doc.__dict__["_js_stats"] = None if tree is None else _collect(tree)
    return doc.__dict__["_js_stats"]


def _is_js(doc: CodeDocument) -> bool:
    return doc.program_lang == "javascript"


def cate_ast(doc: CodeDocument) -> float | None:
    if not _is_js(doc):
        return None
    return float(doc.js_ast is not None)


def cate_var_zero(doc: CodeDocument) -> float | None:
    if not _is_js(doc):
        return None
    st = _stats(doc)
    if st is None:
        return None
    return float(len(st.variables) == 0)


def frac_lines_func_ratio(doc: CodeDocument) -> float | None:
    if not _is_js(doc) or not doc.code_lines:
        return None
    st = _stats(doc)
    if st is None:
        return None
    return r8(len(st.functions) / len(doc.code_lines))


def num_statement_line(doc: CodeDocument) -> float | None:
    if not _is_js(doc) or not doc.code_lines:
        return None
    tree = doc.js_ast
    if tree is None:
        return None
    return r8(len(tree.body) / len(doc.code_lines))


def score_lines_no_logic(doc: CodeDocument) -> float | None:
    if not _is_js(doc) or not doc.code_lines:
        return None
    st = _stats(doc)
    if st is None:
        return None
    count = len(st.functions) + st.imports + len(st.simple_variables) + st.simple_returns + len(st.classes)
    return r8(count / len(doc.code_lines))


def _legal(names: list[Any], pattern: regex.Pattern[str]) -> float | None:
    if not names:
        return None
    return r8(sum(1 for n in names if pattern.match(n)) / len(names))


def frac_words_legal_var_name(doc: CodeDocument) -> float | None:
    if not _is_js(doc):
        return None
    st = _stats(doc)
    return None if st is None else _legal(st.variables, LEGAL_VAR_RE)


def frac_words_legal_func_name(doc: CodeDocument) -> float | None:
    if not _is_js(doc):
        return None
    st = _stats(doc)
    return None if st is None else _legal(st.functions, LEGAL_FUNC_RE)


def frac_words_legal_class_name(doc: CodeDocument) -> float | None:
    if not _is_js(doc):
        return None
    st = _stats(doc)
    return None if st is None else _legal(st.classes, LEGAL_CLASS_RE)


def frac_lines_print(doc: CodeDocument) -> float | None:
    if not _is_js(doc) or not doc.code_lines:
        return None
    lines = doc.code_lines
    return r8(sum(1 for ln in lines if "console.log" in ln) / len(lines))


SIGNALS: list[tuple[str, Callable[[CodeDocument], Value]]] = [
    ("qsc_codejavascript_cate_ast", cate_ast),
    ("qsc_codejavascript_cate_var_zero", cate_var_zero),
    ("qsc_codejavascript_frac_lines_func_ratio", frac_lines_func_ratio),
    ("qsc_codejavascript_num_statement_line", num_statement_line),
    ("qsc_codejavascript_score_lines_no_logic", score_lines_no_logic),
    ("qsc_codejavascript_frac_words_legal_var_name", frac_words_legal_var_name),
    ("qsc_codejavascript_frac_words_legal_func_name", frac_words_legal_func_name),
    ("qsc_codejavascript_frac_words_legal_class_name", frac_words_legal_class_name),
    ("qsc_codejavascript_frac_lines_print", frac_lines_print),
]
