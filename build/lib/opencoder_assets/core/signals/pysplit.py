"""Fast Pygments-exact code/comment split for Python source that ``ast.parse`` accepts.

Pygments' ``PythonLexer`` spends most of its time on root-state tokens (names, keywords,
builtins, operators), which can never be comments.  On *valid* Python the only comment
tokens it produces are ``#`` comments (``Comment.Single``/``Comment.Hashbang``, always to
the end of the line) and ``String.Doc``: a triple-quoted string whose opening (after an
optional ``[rRuUbB]{,2}`` prefix) starts a line.  Both can only start outside string
literals, and between literals every root-state token is plain code.  So:

1. one C-level scan (``tokenize``'s string/comment rules, leftmost first) finds every
   string literal and ``#`` comment, exactly where the real tokenizer has them;
2. for each string literal, Pygments' own end is established: for a body without ``\\``
   and ``{`` it is, by Pygments' string rules, the same closing quote; otherwise the
   literal is re-lexed by the Pygments tables themselves (:func:`lexfast.lex_until_root`)
   from its prefix in the root state; for ``String.Doc`` candidates it is the first
   closing triple quote (Pygments' non-greedy ``(?:.|\\n)*?`` body);
3. if any end differs from the tokenizer's, or a line of code (not of a string) could
   open Pygments' ``soft-keywords-inner`` state (a ``match``/``case`` statement, whose
   line Pygments partly re-lexes), we return None and the caller runs the full lexer.

Every input where this returns a split was checked to be identical to
``lexer.get_tokens`` on every ``.py`` file of the machine (tests/test_signals_conformance).
"""

from __future__ import annotations

import re
import sys
from bisect import bisect_right
from typing import Any

from .lexfast import lex_until_root

__all__ = ["PY_STR_OR_COMMENT_RE", "split_python_fast"]

# Strings and comments of (syntactically valid) Python 3.11 source, leftmost first; triple
# quotes before single ones.  Bodies follow ``tokenize``'s Single3/Double3/ContStr rules: a
# backslash escapes any character (also a newline), single-quoted strings stop at a bare
# newline.  No other token can contain ``#``, ``'`` or ``"``.
PY_STR_OR_COMMENT_RE = re.compile(
    r"#[^\r\n]*"
    r"|'''[^'\\]*(?:(?:\\[\s\S]|'(?!''))[^'\\]*)*'''"
    r'|"""[^"\\]*(?:(?:\\[\s\S]|"(?!""))[^"\\]*)*"""'
    r"|'[^'\\\n]*(?:\\[\s\S][^'\\\n]*)*'"
    r'|"[^"\\\n]*(?:\\[\s\S][^"\\\n]*)*"'
)

_PREFIX_CHARS = frozenset("rRbBuUfF")
_DOC_PREFIX_CHARS = frozenset("rRuUbB")
#: f-strings inside f-strings may reuse the quote from 3.12 on (PEP 701); the scan above
#: follows the 3.11 tokenizer, so the fast path is only taken where ``ast.parse`` used it.
FAST_PATH_AVAILABLE = sys.version_info < (3, 12)

_SOFT_KEYWORD_RULES: tuple[re.Pattern[str], re.Pattern[str]] | None = None


def _soft_keyword_rules(lexer: Any) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The lexer's own rule entering ``soft-keywords-inner`` (line-start ``match``/``case``)
    and that state's only consuming rule ``(\\s+)([^\\n_]*)(_\\b)`` (which re-lexes the
    middle group on its own); the state's other rule pops without consuming anything."""
    global _SOFT_KEYWORD_RULES
    if _SOFT_KEYWORD_RULES is None:
        enter = [r for r in lexer._tokens["root"] if r[2] == ("soft-keywords-inner",)]
        inner = [r for r in lexer._tokens["soft-keywords-inner"] if r[0].__self__.pattern]
        if len(enter) != 1 or len(inner) != 1:
            raise RuntimeError("unexpected PythonLexer tables: soft-keyword rules changed")
        _SOFT_KEYWORD_RULES = (enter[0][0].__self__, inner[0][0].__self__)
    return _SOFT_KEYWORD_RULES


