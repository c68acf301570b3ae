"""Fast, exact code/comment split driven by the Pygments lexer tables.

``pygments.lexer.RegexLexer.get_tokens_unprocessed`` tries the rules of the current state
one by one from Python (``for rexmatch, action, new_state in statetokens``), so a token
deep in a long state (identifiers, operators) costs a dozen Python-level regex calls.

Here every state's rules are compiled once (per lexer class) into a single alternation
``(rule0)|(rule1)|...``.  Python's ``re`` tries alternatives left to right at the same
position and returns the first that matches, which is exactly the rule the Pygments loop
would have picked (same pattern, same flags, same text, same position, so the same match);
``m.lastindex`` (the outer group, which always closes last) says which rule it was.
Rules whose text cannot be embedded safely (back-references, named groups, verbose or
locale/ascii flags) stay separate, in order, so the first-match order is unchanged.
Callback actions (``bygroups``, ``using``...) get a match object of their *own* pattern
(re-matched at the same position), so they behave exactly as in Pygments.

The driver does not yield tokens: it sorts token values straight into comment/code
parts.  It is used only for lexers whose ``get_tokens_unprocessed`` is the stock
``RegexLexer`` one or ``CFamilyLexer``'s (which only re-labels ``Name`` tokens as
``Keyword.Type``, irrelevant to the comment split); every other lexer goes through its
own ``get_tokens_unprocessed``.  Input preprocessing (BOM, newlines, ``stripnl``,
``ensurenl``...) is Pygments' own ``_preprocess_lexer_input``, i.e. the text is identical
to what ``lexer.get_tokens(text)`` lexes.  Lexers with filters use ``get_tokens``.
"""

from __future__ import annotations

import re
from typing import Any

from pygments.lexer import _PseudoMatch
from pygments.token import _TokenType as TokenType

__all__ = ["split_code_comment"]

_GLOBAL_FLAGS_RE = re.compile(r"^(?:\(\?[aiLmsux]+\))+")
_SCOPABLE = re.IGNORECASE | re.MULTILINE | re.DOTALL
_FLAG_LETTERS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"))
_UNSAFE_TEXT_RE = re.compile(r"\\[1-9]|\(\?P=|\(\?\(|\(\?P<|\(\?<(?![=!])|\\g")

_PROGRAMS: dict[type, Any] = {}


def _embeddable(pattern: re.Pattern[str], base_flags: int) -> str | None:
    """Pattern text usable inside a combined regex compiled with ``base_flags``, or None."""
    src = pattern.pattern
    if not isinstance(src, str) or _UNSAFE_TEXT_RE.search(src) or pattern.groupindex:
        return None
    flags = pattern.flags
    if flags & re.VERBOSE:
        return None
    if (flags & ~_SCOPABLE) != (base_flags & ~_SCOPABLE):  # ASCII/LOCALE/UNICODE differ
        return None
    body = _GLOBAL_FLAGS_RE.sub("", src)
    if "(?" in body and re.search(r"\(\?[aiLmsux]+\)", body):  # misplaced global flags
        return None
    add = "".join(ch for f, ch in _FLAG_LETTERS if flags & f and not base_flags & f)
    drop = "".join(ch for f, ch in _FLAG_LETTERS if base_flags & f and not flags & f)
    if add or drop:
        body = f"(?{add}{'-' + drop if drop else ''}:{body})"
    return f"({body})"


