"""Per-document language identification: real documents, zh signals with jieba, configs per file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dagster import materialize

from opencoder_assets.core.filtering import compute_signals
from opencoder_assets.core.langid import detect_language, document_language
from opencoder_assets.core.signals.document import (
    CodeDocument,
    jieba_words,
    normalize_text,
    wordpunct_tokenize,
)
from opencoder_assets.definitions import code_assets
from tests.langid_corpus import chinese_docs, english_docs, other_docs

PARTITIONED = [a for a in code_assets if a.partitions_def is not None]
SOURCE_INDEX = [a for a in code_assets if a.partitions_def is None]
ZH_TUTOR = Path("/usr/share/vim/vim90/tutor/tutor.zh_cn.utf-8")
ZH_TW_TUTOR = Path("/usr/share/vim/vim90/tutor/tutor.zh.utf-8")
EN_MD = Path("/usr/share/doc/nodejs/api/path.md")


def _need(ok: bool, what: str) -> None:
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} missing (install it from .ci/apt-packages.txt)")
        pytest.skip(f"{what} missing")


def test_chinese_is_told_apart_from_english_and_other_languages():
    zh, en, other = chinese_docs(), english_docs(80), other_docs(5)
    _need(len(zh) >= 20 and len(en) >= 60 and len(other) >= 40, "Chinese/English/other man pages and Vim tutors")
    assert [p for p, t in zh if detect_language(t) != "zh"] == []
    assert [p for p, t in en if detect_language(t) != "en"] == []
    assert [p for p, _, t in other if detect_language(t) == "zh"] == []
    # traditional Chinese counts as zh (the model says "yue" for some of it)
    tw = [t for p, t in zh if "zh_TW" in p or p.startswith(str(ZH_TW_TUTOR))]
    assert tw and {detect_language(t) for t in tw} == {"zh"}
    # only text documents are identified under "auto"; a fixed lang is used as given
    assert document_language("auto", "code", zh[0][1]) is None
    assert document_language("auto", "text", zh[0][1]) == "zh"
    assert document_language("en", "text", zh[0][1]) == "en"


def test_zh_signals_use_simplified_text_and_jieba_words():
    _need(ZH_TW_TUTOR.is_file(), f"{ZH_TW_TUTOR} (Debian vim-runtime)")
    text = ZH_TW_TUTOR.read_text(encoding="utf-8")[:6000]
    doc = CodeDocument(text, program_lang="text", doc_type="text", lang="zh")
    assert doc.text != text and len(doc) == len(text)  # converted to simplified, length of the original
    assert "編輯" in text and "编辑" in doc.text and "編輯" not in doc.text
    assert doc.normalized_words == jieba_words(normalize_text(doc.text))
    words_zh = doc.normalized_words
    # jieba splits runs of Chinese characters into words; word-punct keeps a run as one token
    assert len(words_zh) > 1.5 * len(wordpunct_tokenize(doc.text))
    assert "编辑" in words_zh
    sig_zh = compute_signals(text, program_lang="text", doc_type="text", ext=".txt", filename="t.txt",
                             size_bytes=len(text.encode()), lang="zh")
    sig_en = compute_signals(text, program_lang="text", doc_type="text", ext=".txt", filename="t.txt",
                             size_bytes=len(text.encode()), lang="en")
    assert sig_zh["qsc_doc_num_words"] == len(words_zh) > sig_en["qsc_doc_num_words"]


def test_chinese_and_english_markdown_get_their_own_config(tmp_path, pipeline_resources):
    _need(ZH_TUTOR.is_file() and EN_MD.is_file(), f"{ZH_TUTOR} (vim-runtime) and {EN_MD} (nodejs)")
    repo = tmp_path / "repos" / "docs"
    repo.mkdir(parents=True)
    (repo / "vimtutor.zh_cn.md").write_text(ZH_TUTOR.read_text(encoding="utf-8"), encoding="utf-8")
    (repo / "path.md").write_text(EN_MD.read_text(encoding="utf-8"), encoding="utf-8")
    res = pipeline_resources([tmp_path / "repos"], None, engine="inprocess")
    assert materialize(SOURCE_INDEX, resources=res).success
    assert materialize(PARTITIONED, resources=res, partition_key="markdown").success

    def decisions() -> dict[str, str]:
        rows = res["metrics"].query("SELECT path, detail FROM file_decisions WHERE step = 'filtered_code'")
        return {p: d.split(" hits=")[0] for p, d in rows}

    assert decisions() == {"vimtutor.zh_cn.md": "config=zh lang=zh", "path.md": "config=en lang=en"}
    langs = dict(res["metrics"].query("SELECT path, lang FROM quality_signals WHERE partition = 'markdown'"))
    assert langs == {"vimtutor.zh_cn.md": "zh", "path.md": "en"}
    # a fixed language for the run: one table for both, as before
    fixed = {"ops": {"quality_signals": {"config": {"lang": "en"}}, "filtered_code": {"config": {"lang": "en"}}}}
    steps = [a for a in PARTITIONED if a.key.to_user_string() in ("quality_signals", "filtered_code")]
    assert materialize(steps, resources=res, partition_key="markdown", run_config=fixed).success
    assert decisions() == {"vimtutor.zh_cn.md": "config=en lang=en", "path.md": "config=en lang=en"}
