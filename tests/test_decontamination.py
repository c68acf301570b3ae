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
    assert index.check("x = solver.has_close_elements(nums, 0.5)").task_id == "HumanEval/0"
    assert is_generic_entry_point("add") and is_generic_entry_point("is_prime")
    assert not is_generic_entry_point("has_close_elements") and not is_generic_entry_point("minPath")


def test_strict_entry_points_by_default(index: Decontaminator) -> None:
    """Every HumanEval entry point is matched (the recipe): generic names too, as a bare call or a
    definition; a method of another object (``s.add(x)``, ``np.median(a)``) is not the benchmark's."""
    assert index.stats.stoplisted_entry_points == []
    assert index.stats.entry_points == len({i.entry_point for i in load_humaneval()})
    assert index.check("Write a function below_zero(operations)").task_id == "HumanEval/3"
    assert index.check("def add(a, b):\n    return a + b\n").task_id == "HumanEval/53"
    assert index.check("print(add(1, 2))").task_id == "HumanEval/53"
    assert index.check("seen = set()\nseen.add(x)\nm = np.median(a)\nq = ptr -> search(k)") is None


def test_generic_stoplist_is_opt_in() -> None:
    opt = Decontaminator(load_humaneval(), stoplist_generic_entry_points=True)
    assert "below_zero" in opt.stats.stoplisted_entry_points and "add" in opt.stats.stoplisted_entry_points
    assert opt.check("Write a function below_zero(operations)") is None
    assert opt.check("result = has_close_elements(nums, 0.5)").task_id == "HumanEval/0"
    named = Decontaminator(load_humaneval(), entry_point_stoplist=["below_zero"])
    assert named.check("Write a function below_zero(operations)") is None
    assert named.check("print(add(1, 2))").task_id == "HumanEval/53"


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
    """Regression check against false positives: real, unrelated code (stdlib functions). With the
    generic-name stop-list (opt-in) nothing may match by any rule; in strict mode (the default) the
    only extra hits are functions that define or call a generic benchmark entry point by name."""
    lenient = Decontaminator(load_humaneval(), stoplist_generic_entry_points=True)
    checked = 0
    hits: list[tuple[str, str, str, str]] = []
    strict_hits: list[tuple[str, str, str, str]] = []
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
                text = "\n".join(lines[node.lineno - 1:node.end_lineno])
                hit = lenient.check(text)
                if hit is not None:  # any rule: an entry-point hit on stdlib code is a false positive too
                    hits.append((path.name, node.name, hit.reason, hit.task_id))
                strict = index.check(text)
                if strict is not None:
                    strict_hits.append((path.name, node.name, strict.reason, strict.evidence))
    assert checked > 1000 and hits == []
    assert strict_hits and all(reason == "benchmark_entry_point" and name in index.stats.bare_only_entry_points
                               for _, _, reason, name in strict_hits), strict_hits[:5]


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


# ---------------------------------------------------------------------------------- through Dagster
BELOW_ZERO = "Write a function below_zero(operations) that tells whether a bank balance ever drops below zero."


def _dagster_resources(tmp_path: Path) -> dict:
    from resources import CorpusStorage, MetricsStore, PipelineSettings

    return {"storage": CorpusStorage(root=str(tmp_path / "corpus")),
            "metrics": MetricsStore(db_path=str(tmp_path / "metrics.duckdb")), "settings": PipelineSettings()}


@pytest.mark.parametrize("stoplist", [False, True], ids=["strict-default", "stoplist-opt-in"])
def test_sft_decontamination_strict_by_default_through_dagster(tmp_path: Path, stoplist: bool) -> None:
    """sft_decontaminated: strict (default) removes the below_zero instruction naming HumanEval/3;
    the generic stop-list, switched on in the launchpad config, keeps it."""
    from dagster import materialize

    from opencoder_assets.assets.sft import benchmark_sets, sft_decontaminated, sft_stage1

    src = tmp_path / "stage1.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in [
        {"instruction": BELOW_ZERO, "output": "Track the running sum and return True once it is negative."},
        {"instruction": "How do I reverse a list in Python?", "output": "Use items[::-1] or items.reverse()."},
    ]) + "\n")
    res = _dagster_resources(tmp_path)
    dec_cfg = {"stages": ["stage1"]} | ({"stoplist_generic_entry_points": True} if stoplist else {})
    run_config = {"ops": {"sft_stage1": {"config": {"sources": [{"path": str(src), "name": "user"}],
                                                      "include_synthesis": False}},
                          "sft_decontaminated": {"config": dec_cfg}}}
    assert materialize([sft_stage1, benchmark_sets, sft_decontaminated], resources=res, run_config=run_config).success
    rows = res["metrics"].query(
        "SELECT decision, reason, detail FROM file_decisions WHERE step = 'sft_decontaminated' ORDER BY decision")
    if stoplist:
        assert rows == [("kept", None, None), ("kept", None, None)]
    else:
        assert rows == [("dropped", "benchmark_entry_point", "HumanEval/3"), ("kept", None, None)]
        assert res["metrics"].query("SELECT task_id, view, evidence FROM decontamination_matches") == [
            ("HumanEval/3", "entry_point", "below_zero")]


