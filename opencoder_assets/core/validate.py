"""Configuration checks that run before anything heavy: sources, column maps, thresholds,
partition and asset names, step configs.

Why up front: a broken threshold file or a Parquet table without a ``content`` column used to
surface only when its step ran -- after the walk, ingest and dedup. These checks only read
file headers (a Parquet footer, a JSONL first line, a directory listing, a TOML file), so
``opencoder validate``, ``opencoder run``/``demo`` and the ``source_index``/``raw_code`` assets
(runs launched from the UI) call them first and fail with the same message.

Every problem is one line that names the file, key or column it is about, with a "did you mean"
when a known name is close (difflib). Pure module: no Dagster.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from opencoder_assets.core.filtering import CONFIG_NAMES, LANG_CONFIGS, FilterThresholds, ThresholdConfigError
from opencoder_assets.core.ingest import SKIP_DIRS, IngestError, TableMapping, load_manifest, table_columns
from opencoder_assets.core.languages import PARTITION_LANGUAGES, UNKNOWN, language_from_name
from opencoder_assets.core.suggest import closest, did_you_mean

#: Top-level keys of a Dagster run config that a code run accepts (``resources``: launchpad runs).
_RUN_CONFIG_KEYS = ("ops", "loggers", "execution", "resources")
#: The global asset before the per-language steps (its config lives in resources, not ops).
SOURCE_INDEX = "source_index"


class ConfigError(ValueError):
    """One or more configuration problems; ``str()`` is one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def raise_if_problems(problems: Sequence[str]) -> None:
    """Raise :class:`ConfigError` when ``problems`` is not empty."""
    if problems:
        raise ConfigError(problems)


# ------------------------------------------------------------------------------ thresholds
def check_thresholds(path: str | Path, partitions: Iterable[str] = ()) -> list[str]:
    """Every problem of a threshold TOML file (not only the first, as loading would report).

    With ``partitions``, a language partition whose config table is missing is a problem too
    (filtered_code would fail on its first file).
    """
    p = Path(path)
    if not p.is_file():
        return [f"{p}: threshold file does not exist"]
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{p}: cannot read the threshold file: {exc}"]
    except tomllib.TOMLDecodeError as exc:
        return [f"{p}: invalid TOML: {exc}"]
    problems: list[str] = []
    for cfg, table in data.items():
        if cfg not in CONFIG_NAMES:
            problems.append(f"{p}: unknown config table [{cfg}]{did_you_mean(cfg, CONFIG_NAMES)}; "
                            f"known: {', '.join(CONFIG_NAMES)}")
            continue
        if not isinstance(table, Mapping):
            problems.append(f"{p}: [{cfg}] must be a table")
            continue
        for sig, spec in table.items():  # one rule at a time, so every bad rule is reported
            try:
                FilterThresholds.from_dict({cfg: {sig: spec}}, source=str(p))
            except ThresholdConfigError as exc:
                problems.append(str(exc))
    for part in partitions:
        if part in LANG_CONFIGS and part not in data:
            problems.append(f"{p}: no [{part}] table, which filtered_code needs for partition {part!r}")
    return problems


# --------------------------------------------------------------------------------- sources
def check_column_map(column_map: Mapping[str, Any] | None) -> list[str]:
    """Unknown keys (with did-you-mean), non-string names, a null required column."""
    if column_map is None:
        return []
    if not isinstance(column_map, Mapping):
        return [f"column map: must be a JSON object like {{\"content\": \"text\"}}, not {column_map!r}"]
    problems = []
    for key, value in column_map.items():
        try:
            TableMapping.from_mapping({key: value})
        except IngestError as exc:
            problems.append(str(exc))
    return problems


def check_folders(folders: Sequence[str | Path], manifest: str | Path | None = None) -> list[str]:
    """Each folder exists and holds repositories (its immediate sub-directories); the manifest parses."""
    problems = []
    for folder in folders:
        f = Path(folder)
        if not f.exists():
            near = closest(f.name, [c.name for c in f.parent.iterdir() if c.is_dir()]) if f.parent.is_dir() else None
            problems.append(f"{f}: code folder does not exist" + (f" (did you mean {str(f.parent / near)!r}?)"
                                                                   if near else ""))
            continue
        if not f.is_dir():
            problems.append(f"{f}: code folder is not a directory (a table? pass it as a table source)")
            continue
        try:
            children = list(f.iterdir())
        except OSError as exc:
            problems.append(f"{f}: cannot list the code folder: {exc.strerror or exc}")
            continue
        repos = [c for c in children if c.is_dir() and not c.is_symlink() and c.name not in SKIP_DIRS]
        if not repos:
            looks_like_repo = (f / ".git").exists() or any(c.is_file() for c in children)
            hint = (f" (it looks like a repository itself: give its parent {f.parent}, whose sub-directories "
                    "are the repositories)" if looks_like_repo else " (each immediate sub-directory is one repository)")
            problems.append(f"{f}: code folder contains no repository{hint}")
    if manifest:
        try:
            load_manifest(manifest)
        except IngestError as exc:
            problems.append(str(exc))
        except ValueError as exc:  # JSON errors
            problems.append(f"{manifest}: manifest is not JSON or JSONL: {exc}")
    return problems