def _compile_state(rules: list[tuple[Any, Any, Any]]) -> tuple[tuple[Any, Any, Any], ...]:
    """Segments ``(match, table, single)``: a combined regex (table by group index) or one rule."""
    from pygments.token import _TokenType

    if not rules:
        return ()
    base = rules[0][0].__self__.flags
    segments: list[tuple[Any, Any, Any]] = []
    pending: list[tuple[str, Any]] = []  # (embedded text, entry)

    def flush() -> None:
        if not pending:
            return
        if len(pending) == 1:
            segments.append((pending[0][1][2], None, pending[0][1]))
        else:
            table: dict[int, Any] = {}
            group = 1
            parts = []
            for text, entry in pending:
                table[group] = entry
                group += 1 + entry[2].__self__.groups
                parts.append(text)
            try:
                combined = re.compile("|".join(parts), base)
            except re.error:
                for _text, entry in pending:
                    segments.append((entry[2], None, entry))
            else:
                if combined.groups + 1 != group:  # paranoia: numbering must be as computed
                    for _text, entry in pending:
                        segments.append((entry[2], None, entry))
                else:
                    segments.append((combined.match, table, None))
        pending.clear()

    for rexmatch, action, new_state in rules:
        entry = (action, new_state, rexmatch, type(action) is _TokenType)
        text = _embeddable(rexmatch.__self__, base)
        if text is None:
            flush()
            segments.append((rexmatch, None, entry))
        else:
            pending.append((text, entry))
    flush()
    return tuple(segments)


# ------------------------------------------------------------ first-character analysis
# For each rule we compute a conservative predicate "can a match start with char c?" from
# the parsed regex.  Anything we do not understand (back-references, IGNORECASE, rules
# that can match the empty string...) is "always a candidate".  A rule that is not a
# candidate for ``text[pos]`` cannot match at ``pos``, so dropping it from the alternation
# for that character does not change which rule matches first.
_ALWAYS = None  # marker: candidate for every character (and at end of text)


def _eq(v: str) -> Any:
    return lambda c: c == v


def _ne(v: str) -> Any:
    return lambda c: c != v


def _category_pred(cat: Any, flags: int) -> Any:
    from re import _constants as C  # type: ignore[attr-defined]

    table = {
        C.CATEGORY_DIGIT: r"\d", C.CATEGORY_NOT_DIGIT: r"\D", C.CATEGORY_SPACE: r"\s",
        C.CATEGORY_NOT_SPACE: r"\S", C.CATEGORY_WORD: r"\w", C.CATEGORY_NOT_WORD: r"\W",
    }
    src = table.get(cat)
    if src is None:
        return lambda c: True
    rx = re.compile(src, flags & (re.ASCII | re.UNICODE))
    return lambda c: rx.match(c) is not None


def _in_pred(items: list[Any], flags: int) -> Any:
    from re import _constants as C  # type: ignore[attr-defined]

    negate = False
    preds = []
    for op, av in items:
        if op is C.NEGATE:
            negate = True
        elif op is C.LITERAL:
            preds.append(_eq(chr(av)))
        elif op is C.RANGE:
            preds.append(lambda c, lo=av[0], hi=av[1]: lo <= ord(c) <= hi)
        elif op is C.CATEGORY:
            preds.append(_category_pred(av, flags))
        else:
            return lambda c: True
    if negate:
        return lambda c: not any(p(c) for p in preds)
    return lambda c: any(p(c) for p in preds)


def _first(items: Any, flags: int) -> tuple[Any, bool]:
    """(list of predicates | _ALWAYS, nullable) for a sequence of parsed regex items."""
    from re import _constants as C  # type: ignore[attr-defined]

    preds: list[Any] = []
    for op, av in items:
        if op is C.LITERAL:
            preds.append(_eq(chr(av)))
            return preds, False
        if op is C.NOT_LITERAL:
            preds.append(_ne(chr(av)))
            return preds, False
        if op is C.ANY:
            if flags & re.DOTALL:
                return _ALWAYS, False
            preds.append(lambda c: c != "\n")
            return preds, False
        if op is C.IN:
            preds.append(_in_pred(av, flags))
            return preds, False
        if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
            continue  # zero width: the next item decides (ignoring the assertion is safe)
        if op is C.SUBPATTERN:
            _group, add, dele, sub = av
            f = (flags | add) & ~dele
            if f & re.IGNORECASE:
                return _ALWAYS, True
            sp, nullable = _first(sub, f)
        elif op is C.ATOMIC_GROUP:
            sp, nullable = _first(av, flags)
        elif op is C.BRANCH:
            sp, nullable = [], False
            for alt in av[1]:
                ap, an = _first(alt, flags)
                if ap is _ALWAYS:
                    return _ALWAYS, True
                sp.extend(ap)
                nullable = nullable or an
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", None)):
            lo, _hi, sub = av
            sp, nullable = _first(sub, flags)
            nullable = nullable or lo == 0
        else:
            return _ALWAYS, True
        if sp is _ALWAYS:
            return _ALWAYS, True
        preds.extend(sp)
        if not nullable:
            return preds, False
    return preds, True


