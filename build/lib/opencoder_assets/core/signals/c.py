"""C and C++ signals (``qsc_codec_*`` / ``qsc_codecpp_*``): regexes over the code content."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial

import regex

from .document import INFO_SEPARATORS_RE, PRECISION, CodeDocument

Value = float | int | bool | None

FUNCTION_RE = regex.compile(
    r"\b((?:[a-zA-Z_]\w*\s*(?:\*+)?\s+)+"  # return type words / modifiers / pointers
    r"(?:\*?\s*[a-zA-Z_]\w*)"  # name
    r"\((?:[^)]*)\)\s*)"  # parameter list
)
INCLUDE_RE = regex.compile(r'^\s*#\s*include\s+["<][^">]+[">]', regex.MULTILINE)
CLASS_RE = regex.compile(r"^\s*class\s+\w+\s*(:[^{]*)?\{", regex.MULTILINE)
SIMPLE_VAR_RE = regex.compile(
    r"^\s*(?:unsigned\s+)?(?:int|float|double|char|bool|std::string|auto)\s+\w+\s*;", regex.MULTILINE
)
SIMPLE_RETURN_RE = regex.compile(
    r"^\s*return\s*(?:(\w+|\d+|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|true|false|nullptr)\s*)?;\s*$",
    regex.MULTILINE,
)
VARIABLE_RE = regex.compile(
    r"\b((?:\w+(?:\s+\w+)?)\s+"
    r"(?:(?:\*+)?\s*"
    r"[\w\[\]]+"
    r"\s*(?:=\s*[^;]*)?"
    r"(?:,\s*(?:\*+)?\s*[\w\[\]]+\s*(?:=\s*[^;]*)?)*)"
    r"\s*;)"
)
MAIN_RE = regex.compile(r"\bmain\s*\([^)]*\)\s*\{")
DIRECTIVE_RES = [
    regex.compile(p)
    for p in (
        r"#\s*include", r"#\s*define", r"#\s*if", r"#\s*ifdef", r"#\s*ifndef", r"#\s*else", r"#\s*elif",
        r"#\s*endif", r"#\s*error", r"#\s*pragma", r"#\s*warning", r"#\s*undef", r"#\s*line", r"struct",
        r"using",
    )
]
HEADER_EXTS = ("h", "hpp", "hxx", "hh", "h++")

# ``re`` twins of two linear patterns (2-3x faster there).  On ASCII text without
# U+001C..U+001F, ``\s``/``\w`` mean the same in both engines (``regex``'s ``\s`` lacks exactly
# those four separators), so the matches are identical; other text keeps ``regex``.
_STDLIB_TWINS: dict[regex.Pattern[str], re.Pattern[str]] = {
    rx: re.compile(rx.pattern, re.MULTILINE) for rx in (INCLUDE_RE, SIMPLE_VAR_RE)
}



def r8(x: float) -> float:
    return round(x, PRECISION)


def _stdlib_equivalent(doc: CodeDocument) -> bool:
    """Can the ``re`` twins run on this code content (checked once per document)?"""
    if "_c_stdlib_ok" not in doc.__dict__:
        code = doc.code_content
        doc.__dict__["_c_stdlib_ok"] = code.isascii() and INFO_SEPARATORS_RE.search(code) is None
    return doc.__dict__["_c_stdlib_ok"]


def _count(doc: CodeDocument, key: str, pattern: regex.Pattern[str]) -> int:
    """Cached ``len(findall)`` over the code content (shared by C and C++ signals)."""
    cache = doc.__dict__.setdefault("_c_counts", {})
    if key not in cache:
        code = doc.code_content
        fast = _STDLIB_TWINS.get(pattern)
        if fast is not None and _stdlib_equivalent(doc):
            cache[key] = len(fast.findall(code))
        else:
            cache[key] = len(pattern.findall(code, timeout=doc.compat.regex_timeout))
    return cache[key]


def frac_lines_func_ratio(doc: CodeDocument, lang: str) -> float | None:
    if doc.program_lang != lang:
        return None
    count = _count(doc, "func", FUNCTION_RE)
    if not doc.code_lines:
        return None
    return r8(count / len(doc.code_lines))


def cate_bitsstdc(doc: CodeDocument, lang: str) -> float | None:
    if doc.program_lang != lang:
        return None
    return float("bits/stdc++.h" in doc.code_content.strip().lower()[:200])


def nums_lines_main(doc: CodeDocument, lang: str) -> float | int | None:
    if doc.program_lang != lang:
        return None
    n = _count(doc, "main", MAIN_RE)
    return n if lang == "c" else float(n)  # C returns an int, C++ a float (reference)


def frac_lines_goto(doc: CodeDocument, lang: str) -> float | None:
    if doc.program_lang != lang:
        return None
    lines = doc.code_lines
    if not lines:
        return None
    return r8(sum(1 for ln in lines if "goto" in ln) / len(lines))


def cate_var_zero(doc: CodeDocument, lang: str) -> float | None:
    if doc.program_lang != lang:
        return None
    # "no match at all": the first match decides, no need to count them (findall)
    return float(VARIABLE_RE.search(doc.code_content, timeout=doc.compat.regex_timeout) is None)


def score_lines_no_logic(doc: CodeDocument, lang: str) -> float | None:
    if doc.program_lang != lang:
        return None
    count = (
        _count(doc, "func", FUNCTION_RE)
        + _count(doc, "include", INCLUDE_RE)
        + _count(doc, "simple_var", SIMPLE_VAR_RE)
        + _count(doc, "simple_return", SIMPLE_RETURN_RE)
        + _count(doc, "class", CLASS_RE)
    )
    if not doc.code_lines:
        return None
    return r8(count / len(doc.code_lines))


def frac_lines_print(doc: CodeDocument, lang: str) -> float | None:
    if doc.program_lang != lang:
        return None
    lines = doc.code_lines
    if not lines:
        return None
    if lang == "cpp":
        n = sum(1 for ln in lines if "cout" in ln or "printf" in ln)
    else:
        n = sum(1 for ln in lines if "printf" in ln)
    return r8(n / len(lines))


def frac_lines_preprocessor_directives(doc: CodeDocument) -> float | None:
    """Share of code lines with a directive (or ``struct``/``using``); None for headers."""
    if doc.program_lang not in ("c", "cpp") or doc.ext in HEADER_EXTS:
        return None
    lines = doc.code_lines
    if not lines:
        return None
    n = sum(1 for ln in lines if any(p.search(ln) for p in DIRECTIVE_RES))
    return r8(n / len(lines))


def _signals(lang: str, prefix: str) -> list[tuple[str, Callable[[CodeDocument], Value]]]:
    return [
        (f"{prefix}_frac_lines_func_ratio", partial(frac_lines_func_ratio, lang=lang)),
        (f"{prefix}_cate_bitsstdc", partial(cate_bitsstdc, lang=lang)),
        (f"{prefix}_nums_lines_main", partial(nums_lines_main, lang=lang)),
        (f"{prefix}_frac_lines_goto", partial(frac_lines_goto, lang=lang)),
        (f"{prefix}_cate_var_zero", partial(cate_var_zero, lang=lang)),
        (f"{prefix}_score_lines_no_logic", partial(score_lines_no_logic, lang=lang)),
        (f"{prefix}_frac_lines_print", partial(frac_lines_print, lang=lang)),
        (f"{prefix}_frac_lines_preprocessor_directives", frac_lines_preprocessor_directives),
    ]


C_SIGNALS = _signals("c", "qsc_codec")
CPP_SIGNALS = _signals("cpp", "qsc_codecpp")
