"""A real-text corpus nobody on this project wrote, for the web-recall tests and benchmark.

Why these sources: Debian ships HTML/Mallard documentation that is unambiguously code-related
(Python, Node.js, PostgreSQL, Git, SQLite manuals) or unambiguously not (GIMP, LibreOffice and
GNOME desktop help, fortune-cookie prose), and every PyPI package ships prose (licenses) and a
README (its METADATA description, code-related). ``apt-get download`` fetches the .debs as a
normal user would (no install, no root needed for ``dpkg-deb -x``); extracted text is cached.

Boilerplate: FineWeb-style text is main-content only, so navigation lines repeated across a doc
set are stripped (``strip_repeated_lines``) before pages are used, as a crawl's text extraction
would; otherwise a classifier learns each doc set's menu bar instead of its content.
"""

from __future__ import annotations

import collections
import email
import glob
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from opencoder_assets.core.web_recall import CODE_LABEL, OTHER_LABEL, html_to_text

CACHE = Path(os.environ.get("OPENCODER_TEST_CACHE", Path.home() / ".cache" / "opencoder-assets")) / "debdocs"
CORPUS_VERSION = "v4"
PAGES_PER_SOURCE = 250


@dataclass(frozen=True)
class DebSource:
    name: str
    package: str
    label: str
    include: str  # regex on the extracted path
    exclude: str | None = None


# LibreOffice's Basic/ScriptForge and Base (SQL) chapters, GIMP's Script-Fu pages and GNOME's
# admin guide are programming documentation, so they are excluded from the not-code sets.
DEB_SOURCES = [
    DebSource("python-docs", "python3.11-doc", CODE_LABEL, r"/usr/share/doc/python3\.11/html/.*\.html$"),
    DebSource("nodejs-docs", "nodejs-doc", CODE_LABEL, r"/api/.*\.html$"),
    DebSource("postgresql-docs", "postgresql-doc-15", CODE_LABEL, r"\.html$"),
    DebSource("git-docs", "git-doc", CODE_LABEL, r"\.html$"),
    DebSource("sqlite-docs", "sqlite3-doc", CODE_LABEL, r"\.html$"),
    DebSource("gimp-help", "gimp-help-en", OTHER_LABEL, r"/en/.*\.html$", r"script-fu|plug-in-|python"),
    DebSource("libreoffice-help", "libreoffice-help-en-us", OTHER_LABEL, r"/en-US/text/.*\.html$",
              r"/text/(sbasic|sdatabase|smath)/|/scalc/01/(func_|04060)|scriptforge|python|macro"),
    DebSource("gnome-help", "gnome-user-docs", OTHER_LABEL, r"/help/C/gnome-help/.*\.page$"),
    DebSource("fortunes", "fortunes", OTHER_LABEL,
              r"/fortunes/(art|education|food|humorists|kids|law|literature|love|medicine|men-women|"
              r"miscellaneous|news|people|pets|platitudes|politics|riddles|science|songs-poems|sports|wisdom|work)$"),
]

SOURCE_LABELS = {s.name: s.label for s in DEB_SOURCES} | {"pypi-readmes": CODE_LABEL, "pypi-licenses": OTHER_LABEL}


class CorpusUnavailable(RuntimeError):
    """apt could not fetch the documentation packages (offline machine)."""


def _apt_download(packages: list[str], dest: Path) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise CorpusUnavailable("apt-get/dpkg-deb not available")
    dest.mkdir(parents=True, exist_ok=True)

    def attempt() -> subprocess.CompletedProcess:
        return subprocess.run(["apt-get", "download", *packages], cwd=dest, capture_output=True, text=True,
                              timeout=600)

    res = attempt()
    if res.returncode != 0 and os.geteuid() == 0:
        subprocess.run(["apt-get", "update"], capture_output=True, timeout=600)
        res = attempt()
    if res.returncode != 0:
        raise CorpusUnavailable(f"apt-get download {' '.join(packages)} failed: {res.stderr.strip()[-500:]}")


def _deb_for(package: str) -> Path | None:
    hits = sorted(CACHE.glob(f"{package}_*.deb"))
    return hits[-1] if hits else None


def ensure_extracted() -> Path:
    """Download (once) and extract every .deb into ``CACHE/x/<package>``."""
    missing = [s.package for s in DEB_SOURCES if _deb_for(s.package) is None]
    if missing:
        _apt_download(missing, CACHE)
    for s in DEB_SOURCES:
        out = CACHE / "x" / s.package
        marker = out / ".extracted"
        if not marker.exists():
            deb = _deb_for(s.package)
            if deb is None:
                raise CorpusUnavailable(f"{s.package}: .deb missing after download")
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            subprocess.run(["dpkg-deb", "-x", str(deb), str(out)], check=True, timeout=600)
            marker.write_text(deb.name)
    return CACHE / "x"


