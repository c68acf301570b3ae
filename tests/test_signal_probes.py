"""Behaviour probes of the signals and the filter, and fast-path equivalence checks.

Split from ``test_signals_conformance.py``: none of these needs the reference's numbers;
the equivalence checks use the vendored reference *files* (``tests/data/reference``) only
as extra real inputs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from opencoder_assets.core.filtering import apply_filters, compute_signals
from opencoder_assets.core.signals import SignalCompat
from tests.conftest import REFERENCE_DATA

RAW_CODE = REFERENCE_DATA / "raw_code"


# ----------------------------------------------------------------- behaviour probes
def sig(text: str, lang: str = "python", *, filename: str | None = None, doc_type: str = "code",
        compat: SignalCompat | None = None) -> dict[str, Any]:
    ext = {"python": "py", "go": "go", "csharp": "cs", "javascript": "js", "html": "html"}.get(lang, "txt")
    fn = filename or f"file.{ext}"
    return compute_signals(
        text, program_lang=lang, doc_type=doc_type, ext=fn.rsplit(".", 1)[-1] if "." in fn else "",
        filename=fn, size_bytes=len(text.encode()), compat=compat or SignalCompat(),
    )


def test_probe_lines() -> None:
    s = sig("ab\ncd")
    assert (s["qsc_code_num_lines"], s["qsc_code_num_chars_line_max"], s["qsc_code_num_chars_line_mean"]) == (2, 3, 2.5)
    s = sig("ab\ncd\n")
    assert (s["qsc_code_num_lines"], s["qsc_code_num_chars_line_max"], s["qsc_code_num_chars_line_mean"]) == (2, 3, 3.0)
    assert sig("ab\n\n\ncd\n")["qsc_code_num_lines"] == 4


def test_probe_go_testfile() -> None:
    src = "package main\n\nfunc TestX(t *testing.T) {\n}\n"
    assert sig(src, "go", filename="main_test.go")["qsc_codego_cate_testfile"] == 1.0
    assert sig(src, "go", filename="main_test")["qsc_codego_cate_testfile"] == 0.0
    stem_bug = SignalCompat(go_testfile_stem_bug=True)
    assert sig(src, "go", filename="main_test.go", compat=stem_bug)["qsc_codego_cate_testfile"] == 0.0


def test_probe_var_zero_go_csharp() -> None:
    go_src = "package main\n\nfunc f() {\n}\n"
    cs_src = "class A {\n  void F() {}\n}\n"
    assert sig(go_src, "go")["qsc_codego_cate_var_zero"] == 0.0
    assert sig(cs_src, "csharp")["qsc_codecsharp_cate_var_zero"] == 0.0
    fixed = SignalCompat(var_zero_always_false=False)
    assert sig(go_src, "go", compat=fixed)["qsc_codego_cate_var_zero"] == 1.0
    assert sig(cs_src, "csharp", compat=fixed)["qsc_codecsharp_cate_var_zero"] == 1.0
    assert sig("package main\nx := 1\n", "go", compat=fixed)["qsc_codego_cate_var_zero"] == 0.0


def test_probe_pass_substring() -> None:
    assert sig('x = "password"\npass\n')["qsc_codepython_frac_lines_pass"] == 1.0
    fixed = SignalCompat(python_pass_substring=False)
    assert sig('x = "password"\npass\n', compat=fixed)["qsc_codepython_frac_lines_pass"] == 0.5


def test_probe_prompt_comments_denominator() -> None:
    assert sig("# TODO fix\nx=1\n\n\n")["qsc_code_frac_lines_prompt_comments"] == 0.25


def test_probe_autogen_bare_generate() -> None:
    assert sig("Copyright 2020 generated\nx=1\n")["qsc_code_cate_autogen"] == 1.0
    fixed = SignalCompat(autogen_bare_generate=False)
    assert sig("Copyright 2020 generated\nx=1\n", compat=fixed)["qsc_code_cate_autogen"] == 0.0
    assert sig("# This file is auto-generated\n", compat=fixed)["qsc_code_cate_autogen"] == 1.0


def test_probe_js_optional_chaining_fails() -> None:
    assert sig("const f = (a) => a?.b;\n", "javascript")["qsc_codejavascript_cate_ast"] == 0.0
    assert sig("var f = function (a) { return a; };\n", "javascript")["qsc_codejavascript_cate_ast"] == 1.0


def test_probe_python2_print() -> None:
    assert sig('print "hi"\n')["qsc_codepython_cate_ast"] == 0.0


def test_probe_html_get_text() -> None:
    html = (
        "<html><head><style>p{color:red}</style><script>var x=1;</script><title>T</title></head>"
        "<!-- comment --><body><p>Hello</p></body></html>"
    )
    assert sig(html, "html")["qsc_codehtml_num_chars_text"] == len("THello")


def test_per_signal_failure_only_nulls_that_signal() -> None:
    from opencoder_assets.core.signals import CODE_SIGNALS

    def boom(_doc: Any) -> float:
        raise RecursionError("deep")

    idx = next(i for i, (n, _) in enumerate(CODE_SIGNALS) if n == "qsc_code_frac_chars_comments")
    original = CODE_SIGNALS[idx]
    CODE_SIGNALS[idx] = ("qsc_code_frac_chars_comments", boom)
    try:
        s = sig("import os\n\nx = 1\n")
    finally:
        CODE_SIGNALS[idx] = original
    assert s["qsc_code_frac_chars_comments"] is None
    assert s["qsc_code_cate_xml_start"] == 0.0  # later signals of the group still computed
    assert s["qsc_codepython_cate_ast"] == 1.0


def test_excluded_and_unknown_doc_types() -> None:
    assert sig("x = 1\n", doc_type="excluded") == {}
    for dt in ("excluded", "unknown"):
        d = apply_filters({}, program_lang="csv", doc_type=dt, lang="en", file_id="f")
        assert not d.keep and d.hits == [f"doc_type_{dt}"]


# ------------------------------------------------------------------ seeded drops
def _no_logic_signals() -> dict[str, Any]:
    return {"qsc_codepython_score_lines_no_logic": 0.9}


def test_seeded_drop_is_deterministic() -> None:
    kw = dict(program_lang="python", doc_type="code", lang="en")
    for i in range(50):
        a = apply_filters(_no_logic_signals(), file_id=f"repo/f{i}.py", seed=7, **kw)
        b = apply_filters(_no_logic_signals(), file_id=f"repo/f{i}.py", seed=7, **kw)
        assert a == b


def test_seeded_drop_rate_about_80_percent() -> None:
    kw = dict(program_lang="python", doc_type="code", lang="en")
    n = 5000
    dropped = sum(not apply_filters(_no_logic_signals(), file_id=f"id{i}", **kw).keep for i in range(n))
    assert 0.77 < dropped / n < 0.83
    # a different seed gives a different (but equally distributed) subset
    other = [apply_filters(_no_logic_signals(), file_id=f"id{i}", seed=1, **kw).keep for i in range(200)]
    base = [apply_filters(_no_logic_signals(), file_id=f"id{i}", seed=0, **kw).keep for i in range(200)]
    assert other != base


def test_random_modes() -> None:
    kw = dict(program_lang="python", doc_type="code", lang="en", file_id="x")
    assert not apply_filters(_no_logic_signals(), random_mode="strict", **kw).keep
    assert apply_filters(_no_logic_signals(), random_mode="lenient", **kw).keep
    below = {"qsc_codepython_score_lines_no_logic": 0.4}
    assert apply_filters(below, random_mode="strict", **kw).keep


def test_compat_is_frozen_dataclass() -> None:
    c = SignalCompat()
    assert dataclasses.replace(c, autogen_bare_generate=False) != c


# ------------------------------------------------------------------ fast-path equivalence
# The optimised paths (lexfast dispatch, regex comment scan, statement-only AST walks, int
# n-gram keys) must give exactly what the straightforward implementations give.  These do
# not need the reference data, only Pygments / the stdlib.

_EQUIV_LANGS = ("python", "c", "cpp", "javascript", "java", "go", "csharp", "html", "shell", "sql", "typescript")

_EDGE_PY = [
    "x = 1  # c1\ny = '#not' + \"#no\"  # c2 ' \"\n",
    's = """a # b\n\'\'\' # c\n"""  # real\nt = \'\'\'x "# y" \'\'\'\n',
    "a = 'it\\'s # no'  # yes\nb = \"q\\\"# no\"\n",
    "x = ('a'  # one\n     'b')  # two\n#only\n",
    "f = f'{x!r:>10} # no'  # c\nr = rb'\\\\'  # c\nu = r'\\'#'\n",
    "s = 'abc\\\n# still string'\n# comment\n",
    "def f():\n    '''doc # x'''\n    return 1  # r\n",
    "#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n",
    "x = '''\\''''  # tricky\n",
    "",
    "no comments here\n",
]


