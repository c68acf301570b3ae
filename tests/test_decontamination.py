"""Decontamination: HumanEval copies are caught (verbatim, renamed, reformatted); unrelated code is not."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from opencoder_assets.core.decontamination import (
    BenchmarkSpec,
    Decontaminator,
    is_generic_entry_point,
    load_benchmarks,
    load_humaneval,
    tokens,
)

STDLIB = Path(ast.__file__).parent


@pytest.fixture(scope="module")
def index() -> Decontaminator:
    return Decontaminator(load_humaneval())


def test_humaneval_loaded_from_package() -> None:
    items = load_humaneval()
    assert len(items) == 164 and items[0].task_id == "HumanEval/0" and items[0].entry_point == "has_close_elements"
    assert len(items[0].texts) == 3


def test_token_unit_ignores_formatting() -> None:
    assert tokens("x=foo( a ,b )\n\t# Sum\n") == tokens("X = FOO(a, b)  // sum") == ["x", "foo", "a", "b", "sum"]
    assert tokens("value 3.14 and 42") == ["value", "3.14", "and", "42"]


def test_verbatim_humaneval_entry_point(index: Decontaminator) -> None:
    problem = load_humaneval()[0]
    hit = index.check("Please complete:\n" + problem.texts[0] + problem.texts[1])
    assert hit and hit.reason == "benchmark_entry_point" and hit.task_id == "HumanEval/0"


def test_entry_point_needs_call_or_def(index: Decontaminator) -> None:
    assert index.check("The has_close_elements problem is famous.") is None
    assert index.check("result = has_close_elements (nums, 0.5)").reason == "benchmark_entry_point"
    # Generic names are stop-listed: calling add() or solve() is not evidence of contamination.
    assert index.check("def add(a, b):\n    return a + b\n\nprint(add(1, 2))") is None
    assert is_generic_entry_point("add") and is_generic_entry_point("is_prime")
    assert not is_generic_entry_point("has_close_elements") and not is_generic_entry_point("minPath")


def test_renamed_and_reformatted_copy_with_prompt_caught_by_plain_10gram(index: Decontaminator) -> None:
    """HumanEval/0 with the function and all variables renamed, re-wrapped docstring, new layout."""
    sample = (
        "Sure!\n\ndef are_any_close( seq ,eps ) :\n"
        '    """check IF in given list of NUMBERS,\n    are any two numbers closer to each other\n'
        '    than given threshold"""\n'
        "    for a , x in enumerate( seq ) :\n"
        "        for b , y in enumerate( seq ) :\n"
        "            if a!=b and abs(x-y)<eps : return True\n"
        "    return False\n"
    )
    hit = index.check(sample)
    assert hit and hit.reason == "benchmark_10gram" and hit.task_id == "HumanEval/0" and hit.view == "plain"


def test_renamed_solution_without_prompt_caught_by_canonical_10gram(index: Decontaminator) -> None:
    """HumanEval/12 (longest): no docstring, every name renamed, reformatted: only the canonical view sees it."""
    sample = (
        "from typing import List, Optional\n\n"
        "def pick_longest_word(words_in: List[str]) -> Optional[str]:\n"
        "    if not words_in: return None\n"
        "    top_len = max(len(w) for w in words_in)\n"
        "    for cand in words_in:\n"
        "        if len(cand) == top_len:\n"
        "            return cand\n"
    )
    assert Decontaminator(load_humaneval(), canonical=False).check(sample) is None
    hit = index.check(sample)
    assert hit and hit.reason == "benchmark_10gram" and hit.view == "canonical" and hit.task_id == "HumanEval/12"


def test_unrelated_samples_are_kept(index: Decontaminator) -> None:
    clean = [
        "How do I read a CSV file with pandas?\nUse pandas.read_csv('data.csv') and inspect df.head().",
        "def median3(a, b, c):\n    return sorted([a, b, c])[1]\n",
        "Explain the difference between a list and a tuple in Python: lists are mutable, tuples are not.",
        "for i in range(10):\n    print(i)\n",
    ]
    assert [index.check(t) for t in clean] == [None] * len(clean)


def test_stdlib_functions_do_not_match(index: Decontaminator) -> None:
    """Regression check against false positives: real, unrelated code (stdlib functions)."""
    checked = 0
    hits: list[tuple[str, str, str, str]] = []
    for path in sorted(STDLIB.glob("*.py"))[:60]:
        src = path.read_text(errors="replace")
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        lines = src.splitlines()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.end_lineno:
                checked += 1
                hit = index.check("\n".join(lines[node.lineno - 1:node.end_lineno]))
                if hit is not None:  # any rule: an entry-point hit on stdlib code is a false positive too
                    hits.append((path.name, node.name, hit.reason, hit.task_id))
    assert checked > 1000 and hits == []


def test_jsonl_benchmark_by_configuration(tmp_path: Path) -> None:
    """An MBPP-style JSONL benchmark: entry point parsed from the code, list-valued tests."""
    path = tmp_path / "mbpp.jsonl"
    rows = [{"task_id": 11, "text": "Write a python function to remove first and last occurrence of a given character from the string.",
             "code": "def remove_Occ(s,ch):\n    for i in range(len(s)):\n        if (s[i] == ch):\n            s = s[0 : i] + s[i + 1:]\n            break\n    return s",
             "test_list": ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("abcda","a") == "bcd"']}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    spec = {"path": str(path), "name": "mbpp", "text_fields": ["text", "code", "test_list"],
            "entry_point_field": None, "entry_point_from": ["code"]}
    items = load_benchmarks(include_humaneval=True, specs=[spec])
    assert items[-1].entry_point == "remove_Occ" and items[-1].benchmark == "mbpp"
    d = Decontaminator(items)
    assert d.check("x = remove_Occ('a', 'b')").task_id == "11"
    hit = d.check("Task: write a Python function to remove first and last occurrence of a given character from the string")
    assert hit and hit.benchmark == "mbpp" and hit.reason == "benchmark_10gram"
    with pytest.raises(KeyError, match="no id field"):
        from opencoder_assets.core.decontamination import load_jsonl_benchmark

        load_jsonl_benchmark(BenchmarkSpec(path=str(path), name="x", id_field="id"))
