"""Fast paths inside signal computation give exactly the straightforward results.

Each optimisation in ``signals/`` replaces a regex or tokenizer call by something cheaper
that is only taken where it provably agrees; these tests compare both on real files of
this machine and on adversarial random strings built from the characters that matter.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from opencoder_assets.core.signals import CodeDocument
from opencoder_assets.core.signals import c as csig
from opencoder_assets.core.signals import code as codesig
from opencoder_assets.core.signals.document import WORDPUNCT_RE, normalize_text, normalized_wordpunct

STDLIB = Path(random.__file__).parent


def _real_texts(n: int) -> list[str]:
    files = sorted(STDLIB.glob("*.py"))[:n]
    return [p.read_text(encoding="utf-8", errors="replace") for p in files]


def _random_texts(fragments: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice(fragments) for _ in range(rng.randint(1, 60))) * rng.choice([1, 1, 1, 80])
        for _ in range(n)
    ]


# ---------------------------------------------------------------- cate_encoded_data
def _encoded_reference(text: str) -> float:
    score, matched = 0.0, 0
    found = [
        codesig._B64_RE.findall(text),
        codesig._ENCODED_RES[1].findall(text),
        codesig._UESC_RE.findall(text) if "\\u" in text else [],
    ]
    for matches in found:
        for m in matches:
            if len(m) > 1024:
                score = 1.0
            matched += len(m)
    if text and matched / len(text) > 0.5:
        score = 1.0
    return score


_ENCODED_FRAGMENTS = [
    "0x1f, ", "0xAB,", "\\x12", "\\x0a\\x0b", "de ad be ef ", "12 34 56 78 9a bc de f0 11 ",
    "ff,ff,ff,ff,ff,ff,ff,ff,ff", "QUJD" * 20, "\n", "é", "\u00a0", "ab", "x", "0", "\\", "  ",
    "a1b2", "=", "+/", "_", "\u2028", "\\u00e9" * 3,
]


def test_encoded_data_numpy_path_equals_regexes() -> None:
    texts = _real_texts(80) + _random_texts(_ENCODED_FRAGMENTS, 2500, seed=11)
    numpy_used = hex_possible = 0
    for text in texts:
        doc = CodeDocument(text, program_lang="c", doc_type="code")
        assert codesig.cate_encoded_data(doc) == _encoded_reference(text), text[:120]
        if len(text) >= codesig._ENCODED_NUMPY_MIN_CHARS:
            numpy_used += 1
            codes = np.frombuffer(text.encode("ascii", "replace"), dtype=np.uint8)
            assert codesig._b64_run_lengths(codes).tolist() == [len(m) for m in codesig._B64_RE.findall(text)]
            possible = codesig._hex_run_possible(codes)
            hex_possible += possible
            if codesig._ENCODED_RES[1].search(text):
                assert possible, text[:120]  # the numpy test is a necessary condition
    assert numpy_used > 200 and 0 < hex_possible < numpy_used  # both outcomes exercised


# ---------------------------------------------------------------- words / lines
def test_normalized_wordpunct_equals_regex() -> None:
    rng = random.Random(1)
    alphabet = [chr(c) for c in range(128)] + list("éß²½→©中。\u2009\u00a0_\x85\u0301٣")
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(10000)]
    for text in texts + _real_texts(40):
        norm = normalize_text(text)
        assert normalized_wordpunct(norm) == WORDPUNCT_RE.findall(norm), repr(text)


def test_dupe_lines_split_path_equals_regex_path() -> None:
    from collections import Counter

    rng = random.Random(2)
    pieces = ["x = 1", "  ", "\t", "\x1c", "\x1f", "\u00a0", "\u2028", "}", ",", "\n", "a b", "é"]
    for text in _random_texts(pieces, 1200, seed=3) + _real_texts(30):
        doc = CodeDocument(text, program_lang="c", doc_type="code")
        ref_counts = Counter(codesig._WS_RE.sub("", ln) for ln in doc.code_lines)
        total = sum(ref_counts.values())
        expected = None
        if doc.raw_lines and total:
            dup = sum(v for k, v in ref_counts.items() if v != 1 and k != "}," and len(k) != 1)
            expected = round(dup / total, 8)
        assert codesig.frac_lines_dupe_lines(doc) == expected
    assert rng is not None


# ---------------------------------------------------------------- C regexes
C_SNIPPETS = [
    "int x;\n", "unsigned int y ;\n", "static char *p = NULL, q[4];\n", "#include <stdio.h>\n",
    '  #  include "a.h"\n', "return 0;\n", "void f(int a) {\n", "}\n", "\x1c", "\u00a0", "é", "double z;",
    "std::string s;\n", "auto v = 3;\n", "/* c */", "class A : public B {\n",
]


@pytest.mark.parametrize("seed", [4, 5])
def test_c_var_zero_and_twins_equal_findall(seed: int) -> None:
    for text in _random_texts(C_SNIPPETS, 600, seed=seed):
        doc = CodeDocument(text, program_lang="c", doc_type="code")
        code = doc.code_content
        assert csig.cate_var_zero(doc, "c") == float(len(csig.VARIABLE_RE.findall(code)) == 0)
        for key, pattern in (("include", csig.INCLUDE_RE), ("simple_var", csig.SIMPLE_VAR_RE)):
            assert csig._count(doc, key, pattern) == len(pattern.findall(code)), (key, text)


def test_line_count_and_max_length_equal_split_lines() -> None:
    from opencoder_assets.core.signals.document import split_lines

    rng = random.Random(6)
    texts = _real_texts(20) + [
        "".join(rng.choice(["a", "\n", "é", "xyz" * rng.randint(1, 400), "\r"]) for _ in range(rng.randint(0, 60)))
        * rng.choice([1, 1, 30])
        for _ in range(4000)
    ]
    long_seen = 0
    for text in texts:
        doc = CodeDocument(text, program_lang="c", doc_type="code")
        lines = split_lines(text)
        assert doc.line_count == len(lines)
        assert doc.line_length_max == (max(map(len, lines)) if lines else 0)
        long_seen += len(text) >= 4096
    assert long_seen > 100  # the numpy branch ran


def test_dense_labels_equal_numpy_unique() -> None:
    from opencoder_assets.core.signals.ngrams import _dense_labels

    rng = np.random.default_rng(8)
    for n in (0, 1, 2, 7, 300, 5000):
        for high in (1, 3, n + 1, 1 << 40, 1 << 61):  # the last ones take the argsort branch
            keys = rng.integers(0, max(high, 1), n, dtype=np.int64)
            inverse, repeated = _dense_labels(keys)
            if n == 0:
                assert inverse.size == 0 and repeated.size == 0
                continue
            _, ref_inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
            assert (inverse == ref_inverse).all()
            assert (repeated == (counts[ref_inverse] > 1)).all()


def test_normalize_ascii_bytes_path_and_alpha_digit_counts() -> None:
    import unicodedata

    from opencoder_assets.core.signals import document as D

    def reference_normalize(text: str) -> str:
        text = " ".join(text.translate(D._NORMALIZE_TABLE).lower().split())
        return unicodedata.normalize("NFKC", text)

    rng = random.Random(9)
    alphabet = [chr(c) for c in range(128)] + list("éß²½٣Ⅻ中\u00a0\u2009")
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 50)))
        assert D.normalize_text(text) == reference_normalize(text), repr(text)
        doc = CodeDocument(text, program_lang="c", doc_type="code")
        vis = "".join(text.split())
        assert doc.alpha_digit_counts == (sum(map(str.isalpha, vis)), sum(map(str.isdigit, vis)))
        assert doc.num_whitespace == len(text) - len(vis) and doc.num_visible == len(vis)
        words = WORDPUNCT_RE.findall(reference_normalize(text))
        assert doc.normalized_words == words, repr(text)
        assert len(doc.word_id_map) == len(set(words))
        assert doc.total_word_chars == sum(map(len, words))


def test_python_ast_facts_equal_full_walk() -> None:
    """The single statement-level walk gives what full ``ast.walk`` passes give."""
    import ast

    from opencoder_assets.core.signals.code import PythonAstFacts

    def nested_classes(tree: ast.AST) -> set[int]:
        inner: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                inner.update(id(n) for n in ast.walk(node) if isinstance(n, ast.ClassDef) and n is not node)
        return inner

    checked = 0
    for text in _real_texts(120):
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        facts = PythonAstFacts(tree)
        nodes = list(ast.walk(tree))
        funcs = [n for n in nodes if isinstance(n, ast.FunctionDef)]
        assert facts.functions == len(funcs)
        assert facts.simple_functions == sum(len(f.body) == 1 and isinstance(f.body[0], ast.Return) for f in funcs)
        assert facts.classes == sum(isinstance(n, ast.ClassDef) for n in nodes)
        variables = {a.arg for f in funcs for a in f.args.args}
        variables |= {t.id for n in nodes if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        variables |= {n.target.id for n in nodes if isinstance(n, ast.For) and isinstance(n.target, ast.Name)}
        assert facts.variables == variables
        inner = nested_classes(tree)
        simple = 0
        for c in (n for n in nodes if isinstance(n, ast.ClassDef) and id(n) not in inner):
            for item in c.body:
                if isinstance(item, ast.Assign):
                    simple += sum(isinstance(t, ast.Name) for t in item.targets)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    simple += 1
        assert facts.class_simple_vars == simple
        kinds = (ast.Module, ast.ClassDef, ast.FunctionDef)
        docs = [ast.get_docstring(n) for n in nodes if isinstance(n, kinds)]
        assert facts.docstrings == [d for d in docs if d]
        checked += 1
    assert checked > 100


def test_non_blank_lines_equal_filtered_split_lines() -> None:
    from opencoder_assets.core.signals.document import non_blank_lines, split_lines

    rng = random.Random(10)
    pieces = ["a", " ", "\t", "\n", "\x0c", "\x1c", "\u00a0", "\u2028", "x y", ""]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))) for _ in range(20000)]
    for text in texts + _real_texts(10):
        assert non_blank_lines(text) == [ln for ln in split_lines(text) if ln.strip()], repr(text)
