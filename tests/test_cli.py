"""The ``opencoder`` command line as a person uses it: ``python -m opencoder_assets.cli ...`` in a
fresh process, on real folders of stdlib code, a real Parquet table in The Stack v2 layout and
real threshold/run-config files; configuration errors are caught before anything heavy runs.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import materialize

from opencoder_assets.core.ingest import TableMapping, iter_table_batches, table_partitions
from opencoder_assets.core.languages import LINGUIST_RENAMES
from tests.conftest import STDLIB, copy_into, stdlib_files

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ["demo", "run", "validate", "why", "lineage", "export", "sql"]


def cli(*args: str, data: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``opencoder ARGS`` in a fresh process with its data under ``data``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENCODER_DATA": str(data), "OPENCODER_ENGINE": "inprocess",
           "OPENCODER_WORKERS": "1"}
    for key in ("OPENCODER_METRICS_DB", "DAGSTER_HOME"):
        env.pop(key, None)
    return subprocess.run([sys.executable, "-m", "opencoder_assets.cli", *args], cwd=cwd or data.parent, env=env,
                          capture_output=True, text=True, timeout=600)


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in proc.stderr, proc.stderr
    return [line for line in proc.stderr.splitlines() if line.strip()]


def stack_v2_table(path: Path, files: list[Path], *, drop: tuple[str, ...] = (), rename: dict[str, str] | None = None,
                   language: list[str | None] | None = None) -> Path:
    """A Parquet table with The Stack v2's columns (plus ``content``), minus ``drop``."""
    n = len(files)
    cols = {
        "blob_id": [f"{i:040x}" for i in range(n)],
        "repo_name": [f"org/repo{i % 2}" for i in range(n)],
        "path": [f"src/{f.name}" for f in files],
        "language": language if language is not None else ["Python"] * n,
        "star_events_count": pa.array([10 * i for i in range(n)], pa.int64()),
        "committer_date": pa.array([dt.datetime(2023, 1, 1 + i % 28) for i in range(n)], pa.timestamp("ns")),
        "length_bytes": [f.stat().st_size for f in files],
        "extension": [f.suffix.lstrip(".") for f in files],
        "content": [f.read_text(encoding="utf-8") for f in files],
    }
    for name in drop:
        cols.pop(name)
    for old, new in (rename or {}).items():
        cols[new] = cols.pop(old)
    pq.write_table(pa.table(cols), path)
    return path


# ------------------------------------------------------------------------------------- help
@pytest.mark.parametrize("command", ["", *COMMANDS, "lineage where", "lineage inputs"])
def test_every_help_works_and_has_examples(command: str, tmp_path: Path) -> None:
    proc = cli(*command.split(), "--help", data=tmp_path / "data")
    assert proc.returncode == 0, proc.stderr
    assert "examples:" in proc.stdout
    name = command.split()[0] if command else "demo"
    assert f"  opencoder {name}" in proc.stdout  # an example of this very command, indented as written


def test_top_level_help_lists_every_command(tmp_path: Path) -> None:
    out = cli("--help", data=tmp_path / "data").stdout
    for command in COMMANDS:
        assert f"\n  {command} " in out


# ---------------------------------------------------------------------------------- validate
def test_validate_ok_on_folders_and_a_stack_v2_table(tmp_path: Path) -> None:
    copy_into(tmp_path / "repos" / "alpha", stdlib_files(3))
    table = stack_v2_table(tmp_path / "stack.parquet", stdlib_files(3, start=10))
    proc = cli("validate", "--folders", str(tmp_path / "repos"), "--tables", str(table), "--partitions", "python,c",
               data=tmp_path / "data")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok: 1 folder(s), 1 table(s), partitions python, c")