def _first_pred(pattern: re.Pattern[str]) -> Any:
    """Predicate on the first character, or _ALWAYS."""
    if pattern.flags & re.IGNORECASE or not isinstance(pattern.pattern, str):
        return _ALWAYS
    try:
        from re import _parser as P  # type: ignore[attr-defined]

        tree = P.parse(pattern.pattern, pattern.flags)
        flags = pattern.flags | tree.state.flags
        if flags & re.IGNORECASE:
            return _ALWAYS
        preds, nullable = _first(tree, flags)
    except Exception:  # noqa: BLE001 - unknown construct: always a candidate
        return _ALWAYS
    if preds is _ALWAYS or nullable:
        return _ALWAYS
    return lambda c: any(p(c) for p in preds)


class _StateDispatch(dict):
    """char -> segments of the rules that can start with that char ('' = end of text)."""

    def __init__(self, rules: list[Any], cache: dict[tuple[int, ...], Any]) -> None:
        super().__init__()
        self.rules = rules
        self.preds = [_first_pred(r[0].__self__) for r in rules]
        self.cache = cache

    def __missing__(self, c: str) -> Any:
        if c == "":
            idx = tuple(i for i, p in enumerate(self.preds) if p is _ALWAYS)
        else:
            idx = tuple(i for i, p in enumerate(self.preds) if p is _ALWAYS or p(c))
        key = (id(self.rules), idx)
        segs = self.cache.get(key)
        if segs is None:
            segs = _compile_state([self.rules[i] for i in idx])
            self.cache[key] = segs
        self[c] = segs
        return segs


class _Program(dict):
    """state name -> _StateDispatch, filled lazily."""

    def __init__(self, tokendefs: dict[str, Any]) -> None:
        super().__init__()
        self.tokendefs = tokendefs
        self.cache: dict[tuple[int, ...], Any] = {}

    def __missing__(self, state: str) -> Any:
        disp = _StateDispatch(self.tokendefs[state], self.cache)
        self[state] = disp
        return disp


def _fast_capable(lexer: Any) -> bool:
    from pygments.lexer import RegexLexer

    cls = type(lexer)
    if not isinstance(lexer, RegexLexer) or getattr(lexer, "filters", None):
        return False
    owner = next((k for k in cls.__mro__ if "get_tokens_unprocessed" in k.__dict__), None)
    if owner is RegexLexer:
        return True
    try:
        from pygments.lexers.c_cpp import CFamilyLexer
    except ImportError:  # pragma: no cover
        return False
    return owner is CFamilyLexer


def _program(lexer: Any) -> _Program:
    cls = type(lexer)
    prog = _PROGRAMS.get(cls)
    if prog is None:
        prog = _Program(lexer._tokens)
        _PROGRAMS[cls] = prog
    return prog


def split_code_comment(lexer: Any, text: str, comment_types: frozenset[Any]) -> tuple[str, str]:
    """``("".join(code values), "".join(comment values))`` of ``lexer.get_tokens(text)``."""
    if not _fast_capable(lexer):
        code_parts: list[str] = []
        comment_parts: list[str] = []
        for ttype, value in lexer.get_tokens(text):
            (comment_parts if ttype in comment_types else code_parts).append(value)
        return "".join(code_parts), "".join(comment_parts)
    text = lexer._preprocess_lexer_input(text)
    return _run(lexer, text, comment_types)


class _FastProxy:
    """Stands in for the lexer inside callbacks: ``using(this)`` re-lexes a sub-match via
    ``lexer.get_tokens_unprocessed(text, stack)``, which the proxy serves with the fast
    dispatch (same tokens; C-family ``Name`` re-labelling is skipped, it never turns a
    token into a comment).  Every other attribute is the real lexer's."""

    __slots__ = ("_lexer", "_prog")

    def __init__(self, lexer: Any, prog: Any) -> None:
        self._lexer = lexer
        self._prog = prog

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lexer, name)

    def get_tokens_unprocessed(self, text: str, stack: Any = ("root",)) -> Any:
        return _gen(self, self._prog, text, stack)


