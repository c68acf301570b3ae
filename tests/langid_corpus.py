"""Real natural-language documents already on a Debian machine, labelled by where they come from.

- English: man pages (``/usr/share/man/man[1-8]``, many Debian packages) and Node.js's Markdown
  API docs (``nodejs``);
- Chinese: the ``zh_CN`` / ``zh_TW`` man pages (``man-db``, ``login``, ``passwd``...), Vim's
  Chinese tutors (``vim-runtime``) and GnuPG's help (``gnupg-l10n``);
- other languages: the translated man pages (de, fr, es, it, ja, ru, pl, pt, ko, nl, sv, uk).

Man pages are troff: macros and escapes are stripped to plain text. Several "translated" man pages
are still mostly English (untranslated sections); a Chinese one whose letters are less than 20 %
CJK is left out rather than labelled either way.
"""

from __future__ import annotations

import glob
import gzip
import re
from pathlib import Path

_ESC = re.compile(r"\\f[BIRPC]|\\f\(..|\\\(..|\\\[[^\]]*\]|\\[&|^~0 ]|\\-|\\e|\\\*\(..|\\\*.|\\s[+-]?\d")
_PROSE_MACRO = re.compile(r"^\.(?:SH|SS|B|I|BI|BR|IR|IP|TP)\s+(.*)$")
_CJK = re.compile(r"[\u4e00-\u9fff]")
OTHER_LANGS = ("de", "fr", "es", "it", "ja", "ru", "pl", "pt_BR", "ko", "nl", "sv", "uk")


def strip_troff(text: str) -> str:
    out = []
    for line in text.splitlines():
        if line.startswith((".", "'")):
            m = _PROSE_MACRO.match(line)
            if m:
                out.append(m.group(1).strip('"'))
            continue
        out.append(line)
    return _ESC.sub("", "\n".join(out)).replace("\\", "")


def cjk_share(text: str) -> float:
    return len(_CJK.findall(text)) / max(sum(c.isalpha() for c in text), 1)


def _man(pattern: str, limit: int, step: int = 1, max_chars: int = 3000) -> list[tuple[str, str]]:
    docs = []
    for p in sorted(glob.glob(pattern))[::step]:
        try:
            t = strip_troff(gzip.open(p).read().decode("utf-8")).strip()
        except (UnicodeDecodeError, OSError, EOFError):
            continue
        if len(t) >= 300:
            docs.append((p, t[:max_chars]))
        if len(docs) >= limit:
            break
    return docs


def _chunks(path: str, size: int = 2000, limit: int = 40) -> list[tuple[str, str]]:
    p = Path(path)
    if not p.is_file():
        return []
    out, cur = [], ""
    for para in re.split(r"\n\s*\n", p.read_text(encoding="utf-8", errors="replace")):
        cur += para + "\n\n"
        if len(cur) >= size:
            out.append((f"{path}#{len(out)}", cur.strip()))
            cur = ""
        if len(out) >= limit:
            break
    return out


def english_docs(limit: int = 250) -> list[tuple[str, str]]:
    md = sorted(glob.glob("/usr/share/doc/nodejs/api/*.md"))[::3][:50]
    return _man("/usr/share/man/man[1-8]/*.gz", limit - len(md), step=7) + [(p, Path(p).read_text()[:3000]) for p in md]


def chinese_docs() -> list[tuple[str, str]]:
    docs = _man("/usr/share/man/zh_CN/man*/*.gz", 1000) + _man("/usr/share/man/zh_TW/man*/*.gz", 1000)
    docs += _chunks("/usr/share/vim/vim90/tutor/tutor.zh_cn.utf-8") + _chunks("/usr/share/vim/vim90/tutor/tutor.zh.utf-8")
    docs += _chunks("/usr/share/gnupg/help.zh_CN.txt")
    return [(p, t) for p, t in docs if cjk_share(t) >= 0.2]


def other_docs(per_lang: int = 20) -> list[tuple[str, str, str]]:
    return [(p, d.split("_")[0], t) for d in OTHER_LANGS for p, t in _man(f"/usr/share/man/{d}/man*/*.gz", per_lang)]


def labelled_docs() -> list[tuple[str, str, str]]:
    """(source, language, text) of every document."""
    return ([(p, "en", t) for p, t in english_docs()] + [(p, "zh", t) for p, t in chinese_docs()]
            + other_docs())