def test_validate_reports_each_threshold_problem_on_its_own_line(tmp_path: Path) -> None:
    th = tmp_path / "my_thresholds.toml"
    th.write_text("[python]\nqsc_code_num_wrds = { lt = 30 }\nqsc_code_num_lines = { lt = 'ten' }\n"
                  "[pyhton]\nqsc_code_num_words = { lt = 30 }\n")
    proc = cli("validate", "--thresholds", str(th), "--folders", str(tmp_path), data=tmp_path / "data")
    assert proc.returncode == 2
    lines = error_lines(proc)
    assert f"opencoder validate: error: {th}: [python] qsc_code_num_wrds: unknown signal name 'qsc_code_num_wrds' " \
           "(did you mean 'qsc_code_num_words'?)" in lines
    assert f"opencoder validate: error: {th}: [python] qsc_code_num_lines: lt must be a number" in lines
    assert any(line.startswith(f"opencoder validate: error: {th}: unknown config table [pyhton] "
                               "(did you mean 'python'?)") for line in lines)
    broken = tmp_path / "broken.toml"
    broken.write_text("[python\nqsc_code_num_words = { lt = 30 }\n")
    lines = error_lines(cli("validate", "--thresholds", str(broken), "--folders", str(tmp_path),
                            data=tmp_path / "data"))
    assert [line for line in lines if "broken.toml" in line] == [
        line for line in lines if line.startswith(f"opencoder validate: error: {broken}: invalid TOML: ")]
    assert len([line for line in lines if "broken.toml" in line]) == 1


def test_validate_names_the_folder_and_suggests(tmp_path: Path) -> None:
    copy_into(tmp_path / "repos" / "alpha", stdlib_files(2))
    proc = cli("validate", "--folders", str(tmp_path / "repo"), str(tmp_path / "repos" / "alpha"),
               data=tmp_path / "data")
    assert proc.returncode == 2
    lines = error_lines(proc)
    assert lines == [
        f"opencoder validate: error: {tmp_path / 'repo'}: code folder does not exist "
        f"(did you mean {str(tmp_path / 'repos')!r}?)",
        f"opencoder validate: error: {tmp_path / 'repos' / 'alpha'}: code folder contains no repository (it looks "
        f"like a repository itself: give its parent {tmp_path / 'repos'}, whose sub-directories are the repositories)",
    ]


def test_validate_tables_required_and_optional_columns(tmp_path: Path) -> None:
    files = stdlib_files(3, start=20)
    data = tmp_path / "data"
    # optional columns really optional: no stars, no commit date, no language, no repo
    bare = stack_v2_table(tmp_path / "bare.parquet", files,
                          drop=("star_events_count", "committer_date", "language", "repo_name"))
    assert cli("validate", "--tables", str(bare), data=data).returncode == 0
    # content under another name: the error names the file, the column and the column map to use
    text = stack_v2_table(tmp_path / "text.parquet", files, rename={"content": "text", "blob_id": "id"})
    proc = cli("validate", "--tables", str(text), data=data)
    assert proc.returncode == 2
    (line,) = error_lines(proc)
    assert line.startswith(f"opencoder validate: error: {text}: missing column 'content' (content) (the file has "
                           "'text': column map {\"content\": \"text\"}); the file has [")
    ok = cli("validate", "--tables", str(text), "--column-map", '{"content": "text", "file_id": "id"}', data=data)
    assert ok.returncode == 0, ok.stderr
    # an explicitly mapped optional column must exist (a typo is not a silent null)
    proc = cli("validate", "--tables", str(bare), "--column-map", '{"stars": "star_event_count"}', data=data)
    (line,) = error_lines(proc)
    assert proc.returncode == 2 and f"{bare}: missing column 'star_event_count' (stars)" in line
    # a column map key that does not exist, and a column map that is not JSON
    (line,) = error_lines(cli("validate", "--tables", str(bare), "--column-map", '{"contnet": "text"}', data=data))
    assert line.startswith("opencoder validate: error: column map: unknown key 'contnet' (did you mean 'content'?)")
    (line,) = error_lines(cli("validate", "--tables", str(bare), "--column-map", "{content: text}", data=data))
    assert line.startswith("opencoder validate: error: --column-map: not JSON")


