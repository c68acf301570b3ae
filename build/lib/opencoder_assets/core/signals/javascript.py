"""JavaScript signals (``qsc_codejavascript_*``), based on the esprima 4.0.1 AST (reference) or,
with ``js_parser="tree-sitter"``, on the tree-sitter-javascript tree.

The tree-sitter collector reproduces the esprima one node kind by node kind (see
:func:`_collect_ts`); the remaining differences are listed in docs/filtering.md
("JavaScript parser").
"""

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


# ------------------------------------------------------------------------------- tree-sitter
#: esprima ``Literal`` / ``Identifier`` / ``UnaryExpression`` as tree-sitter node types.
_TS_SIMPLE = frozenset({"string", "number", "true", "false", "null", "regex", "identifier", "undefined",
                        "unary_expression"})
#: esprima ``FunctionExpression`` *class* (``isinstance`` in the declarator rule): plain and
#: generator function expressions; the async ones are ``AsyncFunctionExpression``, not a subclass.
_TS_FEXPR = frozenset({"function_expression", "generator_function"})
#: esprima ``type == "FunctionExpression"`` (async included) / ``"ArrowFunctionExpression"``.
_TS_FUNC_TYPES = frozenset({"function_expression", "generator_function", "arrow_function"})
_TS_QUERY_SRC = """
(variable_declarator) @decl
(for_in_statement) @forin
(function_declaration) @func
(generator_function_declaration) @func
(assignment_expression) @assign
(augmented_assignment_expression) @assign
(return_statement) @ret
(import_statement) @import
(class_declaration) @class
"""
_TS_QUERY: list[Any] = []


def _ts_query() -> Any:
    if not _TS_QUERY:
        import tree_sitter
        import tree_sitter_javascript

        _TS_QUERY.append(tree_sitter.Query(tree_sitter.Language(tree_sitter_javascript.language()), _TS_QUERY_SRC))
    return _TS_QUERY[0]


def _text(node: Any) -> str:
    return node.text.decode("utf-8", "surrogatepass")


def _unparen(node: Any) -> Any:
    """esprima keeps no parentheses: ``(x)`` is the node ``x``."""
    while node is not None and node.type == "parenthesized_expression":
        inner = [c for c in node.named_children if not c.is_extra]
        node = inner[0] if inner else None
    return node


def _is_async(node: Any) -> bool:
    return any(c.type == "async" for c in node.children)


def _ts_name(node: Any) -> str | None:
    """esprima's ``id.name``: the identifier's name, None for a destructuring pattern."""
    return _text(node) if node is not None and node.type == "identifier" else None


def _ts_declarator(st: _JsStats, name: str | None, init: Any) -> None:
    """The esprima ``VariableDeclarator`` rule, verbatim (``name`` may be None)."""
    is_fexpr = init is not None and init.type in _TS_FEXPR and not _is_async(init)
    if name and not is_fexpr:
        st.variables.append(name)
    if not is_fexpr and (init is None or init.type in _TS_SIMPLE):
        st.simple_variables.append(name)
    if is_fexpr and name:
        st.functions.append(name)


def _ts_exported(left: Any) -> str | None:
    """``X`` of a ``module.exports.X`` / ``module.exports[X]`` target (esprima: the property's
    ``name``, so a computed identifier counts and a computed literal does not)."""
    if left.type == "member_expression":
        obj, prop = left.child_by_field_name("object"), left.child_by_field_name("property")
        exported = _text(prop) if prop is not None and prop.type == "property_identifier" else None
    elif left.type == "subscript_expression":
        obj, index = left.child_by_field_name("object"), _unparen(left.child_by_field_name("index"))
        exported = _ts_name(index)
    else:
        return None
    if obj is None or obj.type != "member_expression":
        return None
    base, prop = obj.child_by_field_name("object"), obj.child_by_field_name("property")
    if base is None or base.type != "identifier" or _text(base) != "module":
        return None
    if prop is None or prop.type != "property_identifier" or _text(prop) != "exports":
        return None
    return exported


def _collect_ts(root: Any) -> _JsStats:
    """:func:`_collect` on a tree-sitter tree: one C-side query for the node kinds the esprima
    walk looks at, then the same rules on each match."""
    import tree_sitter

    caps = tree_sitter.QueryCursor(_ts_query()).captures(root)
    st = _JsStats()
    for d in caps.get("decl", ()):
        _ts_declarator(st, _ts_name(d.child_by_field_name("name")), _unparen(d.child_by_field_name("value")))
    for f in caps.get("forin", ()):
        # ``for (const x of y)``: esprima's left is a VariableDeclaration (declarator, no init)
        if f.child_by_field_name("kind") is not None:
            _ts_declarator(st, _ts_name(f.child_by_field_name("left")), _unparen(f.child_by_field_name("value")))
    for f in caps.get("func", ()):
        name = _ts_name(f.child_by_field_name("name"))
        if name:
            st.functions.append(name)
    for a in caps.get("assign", ()):
        left, right = a.child_by_field_name("left"), _unparen(a.child_by_field_name("right"))
        exported = _ts_exported(left) if left is not None else None
        if exported and right is not None:
            if right.type in _TS_FUNC_TYPES:
                st.functions.append(exported)
            else:
                st.variables.append(exported)
                if right.type in _TS_SIMPLE:
                    st.simple_variables.append(exported)
    for r in caps.get("ret", ()):
        args = [c for c in r.named_children if not c.is_extra]
        if not args or _unparen(args[0]).type in _TS_SIMPLE:
            st.simple_returns += 1
    st.imports = len(caps.get("import", ()))
    for c in caps.get("class", ()):
        name = _ts_name(c.child_by_field_name("name"))
        if name:
            st.classes.append(name)
    return st


def _ts_statement_count(root: Any) -> int:
    """esprima's ``len(Program.body)``: the top-level statements (comments and ``#!`` are not)."""
    return sum(1 for c in root.named_children if not c.is_extra and c.type != "hash_bang_line")


# ------------------------------------------------------------------------------- dispatch
def _tree(doc: CodeDocument) -> Any | None:
    """The parse of the document's chosen parser (None: does not parse)."""
    return doc.js_ts_root if doc.js_parser == "tree-sitter" else doc.js_ast


def _stats(doc: CodeDocument) -> _JsStats | None:
    if "_js_stats" not in doc.__dict__:
        tree = _tree(doc)
        if tree is None:
            st = None
        elif doc.js_parser == "tree-sitter":
            st = _collect_ts(tree)
        else:
            st = _collect(tree)
        doc.__dict__["_js_stats"] = st
    return doc.__dict__["_js_stats"]


def _is_js(doc: CodeDocument) -> bool:
    return doc.program_lang == "javascript"


def cate_ast(doc: CodeDocument) -> float | None:
    if not _is_js(doc):
        return None
    return float(_tree(doc) is not None)


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
    tree = _tree(doc)
    if tree is None:
        return None
    n = _ts_statement_count(tree) if doc.js_parser == "tree-sitter" else len(tree.body)
    return r8(n / len(doc.code_lines))


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
