"""Java signals (``qsc_codejava_*``): regexes over the code content."""

from __future__ import annotations

from collections.abc import Callable

import regex

from .document import PRECISION, CodeDocument

Value = float | int | bool | None

FUNCTION_RE = regex.compile(
    r"^\s*"
    r"((?:(?:public|protected|private|static)\s+)*"
    r"(?:(?!\s*(?:public|private|protected|else|if)\s*)(?:<\w+>)?\s*\w+\s+)"
    r"(?:\w+\s*)"
    r"(?:\((?:[^\)]*)\))"
    r"(?:\s*throws\s+[\w\, ]+)?)",
    regex.MULTILINE,
)
# Same shape as FUNCTION_RE with the name captured (used when the group bug is fixed).
FUNCTION_NAMED_RE = regex.compile(
    r"^\s*"
    r"(?:(?:public|protected|private|static)\s+)*"
    r"(?:(?!\s*(?:public|private|protected|else|if)\s*)(?:<\w+>)?\s*\w+\s+)"
    r"(\w+)\s*"
    r"(?:\((?:[^\)]*)\))"
    r"(?:\s*throws\s+[\w\, ]+)?",
    regex.MULTILINE,
)
IMPORT_RE = regex.compile(r"^\s*import\s+([\w\.\*]+)\s*;\s*$", regex.MULTILINE)
SIMPLE_VAR_RE = regex.compile(
    r"^\s*"
    r"((?:(?:public|protected|private|final|static)\s+)*"
    r"(?:int|float|boolean|char|double|String|(?:[A-Z][\w<>]*))"
    r"\s+(\w+)\s*;)",
    regex.MULTILINE,
)
VARIABLE_RE = regex.compile(
    r"^\s*"
    r"((?:(?:public|protected|private|final|static)\s+)*"
    r"(?:int|float|boolean|char|double|String|(?:[A-Z][\w<>]*))"
    r"\s+(?:\w+)\s*"
    r"(?:\s*=\s*[^;]+)?;)",
    regex.MULTILINE,
)
VARIABLE_NAMED_RE = regex.compile(
    r"^\s*"
    r"(?:(?:public|protected|private|final|static)\s+)*"
    r"(?:int|float|boolean|char|double|String|(?:[A-Z][\w<>]*))"
    r"\s+(\w+)\s*"
    r"(?:\s*=\s*[^;]+)?;",
    regex.MULTILINE,
)
SIMPLE_RETURN_RE = regex.compile(
    r"^\s*(return(?:;|\s+(?:\w*|\"(?:[^\"\\]*(?:\\.[^\"\\]*)*)\")\s*;\s*))$", regex.MULTILINE
)
CLASS_RE = regex.compile(
    r"^\s*((?:public\s+|protected\s+|private\s+)?(?:final\s+|abstract\s+)?class\s+([\w<>]+))", regex.MULTILINE
)
LEGAL_VAR_RE = regex.compile(r"^[a-z][a-zA-Z0-9]*$")
LEGAL_FUNC_RE = regex.compile(r"^[a-zA-Z][a-zA-Z0-9]*$")
LEGAL_CLASS_RE = regex.compile(r"^[A-Z][a-zA-Z0-9]*$")


def r8(x: float) -> float:
    return round(x, PRECISION)


def _find(doc: CodeDocument, key: str, pattern: regex.Pattern[str]) -> list:
    cache = doc.__dict__.setdefault("_java", {})
    if key not in cache:
        cache[key] = pattern.findall(doc.code_content, timeout=doc.compat.regex_timeout)
    return cache[key]


def _is_java(doc: CodeDocument) -> bool:
    return doc.program_lang == "java"


def cate_var_zero(doc: CodeDocument) -> float | None:
    if not _is_java(doc):
        return None
    return float(len(_find(doc, "var", VARIABLE_RE)) == 0)


def frac_lines_func_ratio(doc: CodeDocument) -> float | None:
    if not _is_java(doc) or not doc.code_lines:
        return None
    return r8(len(_find(doc, "func", FUNCTION_RE)) / len(doc.code_lines))


def score_lines_no_logic(doc: CodeDocument) -> float | None:
    if not _is_java(doc) or not doc.code_lines:
        return None
    count = (
        len(_find(doc, "func", FUNCTION_RE))
        + len(_find(doc, "import", IMPORT_RE))
        + len(_find(doc, "simple_var", SIMPLE_VAR_RE))
        + len(_find(doc, "simple_return", SIMPLE_RETURN_RE))
        + len(_find(doc, "class", CLASS_RE))
    )
    return r8(count / len(doc.code_lines))


def frac_words_no_modifier(doc: CodeDocument) -> float | None:
    """Share of methods/classes *with* an access modifier (inverted name, reference quirk:
    class matches are tuples, so ``'public' in tuple`` only matches a whole group)."""
    if not _is_java(doc):
        return None
    funcs = _find(doc, "func", FUNCTION_RE)
    classes = _find(doc, "class", CLASS_RE)
    mods = ("public", "protected", "private")
    count = sum(1 for f in funcs if any(m in f for m in mods))
    count += sum(1 for c in classes if any(m in c for m in mods))
    total = len(funcs) + len(classes)
    return None if total == 0 else r8(count / total)


def _legal_share(names: list[str], pattern: regex.Pattern[str]) -> float | None:
    if not names:
        return None
    return r8(sum(1 for n in names if pattern.match(n)) / len(names))


def frac_words_legal_var_name(doc: CodeDocument) -> float | None:
    if not _is_java(doc):
        return None
    if doc.compat.legal_name_group_bug:
        # reference: second *character* of each matched declaration
        names = [m[1] for m in _find(doc, "var", VARIABLE_RE)]
    else:
        names = _find(doc, "var_named", VARIABLE_NAMED_RE)
    return _legal_share(names, LEGAL_VAR_RE)


def frac_words_legal_func_name(doc: CodeDocument) -> float | None:
    if not _is_java(doc):
        return None
    if doc.compat.legal_name_group_bug:
        names = [m[1] for m in _find(doc, "func", FUNCTION_RE)]
    else:
        names = _find(doc, "func_named", FUNCTION_NAMED_RE)
    return _legal_share(names, LEGAL_FUNC_RE)


def frac_words_legal_class_name(doc: CodeDocument) -> float | None:
    if not _is_java(doc):
        return None
    return _legal_share([m[1] for m in _find(doc, "class", CLASS_RE)], LEGAL_CLASS_RE)


def frac_lines_print(doc: CodeDocument) -> float | None:
    if not _is_java(doc) or not doc.code_lines:
        return None
    lines = doc.code_lines
    return r8(sum(1 for ln in lines if "System.out.print" in ln) / len(lines))


SIGNALS: list[tuple[str, Callable[[CodeDocument], Value]]] = [
    ("qsc_codejava_cate_var_zero", cate_var_zero),
    ("qsc_codejava_frac_lines_func_ratio", frac_lines_func_ratio),
    ("qsc_codejava_score_lines_no_logic", score_lines_no_logic),
    ("qsc_codejava_frac_words_no_modifier", frac_words_no_modifier),
    ("qsc_codejava_frac_words_legal_var_name", frac_words_legal_var_name),
    ("qsc_codejava_frac_words_legal_func_name", frac_words_legal_func_name),
    ("qsc_codejava_frac_words_legal_class_name", frac_words_legal_class_name),
    ("qsc_codejava_frac_lines_print", frac_lines_print),
]
