"""Per-document natural-language identification for text documents (markdown, plain text, ...).

Why: the reference picks the ``zh`` or ``en`` threshold table per document from a fastText
language-ID model (``lang_predictor.bin``, not obtainable) and tokenises Chinese with jieba; one
``lang`` value per run cannot do that for a corpus mixing English and Chinese documents.

Model: ``py3langid`` (the maintained fork of langid.py: same 97-language model, shipped inside
the wheel, no download, numpy inference). Chosen over ``lingua-language-detector`` after
``bench/bench_langid.py``: both separate Chinese from everything else perfectly on real
documents on this machine, py3langid is ~7x faster (about 1,000 vs 150 documents/s) and a
4.5 MB wheel instead of 96 MB. fastText LID packages on PyPI download their model at run time,
so they were not eligible.

Labels are ISO 639-1 codes as the model emits them, except that Cantonese (``yue``, which the
model gives to some Traditional-Chinese text) counts as ``zh``: the reference converts any Chinese
to simplified (zhconv) before its signals, so both scripts belong to the ``zh`` table. Only the
first :data:`DETECT_CHARS` characters are read (the language of a document is settled long
before; the cost stays bounded on 8 MiB files). Deterministic: the same text always gets the same
label.
"""

from __future__ import annotations

from functools import lru_cache

#: Characters read per document.
DETECT_CHARS = 20_000
#: Value of a ``lang`` parameter that asks for per-document detection.
AUTO = "auto"
#: Document types that carry natural language (the reference's ``text`` doc type).
TEXT_DOC_TYPES = frozenset({"text"})
_ALIASES = {"yue": "zh", "wuu": "zh"}


@lru_cache(maxsize=1)
def _identifier():  # -> py3langid.langid.LanguageIdentifier
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    # our own instance: py3langid's module-level identifier can be narrowed by set_languages()
    return LanguageIdentifier.from_model_file(MODEL_FILE)


def detect_language(text: str) -> str:
    """ISO 639-1 code of the document's language (``zh`` for any Chinese); ``en`` for a text
    without letters (nothing to identify: the reference's default table)."""
    head = text[:DETECT_CHARS]
    if not any(c.isalpha() for c in head):
        return "en"
    label = _identifier().classify(head)[0]
    return _ALIASES.get(label, label)


def document_language(lang: str, doc_type: str, text: str) -> str | None:
    """The language a document's natural-language signals and threshold table use: the fixed
    ``lang`` if one is given, else (``lang == "auto"``) the detected language of a text
    document; None for code/data documents under ``auto`` (no natural-language signals)."""
    if lang != AUTO:
        return lang
    if doc_type not in TEXT_DOC_TYPES:
        return None
    return detect_language(text)
