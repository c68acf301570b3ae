"""Seeded fuzz: the word-level signals of the fast word path equal the reference's slow path.

The fast paths in ``CodeDocument.normalized_words`` / ``normalized_wordpunct`` split the
normalized text on spaces when it is ASCII.  That is only right if no ASCII punctuation
survives normalization -- but NFKC runs *after* punctuation is replaced by spaces, so
``…`` (-> ``...``), ``‼``, ``⒈``, ``﹐`` ... bring punctuation back into otherwise ASCII text.
The slow path below transcribes the reference's per-line normalization (controls,
full->half punctuation, punctuation->space, lower, whitespace collapse, NFKC) and
``wordpunct_tokenize`` literally, and the signals are recomputed from its word list with
the RedPajama formulas; every generated text must give the same values, value for value.
"""

from __future__ import annotations

import math
import random
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable

from opencoder_assets.core.signals import CodeDocument, text
from opencoder_assets.core.signals.document import (
    _CONTROL_TO_NORM,
    WORDPUNCT_RE,
    _full_punct_to_half,
    normalize_text,
)

_HALF = _full_punct_to_half()
_PUNCT = set(string.punctuation)
_LINE_RE = re.compile(r"([^\n]*\n|[^\n]+$)")  # the reference's line splitter
_WS_RE = re.compile(r"\s+")


def reference_normalize(line: str) -> str:
    """The reference's ``normalize_text`` with the filter's options, one character at a time."""
    line = "".join(_CONTROL_TO_NORM.get(c, c) for c in line)
    line = "".join(_HALF.get(c, c) for c in line)
    line = "".join(" " if c in _PUNCT else c for c in line)
    line = line.lower()
    line = _WS_RE.sub(" ", line.strip())
    return unicodedata.normalize("NFKC", line)


def reference_words(doc_text: str) -> list[str]:
    """Per-line normalization, then ``wordpunct_tokenize`` per line, concatenated."""
    words: list[str] = []
    for line in _LINE_RE.findall(doc_text):
        words.extend(WORDPUNCT_RE.findall(reference_normalize(line)))
    return words


def _ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(words[i:] for i in range(n)), strict=False))


def _top_ngram(words: list[str], n: int) -> float:
    common = Counter(_ngrams(words, n)).most_common(1)
    if not common or common[0][1] <= 1:
        return 0.0
    gram, count = common[0]
    return round(sum(map(len, gram)) * count / sum(map(len, words)), 8)


def _dupe_ngrams(words: list[str], n: int) -> float:
    if len(words) < n:
        return 0.0
    grams = _ngrams(words, n)
    dupes = {g for g, c in Counter(grams).items() if c > 1}
    covered = [0] * len(words)
    for i, g in enumerate(grams):
        if g in dupes:
            covered[i : i + n] = [1] * n
    total = sum(map(len, words))
    if total == 0:
        return 0.0
    return round(float(sum(len(w) * c for w, c in zip(words, covered, strict=True)) / total), 8)


def reference_word_signals(words: list[str]) -> dict[str, float | int | None]:
    """The RedPajama formulas of every signal computed from the normalized words."""
    n = len(words)
    counts = Counter(words)
    out: dict[str, float | int | None] = {
        "qsc_doc_num_words": n,
        "qsc_doc_mean_word_length": None if n == 0 else round(float(sum(map(len, words))) / n, 8),
        "qsc_doc_frac_words_unique": None if n == 0 else round(float(len(set(words))) / n, 8),
        "qsc_doc_entropy_unigram": None
        if n == 0
        else round(sum(-x / n * math.log(x / n) for x in counts.values() if x > 0), 8),
    }
    for k in (2, 3, 4):
        out[f"qsc_doc_frac_chars_top_{k}grams"] = _top_ngram(words, k)
    for k in range(5, 11):
        out[f"qsc_doc_frac_chars_dupe_{k}grams"] = _dupe_ngrams(words, k)
    return out


_FAST: dict[str, Callable[[CodeDocument], object]] = dict(text.SIGNALS)