def test_validate_partitions_assets_and_run_config(tmp_path: Path) -> None:
    (tmp_path / "repos" / "a").mkdir(parents=True)
    bad_th = tmp_path / "th.toml"
    bad_th.write_text("[python]\nqsc_code_num_words = { lt = 30, gt = true }\n")
    config = tmp_path / "run_config.yaml"
    config.write_text("opps: {}\nops:\n  filtered_code:\n    config:\n      thresholds_pth: x.toml\n"
                      "  quality_signal:\n    config: {lang: en}\n"
                      "  transformed_code:\n    config:\n      thresholds_path: th.toml\n")
    proc = cli("validate", "--folders", str(tmp_path / "repos"), "--partitions", "pyhton", "c++", "--select",
               "filterd_code", "--config", str(config), data=tmp_path / "data")
    assert proc.returncode == 2
    lines = [line.removeprefix("opencoder validate: error: ") for line in error_lines(proc)]
    assert "partition 'pyhton': unknown (did you mean 'python'?)" in lines
    assert "partition 'c++': unknown (c++ files are in partition 'cpp')" in lines
    assert any(line.startswith("asset 'filterd_code': not a code asset (did you mean 'filtered_code'?)")
               for line in lines)
    assert any(line.startswith(f"{config}: ops.filtered_code.config.thresholds_pth: unknown field "
                               "(did you mean 'thresholds_path'?)") for line in lines)
    assert f"{config}: ops.quality_signal: not a code step (did you mean 'quality_signals'?)" in lines
    assert any(line.startswith(f"{config}: ops.transformed_code.config.thresholds_path: unknown field")
               for line in lines)
    assert any(line.startswith(f"{config}: unknown top-level key 'opps' (did you mean 'ops'?)") for line in lines)
    assert len(lines) == 7
    # a thresholds_path in the run config is checked (relative to the YAML file), and so is a table it needs
    config.write_text("ops:\n  filtered_code:\n    config:\n      thresholds_path: th.toml\n")
    proc = cli("validate", "--folders", str(tmp_path / "repos"), "--config", str(config), "--partitions", "c",
               data=tmp_path / "data")
    lines = error_lines(proc)
    assert f"opencoder validate: error: {bad_th}: [python] qsc_code_num_words: gt must be a number" in lines
    assert f"opencoder validate: error: {bad_th}: no [c] table, which filtered_code needs for partition 'c'" in lines


# ----------------------------------------------------------------------------------------- run
def test_misspelt_partition_fails_before_anything_runs(tmp_path: Path) -> None:
    copy_into(tmp_path / "repos" / "alpha", stdlib_files(2))
    data = tmp_path / "data"
    proc = cli("run", "--folders", str(tmp_path / "repos"), "--partitions", "pyhton", data=data)
    assert proc.returncode == 2
    assert error_lines(proc) == ["opencoder run: error: partition 'pyhton': unknown (did you mean 'python'?)"]
    assert proc.stdout == ""
    assert not (data / "corpus" / "source_index").exists()  # no walk happened


def test_run_with_a_broken_table_fails_before_the_walk(tmp_path: Path) -> None:
    copy_into(tmp_path / "repos" / "alpha", stdlib_files(2))
    table = stack_v2_table(tmp_path / "t.parquet", stdlib_files(2, start=5), drop=("content",))
    data = tmp_path / "data"
    proc = cli("run", "--folders", str(tmp_path / "repos"), "--tables", str(table), data=data)
    assert proc.returncode == 2
    (line,) = error_lines(proc)
    assert line.startswith(f"opencoder run: error: {table}: missing column 'content' (content); the file has [")
    assert not (data / "corpus").exists()


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, subprocess.CompletedProcess]]:
    """One real ``opencoder run`` on a folder of stdlib code with a run config that sets
    filtered_code's thresholds (files under 200 lines are dropped)."""
    base = tmp_path_factory.mktemp("cli_run")
    repo = base / "repos" / "alpha"
    for name in ("json/scanner.py", "json/tool.py", "json/decoder.py", "json/encoder.py"):
        target = repo / "pkg" / Path(name).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((STDLIB / name).read_bytes())
    conf = base / "conf"
    conf.mkdir()
    (conf / "th.toml").write_text("[python]\nqsc_code_num_lines = { lt = 200 }\nqsc_code_num_words = { lt = 30 }\n")
    (conf / "run_config.yaml").write_text("ops:\n  filtered_code:\n    config:\n      thresholds_path: th.toml\n")
    proc = cli("run", "--folders", str(base / "repos"), "--config", str(conf / "run_config.yaml"),
               "--partitions", "python", data=base / "data")
    yield base, proc


