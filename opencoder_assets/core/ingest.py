"""Raw-code ingestion: folders / git repositories with a manifest, and Stack-v2-style tables.

Why stream per language: ``raw_code`` is partitioned by language, so each partition walks the
sources and reads only the files whose extension maps to it; memory is one batch of files.
Nothing is dropped here: files that cannot be read are still emitted with ``read_error`` set, so
preprocessing accounts for every file with a reason.

Hostile trees (see :func:`read_repo_file`): ingestion never reads outside a repository's root
(a symlink is followed only when its real path stays inside the root, else
``symlink_outside_repo``), opens only regular files (FIFOs, sockets, devices ->
``not_regular_file:<kind>``; nothing can block), and stores file names that are not UTF-8 in a
reversible escaped form (:func:`escape_fs_path`).
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import logging
import os
import re
import stat
import subprocess
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.dataset as pads
import pyarrow.json as pajson

from opencoder_assets.core.languages import UNKNOWN, detect_language, language_from_name
from opencoder_assets.core.schema import RAW_SCHEMA, stable_file_id
from opencoder_assets.core.suggest import did_you_mean

#: Files larger than this are not read into memory (preprocessing drops them as too large).
DEFAULT_READ_CAP = 8 * 1024 * 1024

#: A batch is flushed at this many content bytes even before ``batch_rows`` (memory bound).
MAX_BATCH_BYTES = 64 * 1024 * 1024

#: Directories that are never part of a repository's content.
SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache", ".tox", ".venv"}


log = logging.getLogger(__name__)


class IngestError(ValueError):
    """Bad input that cannot be ingested at all (e.g. a table missing a mapped column)."""


# ------------------------------------------------------------------ file names that are not UTF-8
_ESCAPE_RE = re.compile("[\\\\\udc80-\udcff]")
_UNESCAPE_RE = re.compile(r"\\(?:x([0-9a-f]{2})|(\\))?")


def escape_fs_path(path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> str:
    """Text form of a file-system path that Arrow/Parquet can store and that maps back to its bytes.

    Why: POSIX names are bytes; Python hands undecodable bytes over as lone surrogates, which
    no UTF-8 column accepts. The escaped form is the name decoded as UTF-8, with every byte
    that is not valid UTF-8 written as ``\\xNN`` (two lower-case hex digits) and every literal
    backslash doubled (``\\\\``). Names that are valid UTF-8 and contain no backslash (nearly
    all) are unchanged; the mapping is injective, and :func:`unescape_fs_path` inverts it.
    """
    raw = os.fsencode(path)
    text = raw.decode("utf-8", "surrogateescape")
    return _ESCAPE_RE.sub(
        lambda m: "\\\\" if m.group() == "\\" else f"\\x{ord(m.group()) - 0xDC00:02x}", text
    )


def unescape_fs_path(text: str) -> bytes:
    """The original bytes of a path escaped by :func:`escape_fs_path` (ValueError names the text)."""
    out = bytearray()
    pos = 0
    for m in _UNESCAPE_RE.finditer(text):
        out += text[pos:m.start()].encode("utf-8")
        if m.group(1) is not None:
            out.append(int(m.group(1), 16))
        elif m.group(2) is not None:
            out += b"\\"
        else:
            raise ValueError(f"{text!r}: lone backslash at {m.start()} (not an escaped path)")
        pos = m.end()
    out += text[pos:].encode("utf-8")
    return bytes(out)


@dataclass(frozen=True)
class RepoMeta:
    name: str
    path: Path
    stars: int | None
    commit_time: dt.datetime | None
    meta_source: str  # "manifest", "manifest+git", "git", "mtime", "none"


#: Column-map keys whose column every table must have.
REQUIRED_TABLE_KEYS = ("content", "path")
#: Column names other datasets use for a key: named in the error when the default is missing.
_COLUMN_ALIASES = {"content": ("text", "code", "contents"), "path": ("file_path", "filepath", "max_stars_repo_path"),
                   "repo": ("repo", "repository", "max_stars_repo_name"), "file_id": ("id", "blob_id")}


@dataclass
class TableMapping:
    """Column names of a table source (Parquet or JSONL); the defaults are The Stack v2's.

    ``content`` and ``path`` are required. The others are optional: an absent column reads as
    null (repo and stars unknown, commit time unknown, language from the extension) -- unless the
    column map names it explicitly, so that a typo in the map is an error, not a silent null.
    ``language`` holds Linguist names ("Python", "C++"); ``file_id`` (e.g. ``{"file_id": "id"}``)
    replaces the derived stable id.
    """

    content: str = "content"
    path: str = "path"
    repo: str | None = "repo_name"
    stars: str | None = "star_events_count"
    commit_time: str | None = "committer_date"
    language: str | None = "language"
    file_id: str | None = None
    #: keys the column map set (their columns are required when not null).
    explicit: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    KEYS: ClassVar[tuple[str, ...]] = ("content", "path", "repo", "stars", "commit_time", "language", "file_id")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str | None] | None) -> TableMapping:
        """A mapping from a column map ``{key: column name or null}``; IngestError names a bad key."""
        values: dict[str, str | None] = {}
        for key, value in (mapping or {}).items():
            if key not in cls.KEYS:
                raise IngestError(f"column map: unknown key {key!r}{did_you_mean(key, cls.KEYS)}; "
                                  f"known keys: {', '.join(cls.KEYS)}")
            if value is not None and not isinstance(value, str):
                raise IngestError(f"column map: {key!r} must be a column name or null, not {value!r}")
            if value is None and key in REQUIRED_TABLE_KEYS:
                raise IngestError(f"column map: {key!r} is required and cannot be null")
            values[key] = value
        return cls(**values, explicit=frozenset(values))

    def missing_columns(self, names: Collection[str]) -> list[tuple[str, str, str]]:
        """(key, column, hint) for every required or explicitly mapped column not in ``names``."""
        out = []
        for key in self.KEYS:
            column = getattr(self, key)
            if column is None or column in names or (key not in REQUIRED_TABLE_KEYS and key not in self.explicit):
                continue
            alias = next((a for a in _COLUMN_ALIASES.get(key, ()) if a in names), None)
            hint = (f" (the file has {alias!r}: column map {{{json.dumps(key)}: {json.dumps(alias)}}})" if alias
                    else did_you_mean(column, names))
            out.append((key, column, hint))
        return out

    def resolve(self, names: Collection[str], source: str | Path) -> dict[str, str | None]:
        """``{key: column or None}`` for a table with columns ``names``: absent optional columns
        are None; a missing required (or explicitly mapped) column is an IngestError naming it."""
        missing = self.missing_columns(names)
        if missing:
            raise IngestError("; ".join(f"{source}: missing column {col!r} ({key}){hint}" for key, col, hint in missing)
                              + f"; the file has {sorted(names)}")
        return {key: (getattr(self, key) if getattr(self, key) in names else None) for key in self.KEYS}


@dataclass
class IngestStats:
    files_seen: int = 0
    rows: int = 0
    read_errors: dict[str, int] = field(default_factory=dict)
    repos_without_manifest: list[str] = field(default_factory=list)
    skipped_symlinked_dirs: int = 0
    #: directories the walk could not list (escaped path: error), logged as warnings too.
    walk_errors: list[str] = field(default_factory=list)


def _parse_time(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc)
    text = str(value).strip().replace("Z", "+00:00")
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def git_commit_time(repo_path: Path) -> dt.datetime | None:
    """Latest commit time of a git working tree, or None when it is not a repository."""
    if not (repo_path / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(repo_path), "log", "-1", "--format=%cI"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return _parse_time(out) if out else None


def load_manifest(manifest: str | Path | None) -> dict[str, dict[str, Any]]:
    """Manifest: JSON ``{"repos": [{"name", "stars", "commit_time", "path"?}]}`` or JSONL rows."""
    if not manifest:
        return {}
    path = Path(manifest)
    if not path.is_file():
        raise IngestError(f"manifest {path} does not exist (set CodeSources.manifest to null to ingest without one)")
    text = path.read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
        rows = doc["repos"] if isinstance(doc, dict) else doc
    except json.JSONDecodeError:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    out: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(rows):
        if "name" not in row:
            raise IngestError(f"{path}: manifest entry #{i} has no 'name': {row!r}")
        out[str(row["name"])] = row
    return out


def discover_repos(root: str | Path, manifest: Mapping[str, Mapping[str, Any]]) -> tuple[list[RepoMeta], list[str]]:
    """Every immediate sub-directory of ``root`` is a repository (plus manifest entries with a path)."""
    root = Path(root)
    if not root.is_dir():
        raise IngestError(f"code folder {root} does not exist or is not a directory")
    paths: dict[str, Path] = {}
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.is_symlink() and child.name not in SKIP_DIRS:
            paths[escape_fs_path(child.name)] = child
    for name, row in manifest.items():
        if row.get("path"):
            paths[name] = (root / row["path"]).resolve() if not os.path.isabs(row["path"]) else Path(row["path"])
    repos, missing = [], []
    for name in sorted(paths):
        row = manifest.get(name)
        git_time = git_commit_time(paths[name])
        if row is None:
            missing.append(name)
            repos.append(RepoMeta(name, paths[name], None, git_time, "git" if git_time else "none"))
            continue
        commit_time = _parse_time(row.get("commit_time")) or git_time
        source = "manifest" if row.get("commit_time") else ("manifest+git" if git_time else "manifest")
        stars = row.get("stars")
        repos.append(RepoMeta(name, paths[name], int(stars) if stars is not None else None, commit_time, source))
    return repos, missing


def _errno_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink_loop"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission_denied"
    if exc.errno == errno.ENOENT:
        return "dangling_symlink"
    return f"os_error_{errno.errorcode.get(exc.errno or 0, 'unknown').lower()}"


def iter_repo_files(repo: RepoMeta, stats: IngestStats) -> Iterator[tuple[str, Path]]:
    """(escaped relative path, absolute path) of every non-directory entry, sorted for determinism.

    Symlinked directories are never entered (they could lead outside the repository or loop);
    symlinks to files and special files are listed, and :func:`read_repo_file` decides about them.
    """

    def on_error(exc: OSError) -> None:
        where = escape_fs_path(exc.filename) if exc.filename is not None else escape_fs_path(repo.path)
        stats.walk_errors.append(f"{where}: {exc.strerror or exc}")
        log.warning("cannot list %s: %s", where, exc)

    for dirpath, dirnames, filenames in os.walk(repo.path, followlinks=False, onerror=on_error):
        keep = []
        for d in sorted(dirnames):
            if d in SKIP_DIRS:
                continue
            if os.path.islink(os.path.join(dirpath, d)):
                stats.skipped_symlinked_dirs += 1
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            full = Path(dirpath) / name
            yield escape_fs_path(full.relative_to(repo.path).as_posix()), full


_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "char_device"),
                       (stat.S_ISBLK, "block_device"), (stat.S_ISDIR, "directory"), (stat.S_ISLNK, "symlink")):
        if test(mode):
            return kind
    return "other"


class _Drop(Exception):
    """Internal: the file is not read, for the given reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _open_dir_chain(root_fd: int, parts: list[bytes]) -> int:
    """fd of the directory ``parts`` below ``root_fd``, never following a symlink on the way."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _Drop("symlinked_parent_dir") from exc
                raise
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_regular(parent_fd: int, name: bytes, read_cap: int) -> tuple[bytes | None, int, str | None]:
    """Open ``name`` (no follow, non-blocking), re-check it is a regular file on the fd, read it."""
    fd = os.open(name, _OPEN_FLAGS, dir_fd=parent_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped between lstat and open
            raise _Drop(f"not_regular_file:{_file_kind(st.st_mode)}")
        if st.st_size > read_cap:
            return None, st.st_size, "over_read_cap"
        chunks, total = [], 0
        while total <= read_cap:
            chunk = os.read(fd, min(1 << 20, read_cap + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > read_cap:
            return None, total, "over_read_cap"
        return b"".join(chunks), total, None
    finally:
        os.close(fd)


def _split_rel(rel: bytes) -> list[bytes]:
    parts = rel.split(b"/")
    if not rel or any(p in (b"", b".", b"..") for p in parts):
        raise _Drop("path_outside_repo")
    return parts


def read_repo_file(root: str | bytes | os.PathLike, rel: str | bytes, read_cap: int) -> tuple[bytes | None, int, str | None]:
    """(bytes or None, size, drop reason) of ``rel`` inside the repository ``root``.

    Why this shape: a repository is untrusted input. Every path component is opened relative to
    the root with ``O_NOFOLLOW``, so nothing outside the root is read even if the tree changes
    after the walk. A symlink is followed only when its real path stays inside the root's real
    path (else ``symlink_outside_repo``; loops -> ``symlink_loop``, missing target ->
    ``dangling_symlink``). Only regular files are opened, with ``O_NONBLOCK`` and an ``fstat``
    re-check on the open fd, so a FIFO/socket/device (``not_regular_file:<kind>``) never blocks.
    Files over ``read_cap`` are sized but not read.
    """
    root_b = os.fsencode(root)
    rel_b = rel if isinstance(rel, bytes) else os.fsencode(rel)
    _hop = 0
    try:
        parts = _split_rel(rel_b)
        real_root = os.path.realpath(root_b)
        root_fd = os.open(real_root, _DIR_FLAGS & ~os.O_NOFOLLOW)
        try:
            for _hop in range(2):  # the file itself, then (at most) the resolved target of a link
                parent_fd = _open_dir_chain(root_fd, parts[:-1])
                try:
                    st = os.stat(parts[-1], dir_fd=parent_fd, follow_symlinks=False)
                    if stat.S_ISREG(st.st_mode):
                        return _read_regular(parent_fd, parts[-1], read_cap)
                finally:
                    os.close(parent_fd)
                if not stat.S_ISLNK(st.st_mode):
                    return None, 0, f"not_regular_file:{_file_kind(st.st_mode)}"
                if _hop:  # realpath stopped on a link: a loop (or the tree changed meanwhile)
                    return None, 0, "symlink_loop"
                target = os.path.realpath(os.path.join(real_root, *parts))
                if os.path.commonpath([real_root, target]) != real_root or target == real_root:
                    return None, 0, "symlink_outside_repo"
                parts = _split_rel(os.path.relpath(target, real_root))
            return None, 0, "symlink_loop"  # pragma: no cover - the loop always returns
        finally:
            os.close(root_fd)
    except _Drop as drop:
        return None, 0, drop.reason
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None, 0, "dangling_symlink" if _hop else "missing_since_index"
        return None, 0, _errno_reason(exc)


def _row(
    *, source: str, repo: str | None, path: str, lang: Any, stars: int | None,
    commit_time: dt.datetime | None, data: bytes | None, size: int, error: str | None,
    file_id: str | None = None,
) -> dict[str, Any]:
    ext = path.rsplit("/", 1)[-1]
    ext = ext.rsplit(".", 1)[1] if "." in ext.lstrip(".") else ""
    return {
        "file_id": file_id or stable_file_id(source, repo, path),
        "source": source,
        "repo": repo,
        "path": path,
        "language": lang.name,
        "doc_type": lang.doc_type,
        "ext": ext,
        "size_bytes": size,
        "sha256": hashlib.sha256(data).hexdigest() if data is not None else None,
        "stars": stars,
        "commit_time": commit_time,
        "read_error": error,
        "raw": data,
    }


INDEX_SCHEMA = pa.schema([
    pa.field("source", pa.string()),
    pa.field("repo", pa.string()),
    pa.field("path", pa.string()),
    pa.field("abs_path", pa.string()),
    pa.field("language", pa.string()),
    pa.field("doc_type", pa.string()),
    pa.field("partition", pa.string()),
    pa.field("stars", pa.int64()),
    pa.field("commit_time", pa.timestamp("us", tz="UTC")),
])


def iter_folder_index(
    root: str | Path,
    *,
    manifest: str | Path | None = None,
    source_name: str | None = None,
    stats: IngestStats | None = None,
    batch_rows: int = 50_000,
) -> Iterator[pa.Table]:
    """Walk ``root``'s repositories once and list every file with its language partition.

    Why an index: the walk (and git metadata) is paid once, then every language partition of
    ``raw_code`` reads only its own rows; new repos show up as new index rows for sensors.
    """
    stats = stats if stats is not None else IngestStats()
    source = source_name or f"folder:{Path(root).name}"
    repos, missing = discover_repos(root, load_manifest(manifest))
    stats.repos_without_manifest.extend(missing)
    cols: dict[str, list] = {name: [] for name in INDEX_SCHEMA.names}
    for repo in repos:
        for rel, full in iter_repo_files(repo, stats):
            lang = detect_language(rel)
            stats.files_seen += 1
            for key, value in (("source", source), ("repo", repo.name), ("path", rel), ("abs_path", escape_fs_path(full)),
                               ("language", lang.name), ("doc_type", lang.doc_type),
                               ("partition", lang.partition), ("stars", repo.stars),
                               ("commit_time", repo.commit_time)):
                cols[key].append(value)
            if len(cols["path"]) >= batch_rows:
                yield pa.table(cols, schema=INDEX_SCHEMA)
                cols = {name: [] for name in INDEX_SCHEMA.names}
    if cols["path"]:
        yield pa.table(cols, schema=INDEX_SCHEMA)


def iter_indexed_file_batches(
    index_rows: Iterator[pa.Table],
    *,
    read_cap: int = DEFAULT_READ_CAP,
    batch_rows: int = 2000,
    stats: IngestStats | None = None,
) -> Iterator[pa.Table]:
    """Read the files listed in index rows (already filtered to one partition) as RAW_SCHEMA.

    ``path``/``abs_path`` are escaped (:func:`escape_fs_path`); the repository root is
    ``abs_path`` minus ``/path``, and :func:`read_repo_file` reads relative to it.
    """
    stats = stats if stats is not None else IngestStats()
    rows: list[dict[str, Any]] = []
    batch_bytes = 0
    for table in index_rows:
        d = table.to_pydict()
        for i in range(table.num_rows):
            data, size, error = _read_indexed(d["abs_path"][i], d["path"][i], read_cap)
            if error:
                stats.read_errors[error] = stats.read_errors.get(error, 0) + 1
            lang = _IndexedLang(d["language"][i], d["doc_type"][i])
            rows.append(_row(source=d["source"][i], repo=d["repo"][i], path=d["path"][i], lang=lang,
                             stars=d["stars"][i], commit_time=d["commit_time"][i], data=data, size=size,
                             error=error))
            batch_bytes += len(data) if data is not None else 0
            if len(rows) >= batch_rows or batch_bytes >= MAX_BATCH_BYTES:
                stats.rows += len(rows)
                yield pa.Table.from_pylist(rows, schema=RAW_SCHEMA)
                rows, batch_bytes = [], 0
    if rows:
        stats.rows += len(rows)
        yield pa.Table.from_pylist(rows, schema=RAW_SCHEMA)


def _read_indexed(abs_path: str, rel_path: str, read_cap: int) -> tuple[bytes | None, int, str | None]:
    """Read one index row; anything unexpected is raised as IngestError naming the file."""
    try:
        abs_b, rel_b = unescape_fs_path(abs_path), unescape_fs_path(rel_path)
        if not abs_b.endswith(b"/" + rel_b):
            raise IngestError(f"index row {abs_path!r}: abs_path does not end with its path {rel_path!r}")
        return read_repo_file(abs_b[: -len(rel_b) - 1], rel_b, read_cap)
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(f"{abs_path}: cannot read: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class _IndexedLang:
    name: str
    doc_type: str


def iter_folder_batches(
    root: str | Path,
    *,
    partition: str,
    manifest: str | Path | None = None,
    source_name: str | None = None,
    read_cap: int = DEFAULT_READ_CAP,
    batch_rows: int = 2000,
    stats: IngestStats | None = None,
) -> Iterator[pa.Table]:
    """Walk + read in one go (no index): RAW_SCHEMA tables for ``partition``'s files under ``root``."""
    stats = stats if stats is not None else IngestStats()
    index = (
        t.filter(pa.compute.equal(t["partition"], partition))
        for t in iter_folder_index(root, manifest=manifest, source_name=source_name, stats=stats)
    )
    yield from iter_indexed_file_batches(index, read_cap=read_cap, batch_rows=batch_rows, stats=stats)