def _apply_state(statestack: list[str], new_state: Any) -> None:
    if isinstance(new_state, tuple):
        for state in new_state:
            if state == "#pop":
                if len(statestack) > 1:
                    statestack.pop()
            elif state == "#push":
                statestack.append(statestack[-1])
            else:
                statestack.append(state)
    elif isinstance(new_state, int):
        if abs(new_state) >= len(statestack):
            del statestack[1:]
        else:
            del statestack[new_state:]
    elif new_state == "#push":
        statestack.append(statestack[-1])
    else:
        raise AssertionError(f"wrong state def: {new_state!r}")


def _gen(proxy: _FastProxy, prog: Any, text: str, stack: Any) -> Any:
    """Generator twin of ``RegexLexer.get_tokens_unprocessed`` on the fast dispatch."""
    from pygments.token import Error, Whitespace

    pos = 0
    statestack = list(stack)
    disp = prog[statestack[-1]]
    end = len(text)
    while 1:
        for seg_match, table, single in disp[text[pos]] if pos < end else disp[""]:
            m = seg_match(text, pos)
            if m:
                if single is None:
                    action, new_state, rexmatch, is_tok = table[m.lastindex]
                    if action is not None:
                        if is_tok:
                            yield pos, action, m.group()
                        else:
                            yield from action(proxy, rexmatch(text, pos))
                else:
                    action, new_state, rexmatch, is_tok = single
                    if action is not None:
                        if is_tok:
                            yield pos, action, m.group()
                        else:
                            yield from action(proxy, m)
                pos = m.end()
                if new_state is not None:
                    _apply_state(statestack, new_state)
                    disp = prog[statestack[-1]]
                break
        else:
            if pos >= end:
                break
            if text[pos] == "\n":
                statestack = ["root"]
                disp = prog["root"]
                yield pos, Whitespace, "\n"
                pos += 1
                continue
            yield pos, Error, text[pos]
            pos += 1


# ------------------------------------------------------------------ callbacks
# Pygments' ``bygroups(...)`` and ``using(...)`` actions are closures; their generator
# round trips (and ``using``'s re-lexing of tiny groups such as whitespace, thousands of
# times per file in C) cost as much as the rest of the split.  They are run natively here:
# ``bygroups`` group by group, and each ``using`` sub-lex through the fast dispatch (also
# for *other* lexers, e.g. JavaScript/CSS inside HTML, which Pygments re-instantiates per
# call), memoised by (callback, text) for short texts: a sub-lex depends only on them.
_BYGROUPS = "bygroups.<locals>.callback"
_USING = "using.<locals>.callback"
_PLANS: dict[int, tuple[Any, Any]] = {}  # id(callback) -> (callback, plan)
_SUB_MEMO: dict[tuple[int, str], tuple[str, str]] = {}
_SUB_MEMO_MAX_TEXT = 256
_SUB_MEMO_MAX_ENTRIES = 200_000


def _closure_vars(fn: Any) -> dict[str, Any]:
    cells = fn.__closure__ or ()
    return {name: cell.cell_contents for name, cell in zip(fn.__code__.co_freevars, cells, strict=False)}


def _plan(action: Any, lexer: Any) -> Any:
    """("bygroups", args) | ("using", sub_lexer_or_None, stack) | None (call it as is)."""
    entry = _PLANS.get(id(action))
    if entry is not None and entry[0] is action:
        return entry[1]
    plan: Any = None
    qualname = getattr(action, "__qualname__", "")
    try:
        cv = _closure_vars(action)
    except (AttributeError, ValueError):
        cv = {}
    if qualname == _BYGROUPS and isinstance(cv.get("args"), tuple):
        plan = ("bygroups", cv["args"])
    elif qualname == _USING and isinstance(cv.get("gt_kwargs"), dict) and isinstance(cv.get("kwargs"), dict):
        stack = tuple(cv["gt_kwargs"].get("stack", ("root",)))
        if "_other" not in cv:  # using(this)
            if not cv["kwargs"]:
                plan = ("using", None, stack)
        else:  # using(OtherLexer, **kwargs): Pygments builds _other(**kwargs, **options)
            other = cv["_other"]
            sub = other(**{**cv["kwargs"], **getattr(lexer, "options", {})})
            plan = ("using", sub, stack)
    _PLANS[id(action)] = (action, plan)
    return plan