def check_tables(tables: Sequence[str | Path], column_map: Mapping[str, Any] | None = None) -> list[str]:
    """Each table is readable and has the required (and explicitly mapped) columns."""
    if not tables:
        return []
    valid = {k: v for k, v in (column_map or {}).items() if not check_column_map({k: v})}  # the rest: check_column_map
    mapping = TableMapping.from_mapping(valid)
    problems = []
    for table in tables:
        try:
            names = table_columns(table)
        except IngestError as exc:
            problems.append(str(exc))
            continue
        for key, column, hint in mapping.missing_columns(names):
            problems.append(f"{table}: missing column {column!r} ({key}){hint}; the file has {sorted(names)}")
    return problems


def check_sources(folders: Sequence[str | Path], manifest: str | Path | None, tables: Sequence[str | Path],
                  column_map: Mapping[str, Any] | None) -> list[str]:
    """Everything about where the raw code comes from (the ``CodeSources`` resource)."""
    problems = check_column_map(column_map) + check_folders(folders, manifest) + check_tables(tables, column_map)
    if not folders and not tables:
        problems.append("sources: no code folder and no table configured (give folders or tables)")
    return problems


# ------------------------------------------------------------------------- names and configs
def check_partitions(partitions: Iterable[str]) -> list[str]:
    """Partition keys are language partitions; a language name gets its partition suggested."""
    problems = []
    for name in partitions:
        if name in PARTITION_LANGUAGES:
            continue
        info = language_from_name(name)
        if info is not UNKNOWN:
            hint = f" ({name} files are in partition {info.partition!r})"
        else:
            hint = did_you_mean(name, PARTITION_LANGUAGES) or f"; known: {', '.join(PARTITION_LANGUAGES)}"
        problems.append(f"partition {name!r}: unknown{hint}")
    return problems


def _step_params() -> dict[str, set[str] | None]:
    """Step name -> launchpad config fields (None: configured through resources only)."""
    from opencoder_assets.core.kernel import resolve
    from opencoder_assets.core.steps import CODE_STEPS

    out: dict[str, set[str] | None] = {SOURCE_INDEX: None}
    for spec in CODE_STEPS:
        if spec.params and not spec.source_fn:
            out[spec.name] = {f.name for f in dataclasses.fields(resolve(spec.params))} - {"partition"}
        else:
            out[spec.name] = set()
    return out


def check_assets(selection: Iterable[str]) -> list[str]:
    """Asset names of ``--select`` are code steps (or source_index)."""
    known = list(_step_params())
    return [f"asset {name!r}: not a code asset{did_you_mean(name, known)}; known: {', '.join(known)}"
            for name in selection if name not in known]


def check_run_config(run_config: Mapping[str, Any] | None, source: str = "run config",
                     partitions: Iterable[str] = ()) -> list[str]:
    """Step names and config fields under ``ops`` (did-you-mean), and the threshold file that
    ``ops.filtered_code.config.thresholds_path`` names."""
    if not run_config:
        return []
    if not isinstance(run_config, Mapping):
        return [f"{source}: must be a mapping with an 'ops' key, not {type(run_config).__name__}"]
    problems = [f"{source}: unknown top-level key {key!r}{did_you_mean(key, _RUN_CONFIG_KEYS)}; known: "
                f"{', '.join(_RUN_CONFIG_KEYS)}" for key in run_config if key not in _RUN_CONFIG_KEYS]
    ops = run_config.get("ops") or {}
    if not isinstance(ops, Mapping):
        return [f"{source}: 'ops' must be a mapping of step name -> {{config: ...}}"]
    steps = _step_params()
    for step, block in ops.items():
        if step not in steps:
            problems.append(f"{source}: ops.{step}: not a code step{did_you_mean(step, steps)}")
            continue
        config = (block or {}).get("config") if isinstance(block, Mapping) else None
        if not isinstance(config, Mapping):
            if block:
                problems.append(f"{source}: ops.{step}: expected {{config: {{...}}}}")
            continue
        fields = steps[step] or set()
        for key in config:
            if key not in fields:
                known = f"; known: {', '.join(sorted(fields))}" if fields else " (this step has no config)"
                problems.append(f"{source}: ops.{step}.config.{key}: unknown field{did_you_mean(key, fields)}{known}")
        thresholds = config.get("thresholds_path")
        if step == "filtered_code" and thresholds:
            problems.extend(check_thresholds(thresholds, partitions))
    return problems


def validate(*, folders: Sequence[str | Path] | None = None, manifest: str | Path | None = None,
             tables: Sequence[str | Path] | None = None, column_map: Mapping[str, Any] | None = None,
             thresholds: str | Path | None = None, partitions: Sequence[str] | None = None,
             selection: Sequence[str] | None = None, run_config: Mapping[str, Any] | None = None,
             run_config_source: str = "run config") -> list[str]:
    """All checks of a run's configuration; ``None`` arguments are not checked."""
    problems: list[str] = []
    if folders is not None or tables is not None:
        problems += check_sources(folders or [], manifest, tables or [], column_map)
    if partitions:
        problems += check_partitions(partitions)
    if selection:
        problems += check_assets(selection)
    if thresholds:
        problems += check_thresholds(thresholds, partitions or ())
    problems += check_run_config(run_config, run_config_source, partitions or ())
    return problems
