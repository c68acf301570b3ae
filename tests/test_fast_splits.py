"""The fast code/comment splits (``signals/pysplit.py``, JSON in ``lexfast.py``) equal Pygments.

Wherever ``split_python_fast`` answers (it may decline with None), its answer must be
exactly ``"".join`` of the non-comment / comment token values of ``lexer.get_tokens``.
Checked on hand-written traps, on seeded random programs built from the constructs where
Pygments and the real tokenizer disagree, and on real stdlib modules.

The scan follows the 3.11 tokenizer, so production takes it only on Python < 3.12
(``FAST_PATH_AVAILABLE``).  Both sides of the comparison (a regex scan and Pygments) are
independent of the running interpreter, so these tests force the fast path on and run on
any Python; on 3.12+ they only feed it sources that 3.11 would read the same way (no
f-string using what PEP 701 newly allows), which is the fast path's precondition.
``test_production_switch_follows_python_version`` checks what production does on the
running Python.
"""

from __future__ import annotations

import ast
import io
import random
import sys
import tokenize
import warnings
from pathlib import Path
from typing import Any

import pytest

from opencoder_assets.core.signals import CodeDocument, pysplit
from opencoder_assets.core.signals.document import _comment_types, _get_lexer
from opencoder_assets.core.signals.pysplit import FAST_PATH_AVAILABLE, split_python_fast


@pytest.fixture()
def fast_path_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the fast path whatever the interpreter (it is off in production on 3.12+)."""
    monkeypatch.setattr(pysplit, "FAST_PATH_AVAILABLE", True)


LEXER = _get_lexer("python")
CT = _comment_types()


def fast_split(text: str) -> tuple[str, str] | None:
    """The fast path's (code, comment), or None where it declines."""
    got = split_python_fast(LEXER, text, CT)
    return None if got is None else got[:2]


def pygments_split(text: str) -> tuple[str, str]:
    code, comment = [], []
    for ttype, value in LEXER.get_tokens(text):
        (comment if ttype in CT else code).append(value)
    return "".join(code), "".join(comment)


def _no_pep701_fstrings(text: str) -> bool:
    """On 3.12+: does every f-string stay within what the 3.11 tokenizer accepted?  Rejects
    (conservatively) a nested string or f-string reusing an enclosing f-string's quote
    character, a comment, a backslash or (single-quoted) a newline inside a replacement
    field.  Always true before 3.12, where ``ast.parse`` enforces all of that itself."""
    if sys.version_info < (3, 12):
        return True
    quotes: list[str] = []  # the quote of each open f-string, innermost last
    depths: list[int] = []  # open "{" of each, i.e. > 0 inside a replacement field
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.FSTRING_START:  # type: ignore[attr-defined]
                quote = tok.string.lstrip("rRbBuUfF")
                if any(q[0] == quote[0] for q in quotes):
                    return False
                quotes.append(quote)
                depths.append(0)
            elif tok.type == tokenize.FSTRING_END:  # type: ignore[attr-defined]
                quotes.pop()
                depths.pop()
            elif quotes and depths[-1] > 0:
                if tok.type == tokenize.STRING:
                    body = tok.string.lstrip("rRbBuUfF")
                    if "\\" in tok.string or any(q[0] == body[0] for q in quotes):
                        return False
                elif tok.type == tokenize.COMMENT or "\\" in tok.string:
                    return False
                elif tok.type in (tokenize.NL, tokenize.NEWLINE) and len(quotes[-1]) == 1:
                    return False
            if quotes and tok.type == tokenize.OP and tok.string in "{}":
                depths[-1] += 1 if tok.string == "{" else -1
    except (tokenize.TokenError, SyntaxError):
        return False
    return True