def table_columns(path: str | Path) -> list[str]:
    """Column names of a table source, reading only the Parquet footer or the first JSONL line
    (cheap: validation runs it before anything heavy). IngestError names the file."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"table {path} does not exist or is not a file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return list(pads.dataset(str(path), format="parquet").schema.names)
        if suffix in (".jsonl", ".json", ".ndjson"):
            with path.open("rb") as fh:
                for line in fh:
                    if line.strip():
                        row = json.loads(line)
                        if not isinstance(row, dict):
                            raise IngestError(f"{path}: the first row is not a JSON object")
                        return list(row)
            return []
    except IngestError:
        raise
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise IngestError(f"{path}: cannot read as a {suffix.lstrip('.')} table: {exc}") from exc
    raise IngestError(f"{path}: unsupported table format {suffix or '(no extension)'!r} (use .parquet or .jsonl)")


def _open_table_batches(path: Path, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Batches of ``columns`` (which :func:`table_columns` found in the file)."""
    if path.suffix.lower() == ".parquet":
        yield from pads.dataset(str(path), format="parquet").to_batches(columns=columns, batch_size=batch_rows)
        return
    reader = pajson.open_json(str(path), read_options=pajson.ReadOptions(block_size=16 << 20))
    for batch in reader:
        missing = [c for c in columns if c not in batch.schema.names]
        if missing:
            raise IngestError(f"{path}: missing column(s) {missing}; the file has {sorted(batch.schema.names)}")
        yield batch.select(columns)


