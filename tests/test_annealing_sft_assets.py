"""Full runs of the annealing and SFT assets against a real HTTP teacher server and real resources."""

from __future__ import annotations

import json
import sys
import sysconfig
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import materialize

sys.path.insert(0, str(Path(__file__).parent))
from test_teacher import TeacherServer, raw_reply, when_prompt_contains  # noqa: E402

from opencoder_assets.assets.annealing import (  # noqa: E402
    ANNEALING_ASSETS,
    algorithmic_corpus,
    annealing_mix,
    code_textbooks,
    synthetic_snippets,
)
from opencoder_assets.assets.sft import SFT_ASSETS, package_instruct  # noqa: E402
from opencoder_assets.core.annealing import RECIPE_MIXTURE, approx_tokens, plan_budgets, selection_sql  # noqa: E402
from opencoder_assets.core.schema import CODE_SCHEMA, stable_file_id  # noqa: E402
from resources import CorpusStorage, MetricsStore, PipelineSettings  # noqa: E402
from resources.teacher import TeacherLLM  # noqa: E402

#: the running interpreter's standard library (real code nobody here wrote)
STDLIB = Path(sysconfig.get_paths()["stdlib"])

LEETCODE_PY = {
    "two_sum.py": '''# LeetCode 1. Two Sum
from typing import List


class Solution:
    def twoSum(self, nums: List[int], target: int) -> List[int]:
        index = {}
        for i, n in enumerate(nums):
            if target - n in index:
                return [index[target - n], i]
            index[n] = i
        return []
''',
    "valid_parentheses.py": '''"""https://leetcode.com/problems/valid-parentheses/"""


class Solution:
    def isValid(self, s: str) -> bool:
        stack = []
        pairs = {")": "(", "]": "[", "}": "{"}
        for ch in s:
            if ch in pairs:
                if not stack or stack.pop() != pairs[ch]:
                    return False
            else:
                stack.append(ch)
        return not stack
''',
    "codility_binary_gap.py": '''def solution(N):
    """Longest run of zeros surrounded by ones in the binary representation of N."""
    best = current = 0
    seen_one = False
    for bit in bin(N)[2:]:
        if bit == "1":
            if seen_one:
                best = max(best, current)
            seen_one, current = True, 0
        else:
            current += 1
    return best
''',
    "merge_intervals.py": '''# leetcode 56
def merge(intervals):
    intervals.sort()
    merged = []
    for start, end in intervals:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged
''',
    "climbing_stairs.py": '''class Solution:
    def climbStairs(self, n: int) -> int:
        a, b = 1, 1
        for _ in range(n):
            a, b = b, a + b
        return a
''',
    "max_subarray.py": '''# LeetCode 53 - Maximum Subarray (Kadane)
def max_sub_array(nums):
    best = cur = nums[0]
    for x in nums[1:]:
        cur = max(x, cur + x)
        best = max(best, cur)
    return best
''',
}
LEETCODE_JAVA = {
    "TwoSum.java": '''import java.util.HashMap;

class Solution {
    public int[] twoSum(int[] nums, int target) {
        HashMap<Integer, Integer> seen = new HashMap<>();
        for (int i = 0; i < nums.length; i++) {
            Integer j = seen.get(target - nums[i]);
            if (j != null) return new int[] {j, i};
            seen.put(nums[i], i);
        }
        return new int[0];
    }
}
''',
}
STDLIB_FILES = ["heapq.py", "bisect.py", "colorsys.py", "keyword.py", "shlex.py", "fnmatch.py", "glob.py",
                "textwrap.py", "graphlib.py", "reprlib.py", "statistics.py", "string.py"]


def _code_rows(files: dict[str, str], repo: str, language: str, ext: str) -> list[dict[str, Any]]:
    rows = []
    for path, text in files.items():
        raw = text.encode()
        rows.append({"file_id": stable_file_id("test", repo, path), "source": "test", "repo": repo, "path": path,
                     "language": language, "doc_type": "code", "ext": ext, "size_bytes": len(raw),
                     "sha256": None, "stars": 1, "commit_time": None, "content": text})
    return rows