def parses(text: str) -> bool:
    """The fast path's precondition: Python 3.11 parses ``text``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ast.parse(text)
        except (SyntaxError, ValueError):
            return False
    return _no_pep701_fstrings(text)


# name -> (source, fast path expected to answer?)
TRAPS: dict[str, tuple[str, bool]] = {
    # Pygments ends a line-start """ string at the first """, ignoring the backslash
    "doc_escaped_quote": ('def f():\n    """a \\""" b"""  # c\n    return 1\n', False),
    # raw triple-quoted strings have no escape rule in Pygments
    "raw_triple_escaped": ('x = 1\nr"""a\\"""  # in the string for Python """\n', False),
    # Pygments' str.format rule {name[...]} runs over the closing quote
    "format_rule_crosses_quote": ('x = "{a[" + y  # c\nz = 1  # ]}"\n', False),
    "format_spec_crosses_quote": ('d = {"{:"<e}  # hi\n', False),
    # match/case statements: Pygments re-lexes the rest of the line on its own
    "match_statement": ("match x:\n    case 1:  # one\n        pass\n    case _:  # any\n        pass\n", False),
    "case_guard_underscore": ('match p:\n    case x if y == "_":  # note\n        pass\n', False),
    # line-start match/case that Pygments leaves at once: fast path still answers
    "match_attribute": ("match.group(1)  # c\ncase.x = 2  # d\n", True),
    "match_in_docstring": ('def f():\n    """Match\n    case insensitive _names_\n    """\n', True),
    "fstring_nested": ("x = f\"{a['#']!r:>{w}} # no\"  # yes\n", True),
    "fstring_triple_expr": ("x = f'''{\n\"\"\"doc\"\"\"\n}'''  # c\n", True),
    "keyword_then_string": ('if"x"in y:pass  # c\nz = 1if"a"else"b"  # d\n', True),
    "prefixed_docstrings": ('x = (\n    rb"""doc # x"""\n)\nRb\'\'\'d2\'\'\'\n', True),
    "f_prefix_is_not_doc": ('f"""not doc {x}"""  # c\n', True),
    "continuation_then_doc": ('x = 1 + \\\n"""doc"""  # c\n', True),
    "blank_lines_then_doc": ('def f():\n\n    \n    """doc"""\n', True),
    "hashbang": ('#!/usr/bin/env python\n# c\nx = "#"\n', True),
    "percent_format": ('x = "%(a)s #" % d  # c\n', True),
    "escapes": ("x = \"a\\\"#\" + 'b\\'#'  # c\ny = b\"\\x00#\"  # d\n", True),
    "named_unicode_escape": ('x = "\\N{BULLET} # \\u2022"  # c\n', True),
    "leading_trailing_newlines": ("\n\n\nx = 1  # c\n\n\n", True),
    "yield_from_string": ('def g():\n    yield from "ab"  # c\n', True),
    "raw_single_escaped_quote": ('x = r"\\"#"  # c\n', True),
    "whitespace_prefix_doc": ('\t\f"""doc"""\n', True),
    "no_comment": ("x = 1\n", True),
    "empty": ("", True),
}


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_traps(name: str, fast_path_on: None) -> None:
    text, answers = TRAPS[name]
    assert parses(text), name
    got = fast_split(text)
    assert (got is not None) == answers, name
    if got is not None:
        assert got == pygments_split(text), name


# ------------------------------------------------------------------ random programs
_QUOTES = ['"', "'", '"""', "'''"]
_PREFIXES = ["", "r", "b", "rb", "Rb", "bR", "u", "U", "f", "F", "rf", "fR", "B", "R"]
_BODIES = [
    "a", "#", "# x", "{", "}", "{{", "}}", "{x}", "{x!r}", "{x:>{w}}", "{a[", "]}", "\\\\", "\\n",
    "\\'", '\\"', "%s", "%(k)s", "'", '"', " ", "\\N{BULLET}", "{0}", "{a.b[c]}", '{:"<e}', "_",
    "match", "\\\n",
]


def _string(rng: random.Random) -> str:
    quote = rng.choice(_QUOTES)
    body = "".join(rng.choice(_BODIES) for _ in range(rng.randint(0, 4)))
    if len(quote) == 1:
        body = body.replace("\\\n", "")
    return rng.choice(_PREFIXES) + quote + body + quote


def _expr(rng: random.Random) -> str:
    atoms = [lambda: _string(rng), lambda: "x", lambda: "1", lambda: "[1, 2]", lambda: "f(a, b=2)", lambda: "{'k': 1}"]
    out = rng.choice(atoms)()
    for _ in range(rng.randint(0, 2)):
        out += rng.choice([" + ", " if x else ", " == ", " % ", " in ", "if", "in"]) + rng.choice(atoms)()
    return out


