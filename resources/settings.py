"""Where the raw code comes from, and pipeline-wide knobs, as Dagster resources.

Why resources (not hard-coded paths): users point the same graph at their own folders or
Stack-v2-style tables from the launchpad or ``dagster.yaml``/env vars, without code changes.
"""

from __future__ import annotations

import os

from dagster import ConfigurableResource

from resources.storage import DEFAULT_DATA_ROOT


class CodeSources(ConfigurableResource):
    """Raw-code inputs.

    - ``folders``: directories whose immediate sub-directories are repositories (git or plain).
    - ``manifest``: JSON/JSONL with per-repo ``name``, ``stars``, ``commit_time`` (optional ``path``).
    - ``tables``: Parquet/JSONL files with The Stack v2's column names (``content``, ``path``;
      optional ``repo_name``, ``star_events_count``, ``committer_date``, ``language``);
      ``column_map`` renames them, e.g. ``{"content": "text", "file_id": "id"}`` (core/ingest.py
      TableMapping). source_index checks all of this first (core/validate.py).
    """

    folders: list[str] = [os.path.join(DEFAULT_DATA_ROOT, "default_corpus", "repos")]
    manifest: str | None = os.path.join(DEFAULT_DATA_ROOT, "default_corpus", "manifest.json")
    tables: list[str] = []
    column_map: dict[str, str] = {}
    read_cap_bytes: int = 8 * 1024 * 1024


class PipelineSettings(ConfigurableResource):
    """Knobs shared by several steps."""

    max_file_bytes: int = 8 * 1024 * 1024
    batch_rows: int = 2000
    #: Rows per work unit of a code step (the grain of parallelism; each unit writes its own files).
    unit_rows: int = 1000
    seed: int = 42
    duckdb_memory_limit: str = "2GB"
    #: HF ``tokenizer.json`` behind every token figure (funnel, sampling targets, annealing budgets);
    #: None: ``$OPENCODER_TOKENIZER``, else the shipped stand-in (opencoder_assets/core/tokens.py).
    tokenizer_path: str | None = None

    def setup_for_execution(self, context) -> None:
        """Make ``tokenizer_path`` the run's tokenizer; steps resolve it into their params in the
        driver, so pool and Dask workers count with the same file."""
        from opencoder_assets.core import tokens

        if self.tokenizer_path:
            tokens.resolve_tokenizer_path(self.tokenizer_path)  # fail at start, naming the file
        tokens.configure(self.tokenizer_path)

    def teardown_after_execution(self, context) -> None:
        from opencoder_assets.core import tokens

        tokens.configure(None)