def write_upstream(storage: CorpusStorage) -> None:
    """A real refinecode_code partition per language, from stdlib files + LeetCode-style files."""
    stdlib = {f"Lib/{name}": (STDLIB / name).read_text() for name in STDLIB_FILES}
    py = _code_rows(stdlib, "cpython", "python", ".py") + _code_rows(LEETCODE_PY, "algos", "python", ".py")
    w = storage.writer("refinecode_code", "python")
    pq.write_table(pa.Table.from_pylist(py, schema=CODE_SCHEMA), w.shard_path(0))
    w.commit()
    w = storage.writer("refinecode_code", "java")
    pq.write_table(pa.Table.from_pylist(_code_rows(LEETCODE_JAVA, "algos-java", "java", ".java"), schema=CODE_SCHEMA),
                   w.shard_path(0))
    w.commit()


CONTAMINATED = (
    "Here is a tidy implementation:\n\n"
    "def any_two_near(vals, tol):\n"
    "    '''Check if in given list of numbers, are any two numbers closer to each other than\n"
    "    given threshold.'''\n"
    "    for p, u in enumerate(vals):\n"
    "        for q, w in enumerate(vals):\n"
    "            if p != q:\n"
    "                if abs(u - w) < tol: return True\n"
    "    return False\n"
)


def write_sft_sources(tmp: Path) -> tuple[Path, Path]:
    stage1 = tmp / "realuser.parquet"
    pq.write_table(pa.table({
        "query": ["How do I reverse a list in Python?", "What does `git rebase` do?"],
        "answer": ["Use `items[::-1]` for a copy or `items.reverse()` in place.",
                   "It replays your commits on top of another base commit."],
    }), stage1)
    stage2 = tmp / "evol.jsonl"
    with open(stage2, "w") as f:
        for ins, out in [
            ("Write a function that checks whether any two values are closer than a tolerance.", CONTAMINATED),
            ("Implement has_close_elements for me.", "def has_close_elements(a, t):\n    return any(...)\n"),
            ("Write a function computing the median of three numbers.",
             "def median3(a, b, c):\n    return sorted([a, b, c])[1]\n"),
            ("Explain Python's heapq module.", (STDLIB / "heapq.py").read_text()[:2000]),
        ]:
            f.write(json.dumps({"instruction": ins, "output": out}) + "\n")
    return stage1, stage2


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TEST_TEACHER_KEY", "sk-test")
    with TeacherServer(api_key="sk-test") as server:
        resources = {
            "storage": CorpusStorage(root=str(tmp_path / "corpus")),
            "metrics": MetricsStore(db_path=str(tmp_path / "metrics.duckdb")),
            "settings": PipelineSettings(),
            "teacher": TeacherLLM(base_url=server.base_url, model="tiny-coder", api_key_env="TEST_TEACHER_KEY",
                                  cache_path=str(tmp_path / "teacher.sqlite"), requests_per_minute=60_000,
                                  concurrency=4, max_retries=2),
        }
        write_upstream(resources["storage"])
        yield server, resources, tmp_path


def _meta(result: Any, asset_name: str) -> dict[str, Any]:
    for mat in result.asset_materializations_for_node(asset_name):
        return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    raise AssertionError(f"no materialization for {asset_name}")


