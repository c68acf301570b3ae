"""Exact file-level dedup by SHA-256 with the recipe's keep policy, done out of core in DuckDB.

Keep policy (recipe §3; the priority between stars and commit time is not stated, we choose):
most stars first (unknown stars rank last), then the latest commit (unknown last), then the
smallest stable ``file_id`` so the survivor never depends on shard order or worker count.
Only (file_id, sha256, stars, commit_time) are ranked; content is streamed shard by shard.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from opencoder_assets.core.duckdb_sql import sql_path_list, sql_str

KEEP_ORDER = "stars DESC NULLS LAST, commit_time DESC NULLS LAST, file_id ASC"


@dataclass
class ExactDedupStats:
    input_files: int
    kept_files: int
    duplicate_files: int
    duplicate_groups: int
    largest_group: int


def exact_dedup(
    shards: list[Path],
    out_dir: Path,
    decisions_path: Path,
    *,
    memory_limit: str = "2GB",
    key_column: str = "sha256",
) -> ExactDedupStats:
    """Write the kept rows of ``shards`` to ``out_dir/part-*.parquet`` and all decisions to Parquet.

    Each dropped row's ``detail`` names the ``file_id`` of the copy that was kept.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = {sql_str(memory_limit)}")
        con.execute("SET preserve_insertion_order = false")
        if not shards:
            con.execute(
                "CREATE TABLE ranked (file_id VARCHAR, repo VARCHAR, path VARCHAR, language VARCHAR, "
                "size_bytes BIGINT, survivor VARCHAR, group_size BIGINT)"
            )
        else:
            con.execute(
                f"""CREATE TABLE ranked AS
                SELECT file_id, repo, path, language, size_bytes,
                       first_value(file_id) OVER w AS survivor,
                       count(*) OVER (PARTITION BY {key_column}) AS group_size
                FROM read_parquet({sql_path_list(shards)})
                WINDOW w AS (PARTITION BY {key_column} ORDER BY {KEEP_ORDER}
                             ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"""
            )
        dup_ids = con.execute("SELECT count(*) FROM ranked WHERE file_id <> survivor").fetchone()[0]
        if dup_ids:
            # Fail loudly on non-unique ids: the keep policy relies on them.
            n_ids, n_rows = con.execute("SELECT count(DISTINCT file_id), count(*) FROM ranked").fetchone()
            if n_ids != n_rows:
                raise ValueError(f"file_id is not unique across shards ({n_rows - n_ids} repeats)")
        con.execute(
            f"""COPY (
                SELECT file_id, repo, path, language,
                       CASE WHEN file_id = survivor THEN 'kept' ELSE 'dropped' END AS decision,
                       CASE WHEN file_id = survivor THEN NULL ELSE 'exact_duplicate' END AS reason,
                       CASE WHEN file_id = survivor THEN NULL ELSE 'duplicate_of:' || survivor END AS detail,
                       size_bytes
                FROM ranked ORDER BY file_id
            ) TO {sql_str(decisions_path)} (FORMAT parquet)"""
        )
        con.execute("CREATE TABLE keep AS SELECT file_id FROM ranked WHERE file_id = survivor")
        for i, shard in enumerate(shards):
            con.execute(
                f"""COPY (SELECT s.* FROM read_parquet({sql_str(shard)}) s SEMI JOIN keep k USING (file_id)
                          ORDER BY s.file_id)
                    TO {sql_str(out_dir / f"part-{i:05d}.parquet")} (FORMAT parquet, ROW_GROUP_SIZE 2000)"""
            )
        total, kept, groups, largest = con.execute(
            """SELECT count(*), count(*) FILTER (file_id = survivor),
                      count(DISTINCT survivor) FILTER (group_size > 1), coalesce(max(group_size), 0)
               FROM ranked"""
        ).fetchone()
    finally:
        con.close()
    return ExactDedupStats(int(total), int(kept), int(total - kept), int(groups), int(largest))
