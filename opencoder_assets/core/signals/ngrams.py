"""Word n-gram repetition signals (RedPajama-v2 definitions), shared by doc and code groups.

N-grams are the exact int keys of :meth:`CodeDocument.ngram_keys`; all per-position work
is done with C-level ``map``/``compress``/slice assignment instead of Python loops.
"""

from __future__ import annotations

from itertools import compress
from operator import itemgetter

from .document import PRECISION, CodeDocument

_second = itemgetter(1)
_GT1 = (1).__lt__  # x > 1


def frac_chars_top_ngram(doc: CodeDocument, n: int) -> float:
    """Char share of the most frequent n-gram (first-seen wins ties), 0 if it occurs once."""
    counts = doc.ngram_counts(n)
    if not counts:
        return 0.0
    # max() returns the first maximal item in insertion order, like Counter.most_common(1).
    gram, count = max(counts.items(), key=_second)
    if count <= 1:
        return 0.0
    # char length of the n-gram, from its first occurrence (all occurrences are equal words)
    first = doc.ngram_keys(n).index(gram)
    gram_chars = sum(doc.word_lengths[first : first + n])
    return round(gram_chars * count / doc.total_word_chars, PRECISION)


def frac_chars_dupe_ngrams(doc: CodeDocument, n: int) -> float:
    """Char share of words covered by any n-gram occurring at least twice."""
    words = doc.normalized_words
    if len(words) < n:
        return 0.0
    total = doc.total_word_chars
    if total == 0:
        return 0.0
    counts = doc.ngram_counts(n)
    keys = doc.ngram_keys(n)
    # start positions of duplicated n-grams; mark the n words each one covers
    starts = compress(range(len(keys)), map(_GT1, map(counts.__getitem__, keys)))
    covered = bytearray(len(words))
    ones = b"\x01" * n
    for i in starts:
        covered[i : i + n] = ones
    duped = sum(compress(doc.word_lengths, covered))
    return round(float(duped / total), PRECISION)