def _fortune_pages(path: Path, per_page: int = 12) -> list[str]:
    items = [t.strip() for t in path.read_text(encoding="utf-8", errors="replace").split("\n%\n") if t.strip()]
    return ["\n\n".join(items[i:i + per_page]) for i in range(0, len(items), per_page)]


def _extract_source(s: DebSource, root: Path) -> list[dict]:
    inc = re.compile(s.include)
    exc = re.compile(s.exclude, re.I) if s.exclude else None
    files = sorted(
        p for p in (root / s.package).rglob("*")
        if p.is_file() and inc.search(p.as_posix()) and not (exc and exc.search(p.as_posix()))
    )
    random.Random(f"corpus:{s.name}").shuffle(files)
    pages: list[dict] = []
    for f in files:
        if len(pages) >= PAGES_PER_SOURCE:
            break
        rel = f.relative_to(root / s.package).as_posix()
        if s.name == "fortunes":
            for i, text in enumerate(_fortune_pages(f)):
                pages.append({"path": f"{rel}#{i}", "text": text})
            continue
        text = html_to_text(f.read_text(encoding="utf-8", errors="replace"))
        pages.append({"path": rel, "text": text})
    return pages[:PAGES_PER_SOURCE * 2]


def _pypi_pages() -> dict[str, list[dict]]:
    """README (METADATA description) and license texts of every installed distribution."""
    readmes: dict[str, dict] = {}
    licenses: dict[str, dict] = {}
    site = Path(sysconfig.get_paths()["purelib"])
    for dist in sorted(site.glob("*.dist-info")):
        meta = dist / "METADATA"
        if meta.is_file():
            msg = email.message_from_string(meta.read_text(encoding="utf-8", errors="replace"))
            body = msg.get_payload()
            if isinstance(body, str) and len(body) > 800:
                readmes.setdefault(hashlib.md5(body.encode()).hexdigest(),
                                   {"path": f"{dist.name}/METADATA", "text": body})
        for f in sorted(dist.rglob("*")):
            if f.is_file() and re.search(r"^(LICEN[CS]E|COPYING|NOTICE)", f.name, re.I):
                text = f.read_text(encoding="utf-8", errors="replace")
                if len(text) > 400:
                    licenses.setdefault(hashlib.md5(text.encode()).hexdigest(),
                                        {"path": f.relative_to(site).as_posix(), "text": text})
    return {"pypi-readmes": list(readmes.values()), "pypi-licenses": list(licenses.values())}


def strip_repeated_lines(texts: list[str], min_share: float = 0.1) -> list[str]:
    """Drop lines that occur in >= ``min_share`` of a doc set's pages (menus, footers)."""
    counts: collections.Counter = collections.Counter()
    for t in texts:
        counts.update({ln.strip() for ln in t.split("\n") if ln.strip()})
    limit = max(2, min_share * len(texts))
    return ["\n".join(ln for ln in t.split("\n") if ln.strip() and counts[ln.strip()] < limit) for t in texts]


def load_corpus(min_chars: int = 300) -> dict[str, list[dict]]:
    """{source: [{"path", "text"}]}; built once per machine, then read from the JSON cache."""
    cache_file = CACHE / f"corpus-{CORPUS_VERSION}.json"
    if cache_file.is_file():
        return json.loads(cache_file.read_text(encoding="utf-8"))
    root = ensure_extracted()
    corpus: dict[str, list[dict]] = {}
    for s in DEB_SOURCES:
        pages = _extract_source(s, root)
        stripped = strip_repeated_lines([p["text"] for p in pages])
        corpus[s.name] = [
            {"path": p["path"], "text": t} for p, t in zip(pages, stripped, strict=True) if len(t) >= min_chars
        ][:PAGES_PER_SOURCE]
    for name, pages in _pypi_pages().items():
        corpus[name] = [p for p in pages if len(p["text"]) >= min_chars][:PAGES_PER_SOURCE]
    tmp = cache_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(corpus), encoding="utf-8")
    tmp.replace(cache_file)
    shutil.rmtree(root, ignore_errors=True)  # ~350 MB of extracted files; the .debs (~90 MB) stay
    return corpus


def all_site_packages_texts(limit: int = 2000) -> list[str]:
    """Fallback real text (bench without apt): README/.rst/.txt/.md files of installed packages."""
    site = sysconfig.get_paths()["purelib"]
    out: list[str] = []
    for pattern in ("**/*.rst", "**/*.md", "**/METADATA", "**/LICENSE*"):
        for f in sorted(glob.glob(os.path.join(site, pattern), recursive=True)):
            try:
                text = Path(f).read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if len(text) > 300:
                out.append(text)
            if len(out) >= limit:
                return out
    return out