def _humaneval_file(task: int) -> str:
    item = load_humaneval()[task]
    return item.texts[0] + item.texts[1]


@pytest.mark.parametrize("decontaminate", [True, False], ids=["decontaminated", "off"])
def test_annealing_mix_drops_benchmark_solutions_through_dagster(tmp_path: Path, decontaminate: bool) -> None:
    """annealing_mix: a RefineCode file holding a HumanEval solution is a dropped decision whose
    detail names the task (and a decontamination_matches row); its place in the budget goes to clean
    files. With ``decontaminate=False`` it is selected like any file."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from dagster import materialize

    from opencoder_assets.assets.annealing import annealing_mix
    from opencoder_assets.assets.sft import benchmark_sets
    from opencoder_assets.core.schema import CODE_SCHEMA, stable_file_id

    files = {"solutions/close.py": _humaneval_file(0),
             "solutions/renamed.py": _humaneval_file(12).replace("longest", "pick_longest"),
             **{f"lib/{n}": (STDLIB / n).read_text() for n in ("colorsys.py", "keyword.py", "reprlib.py", "glob.py")}}
    rows = [{"file_id": stable_file_id("test", "repo", path), "source": "test", "repo": "repo", "path": path,
             "language": "python", "doc_type": "code", "ext": ".py", "size_bytes": len(text.encode()), "sha256": None,
             "stars": 1, "commit_time": None, "content": text} for path, text in files.items()]
    res = _dagster_resources(tmp_path)
    w = res["storage"].writer("refinecode_code", "python")
    pq.write_table(pa.Table.from_pylist(rows, schema=CODE_SCHEMA), w.shard_path(0))
    w.commit()
    cfg = {"weights": {"original": 1.0}, "decontaminate": decontaminate}
    result = materialize([benchmark_sets, annealing_mix], resources=res,
                         run_config={"ops": {"annealing_mix": {"config": cfg}}})
    assert result.success
    decisions = {r[0]: r[1:] for r in res["metrics"].query(
        "SELECT path, decision, reason, detail FROM file_decisions WHERE step = 'annealing_mix'")}
    selected = set(pq.read_table(res["storage"].shards("annealing_mix", None))["sample_id"].to_pylist())
    close_id = stable_file_id("test", "repo", "solutions/close.py")
    if not decontaminate:
        assert close_id in selected and decisions["solutions/close.py"][0] == "kept"
        return
    assert decisions["solutions/close.py"] == ("dropped", "benchmark_entry_point", "HumanEval/0 [humaneval, original]")
    assert decisions["solutions/renamed.py"][:2] == ("dropped", "benchmark_10gram")
    assert decisions["solutions/renamed.py"][2].startswith("HumanEval/12 ")
    assert close_id not in selected
    assert {p for p, d in decisions.items() if d[0] == "kept"} == {p for p in files if p.startswith("lib/")}
    matches = res["metrics"].query("SELECT step, source, task_id FROM decontamination_matches ORDER BY task_id")
    assert matches == [("annealing_mix", "original", "HumanEval/0"), ("annealing_mix", "original", "HumanEval/12")]


def test_generic_names_count_only_where_defined_in_definition_mode():
    """Whole files (annealing): `add(` as a call is not contamination, `def add(` is; specific
    names (with `_`) count as a call in both modes."""
    from opencoder_assets.core.decontamination import Decontaminator, load_humaneval

    items = load_humaneval()
    strict = Decontaminator(items)
    files = Decontaminator(items, generic_entry_points_as="definition")
    generic = sorted(strict.stats.bare_only_entry_points)[0]
    call = f"total = {generic}(3, 4)\nprint(total)\n"
    definition = f"def {generic}(a, b):\n    return a\n"
    assert strict.check(call) is not None and files.check(call) is None
    assert strict.check(definition) is not None and files.check(definition) is not None
    specific = next(i.entry_point for i in items if i.entry_point and "_" in i.entry_point
                    and i.entry_point not in strict.stats.bare_only_entry_points)
    assert files.check(f"x = {specific}([1, 2])\n") is not None