def test_run_on_own_folders_with_a_run_config(pipeline_run) -> None:
    base, proc = pipeline_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[ok] python" in proc.stdout
    assert "filtered_code[python]: 4 in, 2 kept, 2 dropped" in proc.stdout  # scanner (73 lines), tool (85 lines)


def test_why_shows_signal_values_against_thresholds(pipeline_run) -> None:
    base, _ = pipeline_run
    proc = cli("why", "alpha/pkg/scanner.py", data=base / "data")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    i = next(k for k, line in enumerate(lines) if line.strip().startswith("filtered_code"))
    assert "dropped" in lines[i] and "config=python hits=qsc_code_num_lines" in lines[i]
    assert lines[i + 1].strip() == f"qsc_code_num_lines = 73  (drops when < 200; [python] in {base / 'conf' / 'th.toml'})"
    # another threshold file explains the same drop with its own threshold
    other = base / "other.toml"
    other.write_text("[python]\nqsc_code_num_lines = { lt = 100 }\n")
    proc = cli("why", "alpha/pkg/scanner.py", "--thresholds", str(other), data=base / "data")
    assert f"qsc_code_num_lines = 73  (drops when < 100; [python] in {other})" in proc.stdout


def test_why_and_lineage_argument_order_and_unknown_files(pipeline_run) -> None:
    base, _ = pipeline_run
    data = base / "data"
    before = json.loads(cli("lineage", "--json", "where", "alpha/pkg/tool.py", data=data).stdout)
    after = json.loads(cli("lineage", "where", "alpha/pkg/tool.py", "--json", data=data).stdout)
    assert before == after and before[0]["path"] == "pkg/tool.py"
    filtered = next(s for s in before[0]["steps"] if s["step"] == "filtered_code")
    assert filtered["rules"][0]["signal"] == "qsc_code_num_lines" and filtered["rules"][0]["value"] == 85
    file_id = before[0]["file_id"]
    inputs = cli("lineage", "inputs", "--file-id", file_id, data=data)
    assert inputs.returncode == 0 and f"(file_id={file_id})" in inputs.stdout
    proc = cli("why", "--file-id", "0123456789abcdef0123", data=data)
    assert proc.returncode == 1 and error_lines(proc) == ["no file recorded for 0123456789abcdef0123"]
    assert "None/None" not in proc.stdout
    proc = cli("why", "alpha/tool.py", data=data)
    assert error_lines(proc) == ["no file recorded for alpha/tool.py; recorded files named tool.py: alpha/pkg/tool.py"]
    proc = cli("why", "alpha/pkg/tool.py", data=base / "nowhere")
    assert proc.returncode == 2
    (line,) = error_lines(proc)
    assert line.startswith("opencoder lineage: error: metrics store ") and "does not exist" in line


# ------------------------------------------------------------------------------- table sources
def test_stack_v2_table_language_column_and_optional_columns(tmp_path: Path) -> None:
    files = stdlib_files(4, start=30)
    # the table's own language wins over the extension (and C++ is spelled the Linguist way)
    table = stack_v2_table(tmp_path / "s.parquet", files, language=["Python", "C++", None, "Klingon"])
    got = {r["path"]: r for b in iter_table_batches([table], partition="python") for r in b.to_pylist()}
    assert set(got) == {f"src/{files[i].name}" for i in (0, 2, 3)}  # None / unknown -> extension (.py)
    cpp = [r for b in iter_table_batches([table], partition="cpp") for r in b.to_pylist()]
    assert [r["path"] for r in cpp] == [f"src/{files[1].name}"] and cpp[0]["language"] == "cpp"
    first = got[f"src/{files[0].name}"]
    assert first["stars"] == 0 and first["repo"] == "org/repo0"
    assert first["commit_time"] == dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
    assert table_partitions([table]) == {"python": 3, "cpp": 1}
    # stars / commit date / language / repo absent: null, not an error
    bare = stack_v2_table(tmp_path / "bare.parquet", files,
                          drop=("star_events_count", "committer_date", "language", "repo_name"))
    rows = [r for b in iter_table_batches([bare], partition="python") for r in b.to_pylist()]
    assert len(rows) == 4 and {(r["stars"], r["commit_time"], r["repo"]) for r in rows} == {(None, None, None)}
    # text / id through the column map
    text = stack_v2_table(tmp_path / "t.parquet", files, rename={"content": "text", "blob_id": "id"})
    mapping = TableMapping.from_mapping({"content": "text", "file_id": "id"})
    rows = [r for b in iter_table_batches([text], partition="python", mapping=mapping) for r in b.to_pylist()]
    assert rows[0]["file_id"] == f"{0:040x}" and rows[0]["raw"] == files[0].read_bytes()