def _line(rng: random.Random, ind: str) -> str:
    comment = rng.choice(["", "  # c", "  # ' \" {", "#x"])
    k = rng.random()
    if k < 0.4:
        return f"{ind}v = {_expr(rng)}{comment}"
    if k < 0.5:
        return f"{ind}{_string(rng)}{comment}"
    if k < 0.57:
        return f"{ind}# {rng.choice(_BODIES)}"
    if k < 0.64:
        return f"{ind}v = (\n{ind}    {_string(rng)}\n{ind}){comment}"
    if k < 0.7:
        return f"{ind}v = 1 + \\\n{ind}{_string(rng)}{comment}"
    if k < 0.8:
        return f"{ind}{rng.choice(['match.x', 'case'])} = {_expr(rng)}{comment}"
    return f"{ind}print({_expr(rng)}, {_expr(rng)}){comment}"


def _program(rng: random.Random) -> str:
    lines = ["#!/usr/bin/env python"] if rng.random() < 0.1 else []
    for _ in range(rng.randint(1, 8)):
        r = rng.random()
        if r < 0.2:
            lines.append("def f():")
            if rng.random() < 0.6:
                q = rng.choice(_QUOTES[2:])
                body = "".join(rng.choice(_BODIES) for _ in range(3))
                lines.append(f"    {rng.choice(_PREFIXES[:8])}{q}{body}{q}")
            lines.extend(_line(rng, "    ") for _ in range(rng.randint(1, 3)))
        elif r < 0.25:
            guard = rng.choice(["1", "_", 'x if y == "_"', '"a_b"'])
            lines += ["match v:", f"    case {guard}:{rng.choice(['', '  # c'])}", "        pass"]
        else:
            lines.append(_line(rng, ""))
    return "\n".join(lines) + rng.choice(["\n", ""])


def test_random_programs(fast_path_on: None) -> None:
    rng = random.Random(20261123)
    parsed = answered = 0
    for _ in range(6000):
        text = _program(rng)
        if not parses(text):
            continue
        parsed += 1
        got = fast_split(text)
        if got is None:
            continue
        answered += 1
        assert got == pygments_split(text), text
    assert parsed > 1500 and answered > 0.75 * parsed, (parsed, answered)


# ------------------------------------------------------------------ real modules
def _stdlib_modules(n: int) -> list[Path]:
    root = Path(ast.__file__).parent
    files = sorted(p for p in root.glob("*.py") if p.stat().st_size < 400_000)
    return random.Random(7).sample(files, min(n, len(files)))


def test_stdlib_modules_equal_pygments(fast_path_on: None) -> None:
    answered = total = 0
    for path in _stdlib_modules(60):
        text = path.read_text(encoding="utf-8")
        if "\r" in text or not parses(text):
            continue
        total += 1
        got = fast_split(text)
        if got is None:
            continue
        answered += 1
        assert got == pygments_split(text), path
    assert answered >= 0.9 * total > 0, (answered, total)


def test_document_uses_fast_path_and_falls_back(monkeypatch: Any, fast_path_on: None) -> None:
    """CodeDocument takes the fast path for parseable source and the full lexer otherwise;
    both give the Pygments split."""
    import opencoder_assets.core.signals.document as document

    calls: list[str] = []
    real_fast = document.split_python_fast

    def spy(*args: Any) -> Any:
        calls.append("fast")
        return real_fast(*args)

    monkeypatch.setattr(document, "split_python_fast", spy)
    valid = 'def f():\n    """doc"""\n    return 1  # one\n'
    py2 = 'print "hello"  # py2\nx = """doc"""\n'
    for text, expect_fast in ((valid, True), (py2, False)):
        calls.clear()
        doc = CodeDocument(text, program_lang="python", doc_type="code")
        assert (doc.code_content, doc.comment_content) == pygments_split(text)
        assert bool(calls) == expect_fast


# ------------------------------------------------------------------ JSON
JSON_LEXER = _get_lexer("json")


def _json_pygments(text: str) -> tuple[str, str]:
    code, comment = [], []
    for ttype, value in JSON_LEXER.get_tokens(text):
        (comment if ttype in CT else code).append(value)
    return "".join(code), "".join(comment)


