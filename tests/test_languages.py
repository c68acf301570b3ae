"""Tests for opencoder_assets.core.languages and its generated table."""

from __future__ import annotations

import json
import re

import pytest

from opencoder_assets.core.languages import (
    PARTITION_LANGUAGES,
    RECIPE_LANGUAGES,
    UNKNOWN,
    LanguageInfo,
    detect_language,
    is_programming_file,
    known_languages,
    load_table,
    partition_for,
)
from tests.conftest import REFERENCE_DATA


def test_table_size() -> None:
    table = load_table()
    langs = table["languages"]
    assert len(langs) >= 300
    exts = {e.lower() for info in langs.values() for e in info["extensions"]}
    assert len(exts) >= 1000
    assert sum(len(info["filenames"]) for info in langs.values()) >= 300
    assert "MIT" in table["source"] and "linguist" in table["source"].lower()
    assert all(info["doc_type"] in ("code", "data", "text") for info in langs.values())
    for ext, ov in table["extension_overrides"].items():
        assert ov["language"] in langs, ext
        assert ov["reason"], ext


@pytest.mark.parametrize(
    ("path", "lang"),
    [
        ("a/b/main.py", "python"),
        ("x.pyi", "python"),
        ("x.c", "c"),
        ("x.h", "c"),
        ("x.cpp", "cpp"),
        ("x.cc", "cpp"),
        ("x.cxx", "cpp"),
        ("x.hpp", "cpp"),
        ("x.hh", "cpp"),
        ("x.C", "cpp"),
        ("x.H", "cpp"),
        ("x.cs", "csharp"),
        ("View.cshtml", "csharp"),
        ("Main.java", "java"),
        ("x.js", "javascript"),
        ("x.jsx", "javascript"),
        ("x.mjs", "javascript"),
        ("x.cjs", "javascript"),
        ("x.go", "go"),
        ("x.html", "html"),
        ("x.htm", "html"),
        ("X.PY", "python"),
    ],
)
def test_recipe_languages(path: str, lang: str) -> None:
    info = detect_language(path)
    assert info.name == lang
    assert info.doc_type == "code"
    assert info.partition == lang


@pytest.mark.parametrize(
    ("path", "lang"),
    [
        ("x.m", "objective-c"),
        ("x.v", "verilog"),
        ("x.s", "assembly"),
        ("x.S", "assembly"),
        ("x.asm", "assembly"),
        ("x.pl", "perl"),
        ("x.t", "perl"),
        ("x.cfg", "ini"),
        ("x.inc", "php"),
        ("x.fs", "f#"),
        ("x.ts", "typescript"),
        ("x.tsx", "tsx"),
        ("x.md", "markdown"),
        ("x.sql", "sql"),
        ("x.ipynb", "jupyter notebook"),
        ("x.r", "r"),
        ("x.R", "r"),
        ("x.rs", "rust"),
        ("x.json", "json"),
        ("x.yml", "yaml"),
        ("x.d.ts", "typescript"),
        ("welcome.blade.php", "blade"),
        ("x.php", "php"),
        ("Makefile", "makefile"),
        ("src/Dockerfile", "dockerfile"),
        ("CMakeLists.txt", "cmake"),
        ("x.sh", "shell"),
        ("x.kt", "kotlin"),
        ("x.swift", "swift"),
        ("x.rb", "ruby"),
        ("x.vue", "vue"),
        ("x.css", "css"),
        ("x.xml", "xml"),
        ("x.toml", "toml"),
        ("x.tex", "tex"),
        ("x.rst", "restructuredtext"),
        ("x.mm", "objective-c++"),
    ],
)
def test_ambiguous_and_common(path: str, lang: str) -> None:
    assert detect_language(path).name == lang


def test_partitions_and_doc_types() -> None:
    assert detect_language("x.tsx").partition == "typescript"
    assert detect_language("x.md").doc_type == "text"
    assert detect_language("x.json").doc_type == "data"
    assert detect_language("x.css").doc_type == "data"
    assert detect_language("x.xml").doc_type == "data"
    assert detect_language("x.html").doc_type == "code"
    assert detect_language("x.sql").doc_type == "code"
    assert partition_for("Python") == "python"
    assert partition_for("fortran") == "other"
    assert partition_for("nonexistent") == "other"


@pytest.mark.parametrize(
    "path",
    ["x.csv", "x.tsv", "x.svg", "robots.txt", "x.sha256", "x.gbr", "x.pkl", "x.srt"],
)
def test_excluded(path: str) -> None:
    info = detect_language(path)
    assert info.doc_type == "excluded"
    assert not is_programming_file(path)


def test_notebooks_have_their_own_partition() -> None:
    """On the reference's exclusion list, but curated as their own corpus (docs/notebooks.md)."""
    info = detect_language("analysis/Explore Data.ipynb")
    assert info == LanguageInfo("jupyter notebook", "notebook", "jupyter")
    assert is_programming_file("x.IPYNB")
    assert partition_for("Jupyter Notebook") == "jupyter"


def test_excluded_case_insensitive() -> None:
    # The reference lists "Checksums"/"Gerber Image" capitalised and so never excludes them.
    excluded = load_table()["excluded"]
    assert {"checksums", "gerber image", "jupyter notebook"} <= set(excluded)
    assert detect_language("SHA256SUMS").name == "checksums"
    assert detect_language("SHA256SUMS").doc_type == "excluded"


def test_unknown() -> None:
    assert detect_language("x.zzzunknownext") == UNKNOWN
    assert detect_language("README") == LanguageInfo("unknown", "unknown", "other")
    assert detect_language("") == UNKNOWN
    assert not is_programming_file("x.zzzunknownext")
    assert is_programming_file("x.py")


def test_partition_languages() -> None:
    assert PARTITION_LANGUAGES[: len(RECIPE_LANGUAGES)] == RECIPE_LANGUAGES
    assert PARTITION_LANGUAGES[-1] == "other"
    assert len(set(PARTITION_LANGUAGES)) == len(PARTITION_LANGUAGES)
    known = known_languages()
    for name in PARTITION_LANGUAGES[:-1]:
        if name == "jupyter":  # named after the corpus, fed by "jupyter notebook"
            assert partition_for("jupyter notebook") == name
            continue
        assert name in known, name
        assert partition_for(name) == name


def test_windows_paths_and_case() -> None:
    assert detect_language(r"src\lib\x.go").name == "go"
    assert detect_language("makefile").name == "makefile"
    assert detect_language("x.HTML").name == "html"


def test_reference_files() -> None:
    files = json.loads((REFERENCE_DATA / "reference_signals.json").read_text())["files"]
    raw = sorted(p for p in (REFERENCE_DATA / "raw_code").glob("*/*") if p.is_file())
    assert len(raw) == 120
    for p in raw:
        rel = f"{p.parent.name}/{p.name}"
        exp = files[rel]
        info = detect_language(str(p))
        assert (info.name, info.doc_type) == (exp["program_lang"], exp["doc_type"]), rel


def test_appendix_e_names_and_doc_types() -> None:
    md = (REFERENCE_DATA / "program_languages.md").read_text(encoding="utf-8")
    app = md[md.index("## Appendix E") :]
    langs = load_table()["languages"]
    missing = []
    for dt in ("code", "data", "text"):
        m = re.search(r"\*\*" + dt + r"\*\* \(\d+\): (.*)", app)
        assert m is not None
        for name in (x.strip() for x in m.group(1).split(", ")):
            if name not in langs:
                missing.append(name)
                continue
            assert langs[name]["doc_type"] == dt, name
    # prover9 was dropped from Linguist; everything else must resolve.
    assert missing == ["prover9"]