# --------------------------------------------------------------------- generator
ASCII_WORDS = ["loading", "Hello", "WORLD", "x1", "42", "_priv", "a", "ok", "can't", "e.g.", "v2.0"]
ASCII_PUNCT = ["...", ".", ",", "-", "--", "(", ")", "'", '"', "!", "?", ":", "#", "@", "/", "\\", "_", "*"]
ASCII_SPACE = [" ", " ", "  ", "\n", "\t", "\r\n", "\n\n"]
ASCII_CONTROL = ["\x08", "\x1b", "\x7f", "\x1c", "\x00", "\x0c", "\x0b"]
#: non-ASCII characters that normalization turns into ASCII (or removes/space): the
#: texts made only of these and ASCII are ASCII after normalization
TO_ASCII = [
    "…", "‥", "․", "‼", "⁇", "⁉", "ﬁ", "™", "①", "Ⅻ", "ＡＢＣ", "１２", "＃", "“", "”", "‘", "’",
    "\u2009", "\u200b", "\u202c", "\u00a0", "\u3000", "﹐", "︰", "²", "︳", "﹍", "ℌ", "㎏", "℡", "⒈",
    "⑴", "🄐", "㍱", "！", "，", "：", "＿", "「", "」", "【", "】", "《", "》", "、", "。",
]
#: non-ASCII characters that stay non-ASCII
OTHER = [
    "–", "—", "«", "»", "中文字", "привет", "ПРИВЕТ", "e\u0301", "\u0301", "😀", "👍🏽", "👨\u200d👩\u200d👧",
    "¿", "¡", "§", "©", "→", "½", "¼", "ß", "İ", "Σ", "ʼ", "ء", "؟", "हि", "\u200d", "\u2028", "\x85",
    "￥", "¨", "﹘", "Ω", "ﬀ", "日本語", "한국어", "\ufffd", "\u00ad",
]


def generate_texts(count: int, seed: int) -> list[str]:
    """Texts from three palettes: ASCII only, ASCII + to-ASCII Unicode, everything."""
    rng = random.Random(seed)
    ascii_only = ASCII_WORDS * 3 + ASCII_PUNCT + ASCII_SPACE * 3 + ASCII_CONTROL
    to_ascii = ascii_only + TO_ASCII * 2
    everything = to_ascii + OTHER * 2
    texts = []
    for i in range(count):
        palette = (ascii_only, to_ascii, to_ascii, everything)[i % 4]
        pieces = [rng.choice(palette) for _ in range(rng.randint(0, 60))]
        doc_text = "".join(pieces)
        if rng.random() < 0.25:  # repeated blocks: duplicate n-grams, >= 100 words (numpy path)
            doc_text = (doc_text + rng.choice(ASCII_SPACE)) * rng.randint(2, 12)
        texts.append(doc_text)
    return texts


def test_word_signals_fast_path_equal_reference_slow_path() -> None:
    texts = generate_texts(4000, seed=20240614)
    became_ascii_with_punct = long_docs = 0
    for doc_text in texts:
        words = reference_words(doc_text)
        doc = CodeDocument(doc_text, program_lang="markdown", doc_type="text")
        assert doc.normalized_words == words, repr(doc_text)
        for name, expected in reference_word_signals(words).items():
            assert _FAST[name](doc) == expected, (name, repr(doc_text))
        norm = normalize_text(doc_text)
        if not doc_text.isascii() and norm.isascii() and any(c in _PUNCT for c in norm):
            became_ascii_with_punct += 1
        long_docs += len(words) >= 100
    # the generator reaches the case the ASCII fast path used to get wrong, and the numpy path
    assert became_ascii_with_punct > 1000, became_ascii_with_punct
    assert long_docs > 300, long_docs


def test_ellipsis_splits_off_the_word() -> None:
    """The case of issue 14: ``loading…`` is two words, as in the reference."""
    doc = CodeDocument("Loading… please wait", program_lang="markdown", doc_type="text")
    assert doc.normalized_words == ["loading", "...", "please", "wait"]
    assert _FAST["qsc_doc_num_words"](doc) == 4
    assert _FAST["qsc_doc_mean_word_length"](doc) == round(20 / 4, 8)