def test_run_on_a_stack_v2_table_finds_its_partitions(tmp_path: Path) -> None:
    files = stdlib_files(3, start=40)
    table = stack_v2_table(tmp_path / "stack.parquet", files, language=["Python", "Python", "Go"])
    (tmp_path / "repos" / "web").mkdir(parents=True)
    (tmp_path / "repos" / "web" / "app.js").write_text((STDLIB / "json" / "tool.py").read_text().replace("#", "//"))
    proc = cli("run", "--folders", str(tmp_path / "repos"), "--tables", str(table), data=tmp_path / "data")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the folder's partitions (source index) first, then those only the table has
    assert "partitions with data: javascript, python, go" in proc.stdout
    assert "raw_code[python]: 2 in" in proc.stdout and "raw_code[go]: 1 in" in proc.stdout
    assert "raw_code[javascript]: 1 in" in proc.stdout


def test_linguist_renames_match_the_generator() -> None:
    spec = importlib.util.spec_from_file_location("gen_languages", ROOT / "scripts" / "gen_languages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.RENAMES == LINGUIST_RENAMES


# ------------------------------------------------------------------- launched from the UI / Dagster
def _first_failure(result) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    err = failure.event_specific_data.error
    while err.cause is not None:
        err = err.cause
    return f"{failure.step_key}: {err.message}"


def test_source_index_fails_fast_on_bad_config(tmp_path: Path, pipeline_resources) -> None:
    """A run launched without the CLI (UI, sensor) fails at source_index with the same message."""
    from opencoder_assets.assets.ingestion import source_index

    copy_into(tmp_path / "repos" / "alpha", stdlib_files(2))
    table = stack_v2_table(tmp_path / "t.parquet", stdlib_files(2, start=5), drop=("content",))
    res = pipeline_resources([tmp_path / "repos"], None, [table])
    result = materialize([source_index], resources=res, raise_on_error=False)
    assert not result.success
    assert _first_failure(result).startswith(
        f"source_index: opencoder_assets.core.validate.ConfigError: {table}: missing column 'content'")
    assert not (tmp_path / "corpus" / "source_index").exists()


def test_raw_code_fails_fast_on_a_broken_threshold_file(tmp_path: Path, pipeline_resources) -> None:
    """refinecode_job from the launchpad: a broken thresholds_path fails the first step, not filtered_code."""
    from opencoder_assets.assets.code import STEP_ASSETS

    copy_into(tmp_path / "repos" / "alpha", stdlib_files(2))
    bad = tmp_path / "th.toml"
    bad.write_text("[python]\nqsc_code_num_words = { lt = 30 \n")
    res = pipeline_resources([tmp_path / "repos"], None)
    result = materialize(STEP_ASSETS, resources=res, partition_key="python", raise_on_error=False,
                         run_config={"ops": {"filtered_code": {"config": {"thresholds_path": str(bad)}}}})
    assert not result.success
    assert _first_failure(result).startswith(
        f"raw_code: opencoder_assets.core.validate.ConfigError: {bad}: invalid TOML: ")
    assert not (tmp_path / "corpus" / "raw_code").exists()