def _table_language(path: str, language: Any) -> Any:
    """The table's own language (Linguist name) when it has one we know, else the extension's."""
    if language:
        info = language_from_name(str(language))
        if info is not UNKNOWN:
            return info
    return detect_language(path)


def table_partitions(paths: list[str | Path], mapping: TableMapping | None = None) -> dict[str, int]:
    """Rows per language partition of table sources (reads only the path and language columns)."""
    m = mapping or TableMapping()
    counts: dict[str, int] = {}
    for table_path in sorted(Path(p) for p in paths):
        cols = m.resolve(table_columns(table_path), table_path)
        for batch in _open_table_batches(table_path, [c for c in (cols["path"], cols["language"]) if c], 50_000):
            d = batch.to_pydict()
            langs = d[cols["language"]] if cols["language"] else [None] * batch.num_rows
            for path, lang in zip(d[cols["path"]], langs, strict=True):
                part = _table_language(path or "", lang).partition
                counts[part] = counts.get(part, 0) + 1
    return counts


def iter_table_batches(
    paths: list[str | Path],
    *,
    partition: str,
    mapping: TableMapping | None = None,
    read_cap: int = DEFAULT_READ_CAP,
    batch_rows: int = 2000,
    stats: IngestStats | None = None,
) -> Iterator[pa.Table]:
    """Yield RAW_SCHEMA tables for rows of Stack-v2-style Parquet/JSONL files in ``partition``.

    Absent optional columns (:class:`TableMapping`) read as null; the language is the table's
    ``language`` column when present and known, else the extension's.
    """
    stats = stats if stats is not None else IngestStats()
    m = mapping or TableMapping()
    for table_path in sorted(Path(p) for p in paths):
        source = f"table:{table_path.name}"
        row_index = 0
        cols = m.resolve(table_columns(table_path), table_path)
        for batch in _open_table_batches(table_path, sorted({c for c in cols.values() if c}), batch_rows):
            data = batch.to_pydict()
            n = batch.num_rows

            def col(key: str, _d: dict = data, _n: int = n, _c: dict = cols) -> list:
                return _d[_c[key]] if _c[key] else [None] * _n

            paths_, contents, repos, stars_, times, langs, ids = (
                col(k) for k in ("path", "content", "repo", "stars", "commit_time", "language", "file_id"))
            rows = []
            for i in range(n):
                row_index += 1
                path = paths_[i]
                if path is None:
                    raise IngestError(f"{table_path}: row {row_index} has a null {cols['path']!r}")
                lang = _table_language(path, langs[i])
                if lang.partition != partition:
                    continue
                stats.files_seen += 1
                content = contents[i]
                raw = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
                error = None
                if raw is None:
                    error = "null_content"
                elif len(raw) > read_cap:
                    error = "over_read_cap"
                size = len(raw) if raw is not None else 0
                if error:
                    stats.read_errors[error] = stats.read_errors.get(error, 0) + 1
                try:
                    stars = int(stars_[i]) if stars_[i] is not None else None
                    commit_time = _parse_time(times[i])
                except (TypeError, ValueError) as exc:
                    raise IngestError(f"{table_path}: row {row_index}: bad {cols['stars']!r}/{cols['commit_time']!r} "
                                      f"value: {exc}") from exc
                rows.append(
                    _row(source=source, repo=repos[i], path=path, lang=lang, stars=stars, commit_time=commit_time,
                         data=None if error else raw, size=size, error=error,
                         file_id=str(ids[i]) if ids[i] is not None else None)
                )
            if rows:
                stats.rows += len(rows)
                yield pa.Table.from_pylist(rows, schema=RAW_SCHEMA)