def _inside(spans: list[tuple[int, int]], pos: int) -> bool:
    """Is ``pos`` strictly inside one of the sorted, disjoint ``spans``?"""
    i = bisect_right(spans, (pos, _LEN_MAX)) - 1
    return i >= 0 and spans[i][0] < pos < spans[i][1]


_LEN_MAX = sys.maxsize


def _soft_keyword_lines(lexer: Any, text: str) -> list[int]:
    """Line starts where Pygments would enter ``soft-keywords-inner`` *and* consume
    something there (``enter`` matches and ``inner`` matches after it).  Only lines whose
    first word is ``match``/``case`` can, so those are found with ``str.find`` instead of
    trying the anchored pattern at every position."""
    enter, inner = _soft_keyword_rules(lexer)
    found: set[int] = set()
    for word in ("match", "case"):
        i = text.find(word)
        while i >= 0:
            line_start = text.rfind("\n", 0, i) + 1
            if line_start not in found and not text[line_start:i].strip(" \t"):
                m = enter.match(text, line_start)
                if m is not None and inner.match(text, m.end()):
                    found.add(line_start)
            i = text.find(word, i + len(word))
    return sorted(found)


def split_python_fast(
    lexer: Any, text: str, comment_types: frozenset[Any]
) -> tuple[str, str, list[str]] | None:
    """``(code, comment, hash_comments)``: the Pygments split plus the ``#`` comments in
    order (the scan finds exactly ``tokenize``'s COMMENT tokens, which the natural-text
    signal needs too); None when the full lexer must run.

    ``text`` must be source that ``ast.parse`` accepted and contain no ``\\r``."""
    if not FAST_PATH_AVAILABLE or type(lexer).__name__ != "PythonLexer":
        return None
    text = lexer._preprocess_lexer_input(text)
    soft = _soft_keyword_lines(lexer, text)
    spans: list[tuple[int, int]] = []  # comment token spans, in order
    strings: list[tuple[int, int]] = []  # string literal spans (for the soft-keyword check)
    for m in PY_STR_OR_COMMENT_RE.finditer(text):
        q, e = m.span()
        c = text[q]
        if c == "#":
            spans.append((q, e))
            continue
        # string prefix: the letters right before the quote, unless they end a longer
        # identifier (a keyword such as ``if"x"``)
        j = q
        if q and text[q - 1] in _PREFIX_CHARS:
            while j > 0 and text[j - 1] in _PREFIX_CHARS and q - j < 2:
                j -= 1
            if j > 0 and (text[j - 1] == "_" or text[j - 1].isalnum()):
                j = q
        prefix = text[j:q] if j < q else ""
        if soft:
            strings.append((q, e))
        # the scan tries triple quotes first, so a match of >= 6 chars opening with three
        # quotes is a triple-quoted literal (a 2-char match is the empty string)
        quote = c * 3 if e - q >= 6 and text.startswith(c * 3, q) else c
        if len(quote) == 3 and all(p in _DOC_PREFIX_CHARS for p in prefix):
            line_start = text.rfind("\n", 0, j) + 1
            if text[line_start:j].isspace() or line_start == j:
                # Pygments' docstring rule: ^(\s*)([rRuUbB]{,2})("""(?:.|\n)*?""")
                doc_end = text.find(quote, q + 3)
                if doc_end < 0 or doc_end + 3 != e:
                    return None
                spans.append((q, e))
                continue
        lo, hi = q + len(quote), e - len(quote)
        if text.find("\\", lo, hi) >= 0 or text.find("{", lo, hi) >= 0:
            if lex_until_root(lexer, text, j, comment_types) != e:
                return None
    if soft and not all(_inside(strings, s) for s in soft):
        return None  # a match/case statement: Pygments re-lexes part of that line
    hash_comments = [text[s:e] for s, e in spans if text[s] == "#"]
    if not spans:
        return text, "", hash_comments
    code_parts: list[str] = []
    comment_parts: list[str] = []
    pos = 0
    for s, e in spans:
        code_parts.append(text[pos:s])
        comment_parts.append(text[s:e])
        pos = e
    code_parts.append(text[pos:])
    return "".join(code_parts), "".join(comment_parts), hash_comments
