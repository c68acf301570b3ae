"""Word n-gram repetition signals (RedPajama-v2 definitions), shared by doc and code groups."""

from __future__ import annotations

from .document import PRECISION, CodeDocument


def frac_chars_top_ngram(doc: CodeDocument, n: int) -> float:
    """Char share of the most frequent n-gram (first-seen wins ties), 0 if it occurs once."""
    counts = doc.ngram_counts(n)
    if not counts:
        return 0.0
    # max() returns the first maximal item in insertion order, like Counter.most_common(1).
    gram, count = max(counts.items(), key=_second)
    if count <= 1:
        return 0.0
    lengths = doc.word_lengths
    # recover the char length of the n-gram from its first occurrence
    first = doc.ngrams(n).index(gram)
    gram_chars = sum(lengths[first : first + n])
    return round(gram_chars * count / doc.total_word_chars, PRECISION)


def _second(item: tuple[object, int]) -> int:
    return item[1]


def frac_chars_dupe_ngrams(doc: CodeDocument, n: int) -> float:
    """Char share of words covered by any n-gram occurring at least twice."""
    words = doc.normalized_words
    if len(words) < n:
        return 0.0
    total = doc.total_word_chars
    if total == 0:
        return 0.0
    counts = doc.ngram_counts(n)
    grams = doc.ngrams(n)
    lengths = doc.word_lengths
    duped = 0
    covered_until = 0  # first word index not yet counted
    for i, g in enumerate(grams):
        if counts[g] > 1:
            start = i if i > covered_until else covered_until
            end = i + n
            if start < end:
                duped += sum(lengths[start:end])
            covered_until = end
    return round(float(duped / total), PRECISION)
