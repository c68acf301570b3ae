"""Natural-language signals (``qsc_doc_*``), applied to ``doc_type == "text"`` documents."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from functools import partial

from .document import PRECISION, CodeDocument
from .ngrams import frac_chars_dupe_ngrams, frac_chars_top_ngram
from .stopwords import STOP_WORDS_EN

Value = float | int | bool | None

_SENT_RE = re.compile(r"\b[^.!?。！？؟]+[.!?。！？؟]*", flags=re.UNICODE)
_SENT_SPLIT_RE = re.compile(r"\.|\?|\!|\n")
_HEX_RE = re.compile(r"\b0[xX][0-9a-fA-F]+\b")
_LINK_RE = re.compile(r"\(https?://\S+\)")
_TAG_RE = re.compile(r"<.*?>")

BULLETS = (
    "\u2022", "\u2023", "\u2043", "\u204C", "\u204D", "\u2219", "\u25A0", "\u25A1", "\u25A2",
    "\u25A3", "\u25A4", "\u25A5", "\u25A6", "\u25A7", "\u25A8", "\u25A9", "\u25AA", "\u25AB",
    "\u25AC", "\u25AD", "\u25AE", "\u25AF", "\u25CB", "\u25CF", "\u25E6", "\u25C6", "\u25C7",
    "\u25C8", "\u25C9", "\u25CA", "\u25CB", "\u25D0", "\u25D1", "\u25D2", "\u25D3", "\u25D4",
    "\u25D5", "\u25D6", "\u25D8", "\u25D9", "\u25E2", "\u25E3", "\u25E4", "\u25E5", "\u25E6",
    "\u25EF", "\u2611", "\u2612", "\u2B1B", "\u2B1C", "\u2B24", "\u2B1E", "\u2B1F", "\u29BE",
)
READMORE = (
    "...", "…", "全文", "详情", "详细", "更多", "المزيد", "تفاصيل", "اقرأ المزيد", "もっと", "詳細", "もっと読む",
)
CODE_RELATED_FILE_NAMES = ("readme", "notes", "todo", "description", "cmakelists")


def r8(x: float) -> float:
    return round(x, PRECISION)


# ---------------------------------------------------------------- shared (doc + code)
def num_words(doc: CodeDocument) -> int:
    return len(doc.normalized_words)


def num_chars(doc: CodeDocument) -> float:
    return float(len(doc))


def mean_word_length(doc: CodeDocument) -> float | None:
    n = len(doc.normalized_words)
    return None if n == 0 else r8(float(doc.total_word_chars) / n)


def frac_words_unique(doc: CodeDocument) -> float | None:
    n = len(doc.normalized_words)
    return None if n == 0 else r8(float(len(doc.word_id_map)) / n)  # distinct words


def frac_chars_replacement_symbols(doc: CodeDocument) -> float | None:
    total = len(doc.text)
    return None if total == 0 else r8(doc.text.count("\ufffd") / total)


def frac_chars_digital(doc: CodeDocument) -> float:
    total = doc.num_visible
    if not total:
        return 1.0
    return r8(doc.alpha_digit_counts[1] / total)


def frac_chars_whitespace(doc: CodeDocument) -> float:
    total = len(doc.text)
    if not total:
        return 1.0
    return r8(doc.num_whitespace / total)


# --------------------------------------------------------------------- doc-only
def curly_bracket(doc: CodeDocument) -> float:
    t = doc.text
    if not t:
        return 0.0
    n = t.count("{") + t.count("}")
    return 0.0 if n == 0 else r8(float(n) / len(t))


def redpajama_stop(doc: CodeDocument) -> float | None:
    if doc.lang not in ("en", "fr", "es", "it", "de"):
        return None
    if doc.lang != "en":
        return None  # only the English list is bundled (documented deviation)
    if not doc.normalized_words:
        return 0.0
    raw = doc.raw_words
    n_stop = sum(1 for w in raw if w in STOP_WORDS_EN)
    return r8(float(n_stop) / len(raw))


def num_sentences(doc: CodeDocument) -> float:
    return float(len(_SENT_RE.findall(doc.text)))


def num_lines(doc: CodeDocument) -> float:
    return float(len(doc.raw_lines))


def frac_words_full_bracket(doc: CodeDocument) -> float | None:
    raw = doc.raw_words
    if not raw:
        return None
    return r8(sum(1 for w in raw if w in ("【", "】")) / len(raw))


def frac_lines_end_with_readmore(doc: CodeDocument) -> float | None:
    lines = doc.raw_lines
    if not lines:
        return None
    n = float(sum(ln.rstrip().rstrip("]】)>》").endswith(READMORE) for ln in lines))
    return r8(n / len(lines))


def frac_lines_start_with_bullet(doc: CodeDocument) -> float | None:
    lines = doc.raw_lines
    if not lines:
        return None
    n = float(sum(ln.lstrip().startswith(BULLETS) for ln in lines))
    return r8(n / len(lines))


def entropy_unigram(doc: CodeDocument) -> float | None:
    words = doc.normalized_words
    if not words:
        return None
    counts = Counter(words)
    total = sum(counts.values())
    ent = sum(-x / total * math.log(x / total) for x in counts.values() if x > 0)
    return r8(ent)


def frac_words_all_caps(doc: CodeDocument) -> float | None:
    raw = doc.raw_words
    if not raw:
        return None
    return r8(float(sum(map(str.isupper, raw))) / len(raw))


def doc_frac_lines_dupe_lines(doc: CodeDocument) -> float | None:
    if not doc.raw_lines:
        return None
    counts = Counter(s for s in (ln.strip() for ln in doc.raw_lines) if s)
    total = sum(counts.values())
    if total == 0:
        return None
    return r8(sum(v for v in counts.values() if v != 1) / total)


def doc_frac_chars_dupe_lines(doc: CodeDocument) -> float | None:
    if not doc.raw_lines:
        return None
    counts = Counter(ln.strip() for ln in doc.raw_lines)
    total = sum(len(k) * v for k, v in counts.items())
    if total == 0:
        return None
    return r8(sum(len(k) * v for k, v in counts.items() if v != 1) / total)


def code_related_file_name(doc: CodeDocument) -> float:
    stem = doc.filename.split(".")[0].lower()
    flag = "requirement" in stem or stem in CODE_RELATED_FILE_NAMES or stem == "read.me"
    return float(flag)


def sentence_length_mean(doc: CodeDocument) -> float | None:
    pieces = _SENT_SPLIT_RE.split(doc.text)
    if not pieces:
        return None
    return r8(sum(len(p) for p in pieces) / len(pieces))


def hyperlink_html_tag(doc: CodeDocument) -> float | None:
    total = len(doc.text)
    if total == 0:
        return None
    n = sum(len(m) for m in _LINK_RE.findall(doc.text)) + sum(len(m) for m in _TAG_RE.findall(doc.text))
    return r8(n / total)


def doc_frac_chars_alphabet(doc: CodeDocument) -> float | None:
    if not doc.num_visible:
        return 0.0
    if doc.lang != "en":
        return None
    return r8(doc.alpha_digit_counts[0] / doc.num_visible)


def doc_frac_chars_hex_words(doc: CodeDocument) -> float | None:
    total = len(doc.text)
    if total == 0:
        return None
    return r8(sum(len(m) for m in _HEX_RE.findall(doc.text)) / total)


SIGNALS: list[tuple[str, Callable[[CodeDocument], Value]]] = [
    ("qsc_doc_frac_chars_curly_bracket", curly_bracket),
    ("qsc_doc_frac_words_redpajama_stop", redpajama_stop),
    ("qsc_doc_num_sentences", num_sentences),
    ("qsc_doc_num_words", num_words),
    ("qsc_doc_num_chars", num_chars),
    ("qsc_doc_num_lines", num_lines),
    ("qsc_doc_mean_word_length", mean_word_length),
    ("qsc_doc_frac_words_full_bracket", frac_words_full_bracket),
    ("qsc_doc_frac_lines_end_with_readmore", frac_lines_end_with_readmore),
    ("qsc_doc_frac_lines_start_with_bullet", frac_lines_start_with_bullet),
    ("qsc_doc_frac_words_unique", frac_words_unique),
    ("qsc_doc_entropy_unigram", entropy_unigram),
    ("qsc_doc_frac_words_all_caps", frac_words_all_caps),
    ("qsc_doc_frac_lines_dupe_lines", doc_frac_lines_dupe_lines),
    ("qsc_doc_frac_chars_dupe_lines", doc_frac_chars_dupe_lines),
    *[(f"qsc_doc_frac_chars_top_{n}grams", partial(frac_chars_top_ngram, n=n)) for n in (2, 3, 4)],
    *[(f"qsc_doc_frac_chars_dupe_{n}grams", partial(frac_chars_dupe_ngrams, n=n)) for n in range(5, 11)],
    ("qsc_doc_frac_chars_replacement_symbols", frac_chars_replacement_symbols),
    ("qsc_doc_cate_code_related_file_name", code_related_file_name),
    ("qsc_doc_num_chars_sentence_length_mean", sentence_length_mean),
    ("qsc_doc_frac_chars_hyperlink_html_tag", hyperlink_html_tag),
    ("qsc_doc_frac_chars_alphabet", doc_frac_chars_alphabet),
    ("qsc_doc_frac_chars_digital", frac_chars_digital),
    ("qsc_doc_frac_chars_whitespace", frac_chars_whitespace),
    ("qsc_doc_frac_chars_hex_words", doc_frac_chars_hex_words),
]
