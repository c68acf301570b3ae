"""The small embedded default corpus: real code gathered from this machine, no network.

Why gathered, not shipped: the code belongs to its authors (CPython, pip, setuptools, npm, ...);
we copy it from the interpreter and packages already installed on the user's machine into
``data/default_corpus/repos/<repo>/`` and write a manifest. Two releases of pip (the venv's and
the base interpreter's) give natural exact and near duplicates for the dedup steps.

Star counts in the manifest are illustrative (they make the keep policy visible), not real
GitHub numbers; commit times are the newest file mtime of each copied tree.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import site
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from resources.storage import DEFAULT_DATA_ROOT

SKIP_PARTS = {"__pycache__", "test", "tests", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip"}


@dataclass(frozen=True)
class RepoSpec:
    name: str
    root: Path
    subdirs: tuple[str, ...]
    suffixes: tuple[str, ...]
    max_files: int
    stars: int


def _base_site_packages() -> Path | None:
    base = Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    return base if base.is_dir() else None


def _venv_site_packages() -> Path | None:
    for p in site.getsitepackages():
        if Path(p, "pip").is_dir():
            return Path(p)
    return None


def candidate_repos() -> list[RepoSpec]:
    """What the default corpus draws from, where present on this machine."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    include = Path(sysconfig.get_paths()["include"])
    specs = [
        RepoSpec("cpython", stdlib, ("json", "email", "http", "urllib", "asyncio", "collections",
                                     "importlib", "logging", "concurrent", "xml", "."), (".py",), 300, 60000),
        RepoSpec("cpython-include", include, (".", "cpython", "internal"), (".h",), 400, 60000),
    ]
    venv_sp = _venv_site_packages()
    base_sp = _base_site_packages()
    if venv_sp:
        specs.append(RepoSpec("pip", venv_sp, ("pip",), (".py",), 300, 9500))
        specs.append(RepoSpec("setuptools", venv_sp, ("setuptools", "pkg_resources"), (".py",), 150, 2400))
    if base_sp and base_sp != venv_sp and Path(base_sp, "pip").is_dir():
        specs.append(RepoSpec("pip-vendored-copy", base_sp, ("pip",), (".py",), 300, 12))
    npm = Path("/usr/lib/node_modules/npm")
    if npm.is_dir():
        specs.append(RepoSpec("npm-cli", npm, ("lib", "node_modules"), (".js", ".cjs", ".mjs"), 400, 8300))
    docs = Path("/usr/share/doc")
    if docs.is_dir():
        specs.append(RepoSpec("debian-html-docs", docs, (".",), (".html", ".htm"), 150, 40))
    return specs


def _iter_files(spec: RepoSpec) -> Iterator[tuple[Path, str]]:
    seen: set[Path] = set()
    count = 0
    for sub in spec.subdirs:
        base = (spec.root / sub).resolve()
        if not base.is_dir():
            continue
        walker = [(str(base), [], sorted(os.listdir(base)))] if sub == "." and spec.suffixes == (".py",) else os.walk(base)
        for dirpath, dirnames, filenames in walker:
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_PARTS)
            for name in sorted(filenames):
                full = Path(dirpath) / name
                if full.suffix not in spec.suffixes or full in seen or not full.is_file() or full.is_symlink():
                    continue
                if full.stat().st_size > 2_000_000:
                    continue
                seen.add(full)
                yield full, full.relative_to(spec.root.resolve()).as_posix()
                count += 1
                if count >= spec.max_files:
                    return


def prepare_default_corpus(dest: str | Path | None = None, force: bool = False) -> Path:
    """Copy the default corpus into ``dest`` (default ``data/default_corpus``); idempotent."""
    dest = Path(dest or os.path.join(DEFAULT_DATA_ROOT, "default_corpus"))
    manifest_path = dest / "manifest.json"
    if manifest_path.exists() and not force:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    repos_dir = dest / "repos"
    repos = []
    for spec in candidate_repos():
        newest = 0.0
        n = 0
        for src, rel in _iter_files(spec):
            target = repos_dir / spec.name / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
            newest = max(newest, src.stat().st_mtime)
            n += 1
        if n:
            repos.append({
                "name": spec.name,
                "stars": spec.stars,
                "commit_time": dt.datetime.fromtimestamp(newest, tz=dt.timezone.utc).isoformat(),
                "files": n,
                "origin": str(spec.root),
            })
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps({
        "note": "Code copied from this machine's installed Python/Node packages; stars are illustrative.",
        "repos": repos,
    }, indent=2))
    return dest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dest", default=None)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    dest = prepare_default_corpus(args.dest, args.force)
    manifest = json.loads((dest / "manifest.json").read_text())
    for repo in manifest["repos"]:
        print(f"{repo['name']:<20} {repo['files']:>5} files  from {repo['origin']}")


if __name__ == "__main__":
    main()