@pytest.mark.parametrize(
    ("text", "answers"),
    [
        ('{"url": "https://x.org/a//b", "n": [1, 2.5, true, null]}\n', True),
        ('{"a": 1} // trailing comment\n', False),
        ('{"a": /* c */ 1}\n', False),
        ('{"esc": "q\\"//", "u": "\\u00e9//"}\n', True),
        ('{"cut": "\\u"/"}\n', True),  # \u cut short swallows the quote: "/ is inside
        ('{"open": "never closed //\n', False),
        ("", True),
    ],
)
def test_json_split(text: str, answers: bool) -> None:
    from opencoder_assets.core.signals.lexfast import split_json_fast

    got = split_json_fast(JSON_LEXER, text)
    assert (got is not None) == answers
    if got is not None:
        assert got == _json_pygments(text)


def test_json_split_random() -> None:
    from opencoder_assets.core.signals.lexfast import split_json_fast

    rng = random.Random(5)
    alphabet = list('"\\/u0aF{}[],: \n*tnf1.-xé')
    answered = 0
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
        got = split_json_fast(JSON_LEXER, text)
        if got is not None:
            answered += 1
            assert got == _json_pygments(text), repr(text)
    assert answered > 5000


# ------------------------------------------------------------------ other lexers (callbacks)
_HTML_DOC = """<!DOCTYPE html>
<html><head><title>t</title>
<style type="text/css">/* css comment */ body { color: red; } /* second */</style>
<script>
// js line comment
var x = "<!-- not a comment -->"; /* block */ function f(a) { return a; }
</script>
<!-- html comment --></head>
<body><p class="x">text</p><script type="text/javascript">let y = 1; // tail</script></body></html>
"""


@pytest.mark.parametrize("lang", ["c", "cpp", "html", "javascript", "java", "csharp", "css"])
def test_lexfast_callbacks_equal_pygments(lang: str) -> None:
    """bygroups/using callbacks (run natively, sub-lexes memoised) give Pygments' split,
    including nested lexers (JavaScript/CSS inside HTML)."""
    from opencoder_assets.core.signals.lexfast import split_code_comment

    lexer = _get_lexer(lang)
    texts = [_HTML_DOC, _HTML_DOC * 3] + [p.read_text(encoding="utf-8") for p in _stdlib_modules(12)]
    texts += ["#include <stdio.h>\n/* c */ int main(void) { return 0; } // x\n", "#if 0\n/* hidden */\n#endif\n"]
    for text in texts:
        code, comment = [], []
        for ttype, value in lexer.get_tokens(text):
            (comment if ttype in CT else code).append(value)
        assert split_code_comment(lexer, text, CT) == ("".join(code), "".join(comment)), (lang, text[:80])


def test_hash_comments_from_split_equal_tokenize(fast_path_on: None) -> None:
    """The ``#`` comments the fast split records are tokenize's COMMENT tokens."""
    from opencoder_assets.core.signals.code import _python_comments

    used = 0
    for path in _stdlib_modules(40):
        text = path.read_text(encoding="utf-8")
        if "\r" in text or not parses(text):
            continue
        doc = CodeDocument(text, program_lang="python", doc_type="code")
        if doc.python_hash_comments is None:
            continue
        used += 1
        assert "".join(doc.python_hash_comments).replace("#", "") == _python_comments(text), path
    assert used >= 30


def test_production_switch_follows_python_version() -> None:
    """Unforced, the fast path answers exactly on Python < 3.12; on 3.12+ CodeDocument
    falls back to the full lexer and still gives the Pygments split (and then leaves the
    ``#`` comments to the tokenize scan)."""
    assert FAST_PATH_AVAILABLE == (sys.version_info < (3, 12))
    text = 'def f():\n    """doc"""\n    return 1  # one\n'
    assert (fast_split(text) is not None) == FAST_PATH_AVAILABLE
    doc = CodeDocument(text, program_lang="python", doc_type="code")
    assert (doc.code_content, doc.comment_content) == pygments_split(text)
    assert (doc.python_hash_comments is not None) == FAST_PATH_AVAILABLE