def _texts_for_equivalence() -> list[tuple[str, str]]:
    out = [("python", t) for t in _EDGE_PY]
    raw = sorted(p for p in RAW_CODE.glob("*/*") if p.is_file())
    assert len(raw) == 120, f"{RAW_CODE}: expected 120 reference files, found {len(raw)}"
    for path in raw:  # the folder names are the program languages (python/, go/, ...)
        out.append((path.parent.name, path.read_text(encoding="utf-8")))
    return out


def _pygments_split(lexer: Any, text: str, comment_types: frozenset[Any]) -> tuple[str, str]:
    code, comment = [], []
    for ttype, value in lexer.get_tokens(text):
        (comment if ttype in comment_types else code).append(value)
    return "".join(code), "".join(comment)


def test_lexfast_split_equals_pygments() -> None:
    from opencoder_assets.core.signals.document import _comment_types, _get_lexer
    from opencoder_assets.core.signals.lexfast import split_code_comment

    ct = _comment_types()
    texts = _texts_for_equivalence()
    checked = 0
    for _lang, text in texts:
        for lang in _EQUIV_LANGS:  # every text through every lexer: many more states/paths
            lexer = _get_lexer(lang)
            assert lexer is not None
            assert split_code_comment(lexer, text, ct) == _pygments_split(lexer, text, ct), lang
            checked += 1
    assert checked >= len(_EQUIV_LANGS) * len(_EDGE_PY)