def test_full_run_against_teacher_server(env) -> None:
    server, res, tmp = env
    storage: CorpusStorage = res["storage"]
    metrics: MetricsStore = res["metrics"]
    for lang in ("python", "java"):
        r = materialize([algorithmic_corpus], partition_key=lang, resources=res)
        assert r.success
    algo = pq.read_table(storage.shards("algorithmic_corpus", "python")).to_pylist()
    assert sorted(r["path"] for r in algo) == sorted(LEETCODE_PY)
    assert len(pq.read_table(storage.shards("algorithmic_corpus", "java"))) == 1
    assert metrics.query("SELECT count(*) FROM file_decisions WHERE step = 'algorithmic_corpus' "
                         "AND reason = 'no_algorithmic_keyword'")[0][0] == len(STDLIB_FILES)

    stage1_src, stage2_src = write_sft_sources(tmp)
    run_config = {"ops": {
        "synthetic_snippets": {"config": {"max_seeds": 20, "wall_time_s": 5.0, "cpu_time_s": 3}},
        "code_textbooks": {"config": {"max_seeds": 20}},
        "package_instruct": {"config": {"packages": ["json", "graphlib", "not_a_real_pkg"], "max_items_per_package": 4}},
        "sft_stage1": {"config": {"sources": [{"path": str(stage1_src), "name": "realuser_instruct",
                                               "instruction_field": "query", "output_field": "answer"}]}},
        "sft_stage2": {"config": {"sources": [{"path": str(stage2_src), "name": "evol_instruct"}]}},
    }}
    selection = [synthetic_snippets, code_textbooks, annealing_mix, *SFT_ASSETS]
    result = materialize(selection, resources=res, run_config=run_config)
    assert result.success

    # Synthetic snippets: verified ones kept, wrong tests visibly dropped.
    snip = _meta(result, "synthetic_snippets")
    assert snip["seeds"] == 7 and 0 < snip["kept_files"] < 7
    dropped = metrics.query("SELECT reason, count(*) FROM file_decisions WHERE step = 'synthetic_snippets' "
                            "AND decision = 'dropped' GROUP BY reason")
    assert dropped and all(reason == "verification_failed" for reason, _ in dropped)
    kept = pq.read_table(storage.shards("synthetic_snippets", None)).to_pylist()
    assert all("assert" in r["tests"] and r["code"].startswith("def ") for r in kept)

    tb = _meta(result, "code_textbooks")
    assert tb["kept_files"] == 7
    assert _meta(result, "package_instruct")["kept_files"] >= 4

    # Annealing mix: recipe proportions within one document of granularity.
    mix = _meta(result, "annealing_mix")
    rows = {r["category"]: r for r in mix["token_table_json"]}
    assert set(rows) == set(RECIPE_MIXTURE)
    total = sum(r["selected_tokens"] for r in rows.values())
    anneal = pq.read_table(storage.shards("annealing_mix", None))
    max_doc = max(anneal["tokens"].to_pylist())
    for r in rows.values():
        assert abs(r["actual_share"] - r["target_share"]) <= max_doc / total + 1e-9, r
    assert "| original |" in mix["token_table"]
    # budgets count real tokens with the pipeline tokenizer (core/tokens.py), not a byte estimate
    from opencoder_assets.core.tokens import count_tokens

    assert anneal["tokens"].to_pylist() == count_tokens(anneal["text"].to_pylist())
    assert "code_bpe" in mix["tokenizer"]

    # SFT stages + decontamination.
    s1, s2 = _meta(result, "sft_stage1"), _meta(result, "sft_stage2")
    assert s1["stage_recipe"]["epochs"] == 1 and s1["stage_recipe"]["global_batch_size"] == 4096
    assert s2["stage_recipe"]["learning_rate"] == 5e-5 and s2["stage_recipe"]["epochs"] == 3
    assert s2["rows_by_source"]["evol_instruct"] == 4 and s2["rows_by_source"]["synthetic_snippets"] == snip["kept_files"]
    dec = _meta(result, "sft_decontaminated")
    # strict entry points (the default): the textbook on codility's ``def solution(N)`` defines
    # HumanEval/121's entry point ``solution`` and goes too
    assert dec["stage2_removed"] == 2 and dec["stage1_removed"] == 1
    assert metrics.query("SELECT m.source, d.detail, m.evidence FROM file_decisions d JOIN decontamination_matches m "
                         "ON m.sample_id = d.file_id AND m.partition = d.partition WHERE d.step = 'sft_decontaminated' "
                         "AND d.partition = 'stage1'") == [("code_textbooks", "HumanEval/121", "solution")]
    removed = metrics.query("""SELECT d.reason, d.detail, m.view FROM file_decisions d
        JOIN decontamination_matches m ON m.sample_id = d.file_id AND m.partition = d.partition
        WHERE d.step = 'sft_decontaminated' AND d.partition = 'stage2' AND d.decision = 'dropped' ORDER BY d.reason""")
    assert removed == [("benchmark_10gram", "HumanEval/0", "plain"), ("benchmark_entry_point", "HumanEval/0", "entry_point")]
    clean = pq.read_table(storage.shards("sft_decontaminated", "stage2")).to_pylist()
    assert any("median3" in r["output"] for r in clean) and any(r["source"] == "package_instruct" for r in clean)

    # Resumability: a re-run reuses every cached teacher answer (no new HTTP requests).
    before = server.count
    again = materialize([synthetic_snippets, code_textbooks, package_instruct], resources=res, run_config={
        "ops": {k: run_config["ops"][k] for k in ("synthetic_snippets", "code_textbooks", "package_instruct")}})
    assert again.success and server.count == before
    assert _meta(again, "synthetic_snippets")["teacher_cache_hits"] > 0
    assert _meta(again, "synthetic_snippets")["kept_files"] == snip["kept_files"]