def _sub_split(
    action: Any, plan: Any, proxy: Any, data: str, comment_types: frozenset[Any]
) -> tuple[str, str]:
    """(code, comment) of a ``using`` callback's tokens for ``data`` (memoised)."""
    key = (id(action), data)
    if len(data) <= _SUB_MEMO_MAX_TEXT:
        hit = _SUB_MEMO.get(key)
        if hit is not None:
            return hit
    _kind, sub, stack = plan
    if sub is None:
        tokens = _gen(proxy, proxy._prog, data, stack)
    elif _fast_capable(sub):
        prog = _program(sub)
        tokens = _gen(_FastProxy(sub, prog), prog, data, stack)
    else:
        tokens = sub.get_tokens_unprocessed(data, stack=stack)
    code: list[str] = []
    comment: list[str] = []
    for _i, t, v in tokens:
        (comment if t in comment_types else code).append(v)
    result = ("".join(code), "".join(comment))
    if len(data) <= _SUB_MEMO_MAX_TEXT:
        if len(_SUB_MEMO) >= _SUB_MEMO_MAX_ENTRIES:
            _SUB_MEMO.clear()
        _SUB_MEMO[key] = result
    return result


def _callback_parts(
    action: Any, proxy: Any, m: Any, comment_types: frozenset[Any], code_append: Any, comment_append: Any
) -> None:
    """Append the token values of ``action(proxy, m)`` to code/comment, in order.  A
    ``bygroups`` group whose action is itself a callback is handled recursively, on the
    group's text (the ``_PseudoMatch`` Pygments passes it)."""
    plan = _plan(action, proxy._lexer)
    if plan is None:
        for _i, t, v in action(proxy, m):
            (comment_append if t in comment_types else code_append)(v)
    elif plan[0] == "using":
        code, comment = _sub_split(action, plan, proxy, m.group(), comment_types)
        if code:
            code_append(code)
        if comment:
            comment_append(comment)
    else:  # bygroups
        for i, act in enumerate(plan[1], 1):
            if act is None:
                continue
            data = m.group(i)
            if type(act) is TokenType:
                if data:
                    (comment_append if act in comment_types else code_append)(data)
            elif data is not None:
                sub_match = _PseudoMatch(m.start(i), data)
                _callback_parts(act, proxy, sub_match, comment_types, code_append, comment_append)


def _run(lexer: Any, text: str, comment_types: frozenset[Any]) -> tuple[str, str]:
    """Sort token values into code/comment.  Consecutive plain (non-callback) code tokens
    are contiguous slices of ``text``, so they are kept as one pending run
    ``text[run_start:pos]`` and only sliced out when a comment, a callback or a dropped
    match (``action is None``) interrupts them."""
    from pygments.token import Error, Whitespace

    prog = _program(lexer)
    proxy = _FastProxy(lexer, prog)
    code_parts: list[str] = []
    comment_parts: list[str] = []
    code_append = code_parts.append
    comment_append = comment_parts.append
    pos = 0
    run_start = 0
    statestack = ["root"]
    disp = prog["root"]
    end = len(text)
    nl_is_comment = Whitespace in comment_types
    err_is_comment = Error in comment_types
    while 1:
        for seg_match, table, single in disp[text[pos]] if pos < end else disp[""]:
            m = seg_match(text, pos)
            if m:
                if single is None:
                    action, new_state, rexmatch, is_tok = table[m.lastindex]
                else:
                    action, new_state, rexmatch, is_tok = single
                if is_tok:
                    if action in comment_types:
                        if run_start < pos:
                            code_append(text[run_start:pos])
                        comment_append(m.group())
                        run_start = m.end()
                else:
                    if run_start < pos:
                        code_append(text[run_start:pos])
                    if action is not None:
                        _callback_parts(
                            action, proxy, m if single is not None else rexmatch(text, pos),
                            comment_types, code_append, comment_append,
                        )
                    run_start = m.end()
                pos = m.end()
                if new_state is not None:
                    _apply_state(statestack, new_state)
                    disp = prog[statestack[-1]]
                break
        else:
            if pos >= end:
                break
            if text[pos] == "\n":
                statestack = ["root"]
                disp = prog["root"]
                is_comment = nl_is_comment
            else:
                is_comment = err_is_comment
            if is_comment:
                if run_start < pos:
                    code_append(text[run_start:pos])
                comment_append(text[pos])
                run_start = pos + 1
            pos += 1
    if run_start < pos:
        code_append(text[run_start:pos])
    return "".join(code_parts), "".join(comment_parts)