def test_python_comment_scan_equals_tokenize() -> None:
    import ast
    import warnings

    from opencoder_assets.core.signals.code import _python_comments, _python_comments_fast

    n = 0
    for _lang, text in _texts_for_equivalence():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ast.parse(text)
            except (SyntaxError, ValueError):
                continue
        if "\r" in text:
            continue
        try:
            ref = _python_comments(text)
        except Exception:  # noqa: BLE001
            ref = ""
        assert _python_comments_fast(text) == ref, text[:200]
        n += 1
    assert n >= len(_EDGE_PY) - 1


def test_statement_walk_matches_ast_walk_order() -> None:
    import ast
    import warnings

    from opencoder_assets.core.signals.code import walk_statements

    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef, ast.Assign, ast.For)
    src = (
        "class A:\n    x = 1\n    def f(self):\n        '''d'''\n        class B:\n            y: int = 2\n"
        "try:\n    def g(): pass\nexcept E:\n    def h(): return 1\nelse:\n    z = 3\nfinally:\n"
        "    for i in r:\n        def k(): '''kd'''\n"
        "match v:\n    case 1:\n        def m(): pass\n"
        "while c:\n    async def a(): pass\nelse:\n    w = 4\n"
    )
    texts = [src] + [t for lang, t in _texts_for_equivalence() if lang == "python"]
    for text in texts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                tree = ast.parse(text)
            except (SyntaxError, ValueError):
                continue
        full = [n for n in ast.walk(tree) if isinstance(n, kinds)]
        fast = [n for n in walk_statements(tree) if isinstance(n, kinds)]
        assert fast == full


def test_int_ngram_keys_equal_tuple_ngrams() -> None:
    from collections import Counter

    from opencoder_assets.core.signals import CodeDocument
    from opencoder_assets.core.signals.ngrams import frac_chars_dupe_ngrams, frac_chars_top_ngram

    def naive_top(words: list[str], n: int) -> float:
        grams = list(zip(*(words[i:] for i in range(n)), strict=False))
        if not grams:
            return 0.0
        gram, count = Counter(grams).most_common(1)[0]
        if count <= 1:
            return 0.0
        return round(sum(map(len, gram)) * count / sum(map(len, words)), 8)

    def naive_dupe(words: list[str], n: int) -> float:
        if len(words) < n or not sum(map(len, words)):
            return 0.0
        grams = list(zip(*(words[i:] for i in range(n)), strict=False))
        counts = Counter(grams)
        covered = [False] * len(words)
        for i, g in enumerate(grams):
            if counts[g] > 1:
                for j in range(i, i + n):
                    covered[j] = True
        duped = sum(len(w) for w, c in zip(words, covered, strict=True) if c)
        return round(duped / sum(map(len, words)), 8)

    texts = [t for _l, t in _texts_for_equivalence()] + ["a b a b a b c", "x " * 40, "ab cd " * 7 + "ef"]
    for text in texts:
        doc = CodeDocument(text, program_lang="python", doc_type="code")
        words = doc.normalized_words
        for n in (2, 3, 4, 5, 7, 10, 3):  # out-of-order n exercises the key cache
            assert frac_chars_top_ngram(doc, n) == naive_top(words, n)
            assert frac_chars_dupe_ngrams(doc, n) == naive_dupe(words, n)