def _published(storage: CorpusStorage, metrics: MetricsStore, step: str) -> dict[str, Any]:
    """Everything a run of ``step`` publishes: the CURRENT version, its rows, its metrics rows."""
    base = storage.base_dir(step, None)
    return {
        "current": storage.current_dir(step, None),
        "versions": sorted(p.name for p in base.iterdir()),
        "rows": pq.read_table(storage.shards(step, None)).to_pylist(),
        "decisions": metrics.query("SELECT * FROM file_decisions WHERE step = ? ORDER BY ALL", [step]),
        "step_runs": metrics.query("SELECT run_id, input_count, kept, dropped FROM step_runs WHERE step = ? "
                                   "ORDER BY ALL", [step]),
    }


def _failure_text(result: Any) -> str:
    """All error messages (with causes) of the failed steps of a run."""
    texts = []
    for event in result.all_events:
        if event.is_step_failure:
            err = event.step_failure_data.error
            while err is not None:
                texts.append(err.message)
                err = err.cause
    return "\n".join(texts)


TEACHER_ASSETS = {
    "synthetic_snippets": (synthetic_snippets, {"max_seeds": 20, "wall_time_s": 5.0, "cpu_time_s": 3}),
    "code_textbooks": (code_textbooks, {"max_seeds": 20}),
    "package_instruct": (package_instruct, {"packages": ["json", "graphlib"], "max_items_per_package": 4}),
}


def test_teacher_outage_keeps_previous_version(env) -> None:
    """Teacher down: every teacher-using asset FAILS and its previous data + metrics rows stay as they were."""
    server, res, tmp = env
    storage: CorpusStorage = res["storage"]
    metrics: MetricsStore = res["metrics"]
    for lang in ("python", "java"):
        assert materialize([algorithmic_corpus], partition_key=lang, resources=res).success

    def run(name: str, cache: str, **teacher: Any) -> Any:
        asset_def, cfg = TEACHER_ASSETS[name]
        resources = {**res, "teacher": TeacherLLM(
            base_url=server.base_url, model="tiny-coder", api_key_env="TEST_TEACHER_KEY",
            cache_path=str(tmp / f"{cache}.sqlite"), requests_per_minute=60_000, concurrency=4, max_retries=2,
            **teacher)}
        return materialize([asset_def], resources=resources, raise_on_error=False,
                           run_config={"ops": {name: {"config": cfg}}})

    good = {}
    for name in TEACHER_ASSETS:
        assert run(name, "good").success, name
        good[name] = _published(storage, metrics, name)
        assert good[name]["rows"] and good[name]["decisions"], name

    server.always = raw_reply(503, {"error": "overloaded"}, {"Retry-After": "0"})
    for name in TEACHER_ASSETS:
        before = server.count
        result = run(name, f"down-{name}")
        assert not result.success, name
        assert server.count > before  # it really asked (fresh cache) and got 503s
        text = _failure_text(result)
        assert f"{name}: " in text and "failed at the teacher" in text and "max_teacher_error_share=0.5" in text
        assert "HTTP 503" in text and server.base_url in text
        assert _published(storage, metrics, name) == good[name], name  # data, version dirs, metrics: unchanged

    # One seed of seven failing (14%) is tolerated and recorded; a stricter threshold refuses it.
    server.always = when_prompt_contains("climbStairs", raw_reply(503, {"error": "no"}, {"Retry-After": "0"}))
    partial = run("code_textbooks", "partial")
    assert partial.success
    assert metrics.query("SELECT count(*) FROM file_decisions WHERE step = 'code_textbooks' "
                         "AND reason = 'teacher_error'")[0][0] == 1
    published = _published(storage, metrics, "code_textbooks")
    strict = run("code_textbooks", "strict", max_teacher_error_share=0.1)
    assert not strict.success and "1/7 items (14%)" in _failure_text(strict)
    assert _published(storage, metrics, "code_textbooks") == published