def lex_until_root(lexer: Any, text: str, pos: int, comment_types: frozenset[Any]) -> int | None:
    """Lex ``text`` from ``pos`` in the root state, exactly as :func:`split_code_comment`
    would from a token boundary there, until the state stack is back to ``["root"]``
    after the first token; return that position.  None if a comment (or a callback
    yielding one) is met on the way, or the lexer is not one the fast dispatch serves.

    Used to check, token by token, where Pygments ends a string literal."""
    if not _fast_capable(lexer):
        return None
    prog = _program(lexer)
    proxy = _FastProxy(lexer, prog)
    statestack = ["root"]
    disp = prog["root"]
    end = len(text)
    first = True
    while first or len(statestack) > 1:
        first = False
        for seg_match, table, single in disp[text[pos]] if pos < end else disp[""]:
            m = seg_match(text, pos)
            if m:
                if single is None:
                    action, new_state, rexmatch, is_tok = table[m.lastindex]
                else:
                    action, new_state, rexmatch, is_tok = single
                if is_tok:
                    if action in comment_types:
                        return None
                elif action is not None:
                    for _i, t, _v in action(proxy, m if single is not None else rexmatch(text, pos)):
                        if t in comment_types:
                            return None
                pos = m.end()
                if new_state is not None:
                    _apply_state(statestack, new_state)
                    disp = prog[statestack[-1]]
                break
        else:
            if pos >= end:
                return pos
            if text[pos] == "\n":
                return pos + 1  # error recovery (root after this newline): never a quote's end
            pos += 1  # an Error token (not a comment); the state is unchanged
    return pos


# --------------------------------------------------------------------------- JSON
# Pygments' JsonLexer is a per-character Python loop.  Its only comment tokens start at
# a "/" met outside a string, so when the scan below finds no such "/", the split is
# (whole text, "") -- every character is yielded exactly once, in order.  The string
# pattern follows the lexer's escape handling exactly: after "\" one character is
# consumed, except "\u", which consumes up to four hex digits plus, if a non-hex
# character cuts it short, that character too (even a quote).  An unterminated string
# runs to the end of the text as an Error token, so whatever the scan finds after it
# cannot be a comment either (finding a "/" there only costs the slow path).
_JSON_HEX = "0-9a-fA-F"
_JSON_STRING_OR_SLASH_RE = re.compile(
    rf'"[^"\\]*(?:\\(?:u(?:[{_JSON_HEX}]{{4}}|[{_JSON_HEX}]{{0,3}}[^{_JSON_HEX}])|[^u])[^"\\]*)*"|/'
)


def split_json_fast(lexer: Any, text: str) -> tuple[str, str] | None:
    """``(text, "")`` for Pygments' JsonLexer when no comment can start; None otherwise."""
    if type(lexer).__name__ != "JsonLexer" or getattr(lexer, "filters", None):
        return None
    text = lexer._preprocess_lexer_input(text)
    if "/" in text:
        for m in _JSON_STRING_OR_SLASH_RE.finditer(text):
            if m.group() == "/":
                return None
    return text, ""
