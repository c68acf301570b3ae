"""Word n-gram repetition signals (RedPajama-v2 definitions), shared by doc and code groups.

Small documents use the exact int keys of :meth:`CodeDocument.ngram_keys` with C-level
``map``/``compress``/slice assignment.  Larger ones (>= ``_NUMPY_MIN_WORDS`` words) are
vectorised with numpy: each repeated n-gram gets an exact label (< #words) built from the
(n-1)-gram labels -- ``label_{k+1}[i] = unique_inverse(label_k[i] * V + id[i + k])`` -- so
equal labels <=> equal n-grams (no hashing, no collisions).  Only starts whose (n-1)-gram
repeats are extended; state is cached on the document for increasing ``n``.
"""

from __future__ import annotations

from itertools import compress
from operator import itemgetter

import numpy as np

from .document import PRECISION, CodeDocument

_second = itemgetter(1)
_GT1 = (1).__lt__  # x > 1

#: below this many words the pure-Python path is faster than numpy's per-call overhead
_NUMPY_MIN_WORDS = 100

_NP_KEY = "_np_ngram_state"


def _np_state(doc: CodeDocument) -> dict:
    st = doc.__dict__.get(_NP_KEY)
    if st is None:
        words = doc.normalized_words
        id_map = doc.word_id_map
        ids = np.fromiter(map(id_map.__getitem__, words), dtype=np.int64, count=len(words))
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        st = {"ids": ids, "lengths": lengths, "vsize": max(len(id_map), 1)}
        st["grams"] = (1, np.arange(ids.size), ids)
        doc.__dict__[_NP_KEY] = st
    return st


def _dense_labels(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(inverse, repeated)`` as ``np.unique(keys, return_inverse=True, return_counts=True)``
    gives them (``inverse``, ``counts[inverse] > 1``).  While ``key * n + position`` fits in
    int64, one value sort of that combination replaces unique's argsort (about 2x faster);
    ties cannot occur, so the order is the stable key order."""
    n = keys.size
    if n == 0:
        return keys.copy(), np.zeros(0, dtype=bool)
    if int(keys.max()) < (1 << 62) // n:
        combined = keys * n + np.arange(n)
        combined.sort()
        sorted_keys = combined // n
        order = combined - sorted_keys * n
    else:
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=first[1:])
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    counts = np.diff(np.flatnonzero(np.append(first, True)))
    return inverse, counts[inverse] > 1


def _np_dupe_grams(st: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, labels)`` of the word n-grams occurring at least twice: their start
    positions (ascending) and exact labels (equal labels <=> equal n-grams).

    An n-gram occurring once makes every longer n-gram at the same start unique too, so
    each step only extends the repeated (n-1)-grams by one word."""
    k, starts, labels = st["grams"]
    if k > n:
        k, starts, labels = 1, np.arange(st["ids"].size), st["ids"]
    if k == n:
        return starts, labels
    ids = st["ids"]
    vsize = st["vsize"]
    last = ids.size  # an n-gram starting at i needs i + n <= #words
    while k < n:
        if starts.size and starts[-1] + k >= last:
            cut = np.searchsorted(starts, last - k)
            starts, labels = starts[:cut], labels[:cut]
        # labels < #words and ids < V <= #words, so the key fits easily in int64
        keys = labels * vsize + ids[starts + k]
        inv, rep = _dense_labels(keys)
        starts, labels = starts[rep], inv[rep]
        k += 1
    st["grams"] = (n, starts, labels)
    return starts, labels


def frac_chars_top_ngram(doc: CodeDocument, n: int) -> float:
    """Char share of the most frequent n-gram (first-seen wins ties), 0 if it occurs once."""
    if len(doc.normalized_words) >= max(_NUMPY_MIN_WORDS, n):
        st = _np_state(doc)
        starts, labels = _np_dupe_grams(st, n)
        if starts.size == 0:
            return 0.0
        counts = np.bincount(labels)
        count = int(counts.max())
        # earliest position of any maximal n-gram == first occurrence of the first-seen one
        first = int(starts[np.argmax(counts[labels] == count)])
        gram_chars = int(st["lengths"][first : first + n].sum())
        return round(gram_chars * count / doc.total_word_chars, PRECISION)
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
    nwords = len(words)
    if nwords < n:
        return 0.0
    total = doc.total_word_chars
    if total == 0:
        return 0.0
    if nwords >= _NUMPY_MIN_WORDS:
        st = _np_state(doc)
        starts = _np_dupe_grams(st, n)[0]
        if starts.size == 0:
            return 0.0
        # difference array: +1 at each duplicated start, -1 n words later (starts unique)
        diff = np.zeros(nwords + 1, dtype=np.int32)
        diff[starts] = 1
        diff[starts + n] -= 1
        covered = np.cumsum(diff[:nwords]) > 0
        duped = int(st["lengths"][covered].sum())
        return round(float(duped / total), PRECISION)
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