def test_mixture_proportions_on_real_code() -> None:
    """Core sampler: thousands of real stdlib functions per category, shares within 0.5 pp."""
    import ast

    docs: list[str] = []
    for path in sorted(STDLIB.glob("*.py"))[:120]:
        src = path.read_text(errors="replace")
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        lines = src.splitlines()
        docs.extend("\n".join(lines[n.lineno - 1:n.end_lineno]) for n in ast.walk(tree)
                    if isinstance(n, ast.FunctionDef) and n.end_lineno)
    cats = list(RECIPE_MIXTURE)
    rows = [{"category": cats[i % 4], "sample_id": f"d{i}", "tokens": approx_tokens(t)} for i, t in enumerate(docs)]
    con = duckdb.connect()
    con.register("rows_tbl", pa.Table.from_pylist(rows))
    con.execute("CREATE TABLE candidates AS SELECT * FROM rows_tbl")
    pools = {c: (int(t), int(n)) for c, t, n in con.execute(
        "SELECT category, sum(tokens), count(*) FROM candidates GROUP BY ALL").fetchall()}
    plan = plan_budgets(RECIPE_MIXTURE, pools, None)
    con.execute("CREATE TABLE budgets (category VARCHAR, budget BIGINT)")
    con.executemany("INSERT INTO budgets VALUES (?, ?)", [[c.category, c.budget_tokens] for c in plan.categories.values()])
    sel = con.execute(f"SELECT category, sum(tokens) FROM ({selection_sql('candidates', 'budgets', 42)}) GROUP BY ALL").fetchall()
    got = dict(sel)
    total = sum(got.values())
    for c, cp in plan.categories.items():
        assert abs(got[c] / total - cp.target_share) < 0.005, (c, got[c] / total, cp.target_share)
    again = dict(con.execute(f"SELECT category, list(sample_id ORDER BY sample_id) FROM "
                             f"({selection_sql('candidates', 'budgets', 42)}) GROUP BY ALL").fetchall())
    other = dict(con.execute(f"SELECT category, list(sample_id ORDER BY sample_id) FROM "
                             f"({selection_sql('candidates', 'budgets', 7)}) GROUP BY ALL").fetchall())
    first = dict(con.execute(f"SELECT category, list(sample_id ORDER BY sample_id) FROM "
                             f"({selection_sql('candidates', 'budgets', 42)}) GROUP BY ALL").fetchall())
    assert again == first and other != first  # deterministic by seed


def test_asset_lists_wire_into_definitions(tmp_path: Path) -> None:
    from dagster import Definitions

    defs = Definitions(
        assets=[*ANNEALING_ASSETS, *SFT_ASSETS],
        resources={"storage": CorpusStorage(root=str(tmp_path)), "metrics": MetricsStore(db_path=str(tmp_path / "m.db")),
                   "settings": PipelineSettings(), "teacher": TeacherLLM(cache_path=str(tmp_path / "t.sqlite"))},
    )
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"algorithmic_corpus", "synthetic_snippets", "code_textbooks", "annealing_mix", "package_instruct",
            "sft_stage1", "sft_stage2", "benchmark_sets", "sft_decontaminated"} <= keys


def test_synthetic_snippets_refuses_without_bwrap_before_asking_the_teacher(env, monkeypatch) -> None:
    """No kernel isolation on the machine: the asset fails naming the opt-in, and the teacher is
    never asked (no model output is produced that nothing could safely run)."""
    import shutil

    server, res, _tmp = env
    for lang in ("python", "java"):
        assert materialize([algorithmic_corpus], partition_key=lang, resources=res).success
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "bwrap" else real_which(name, *a, **k))
    before = server.count
    result = materialize([synthetic_snippets], resources=res, raise_on_error=False,
                         run_config={"ops": {"synthetic_snippets": {"config": {"max_seeds": 5}}}})
    assert not result.success
    text = _failure_text(result)
    assert "bwrap not found" in text and "unsafe-audit-only" in text and "NOT a security boundary" in text
    assert server.count == before  # refused before the first teacher request
    assert not res["storage"].has("synthetic_snippets", None)
