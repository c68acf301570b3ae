"""Jupyter notebook (``.ipynb``) -> one text document in the "percent" format (pure library).

Why a conversion: the paper keeps notebooks as their own corpus; the JSON wrapper, execution
counts and outputs (images, HTML, tracebacks) are not training text, and the recipe's filters
expect source code. A notebook becomes the script Jupytext's percent format would write
(without its YAML header): ``# %%`` before each code cell, ``# %% [markdown]`` / ``# %% [raw]``
before text cells whose lines are commented out, one blank line between cells, in the
kernel's comment syntax (``# %%`` for Python/R/Julia, ``// %%`` for Scala/C++...). Outputs are
never read. In a Python notebook IPython syntax is commented out (``%magic``, ``!shell``,
``obj?``; a cell magic that switches language, ``%%bash``, comments its whole cell) so the
document parses as Python and the Python rules judge the code itself.

Kernel language, first found wins: ``metadata.kernelspec.language``,
``metadata.language_info.name``, ``metadata.language`` (nbformat 3), the first code cell's
``language`` (nbformat 3), ``metadata.kernelspec.name`` (``python3`` / ``ir`` / ``julia-1.9``);
none -> ``python`` (assumed: the IPython default, recorded as ``(assumed)``). Known names
become the document's ``language`` (``python``, ``r``, ``julia``, ``scala``...), so the filter
picks the Python table for Python notebooks and ``others`` for the rest; an unrecognised kernel
keeps ``jupyter notebook`` (table ``others``).

Untrusted input: the caller caps the file size (8 MiB); :func:`render_notebook` additionally
bounds the JSON (at most :data:`MAX_JSON_CONTAINERS` objects/arrays, counted on the bytes
before parsing, so a file of millions of ``{}`` cannot take gigabytes; nesting deeper than the
interpreter's recursion limit is caught), and checks every field it reads (a non-string
``source`` is an error, and so are NUL characters and lone surrogates that JSON escapes let into
cell text; a non-dict ``metadata`` is ignored). Every failure is a
:class:`NotebookError` whose reason is ``invalid_notebook`` or ``empty_notebook`` and whose
detail says what was wrong where (``cells[3].source: dict, expected a string or a list of
strings``); preprocessing records it as the file's drop.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from opencoder_assets.core.languages import NOTEBOOK_LANGUAGE, language_info
from opencoder_assets.core.transform import comment_syntax

#: Upper bound on ``{`` + ``[`` bytes of a notebook file before it is parsed (an upper bound of
#: the JSON containers: brackets inside strings count too). Memory of a parse is roughly 60-100
#: bytes per container; a real notebook of thousands of cells has tens of thousands.
MAX_JSON_CONTAINERS = 1_000_000

#: Kernel names/languages seen in the wild -> our language names (core/languages.py).
KERNEL_ALIASES: dict[str, str] = {
    "python2": "python", "python3": "python", "ipython": "python", "ipython2": "python", "ipython3": "python",
    "py": "python", "pypy3": "python", "pyspark": "python", "ir": "r", "c++": "cpp", "c++11": "cpp",
    "c++14": "cpp", "c++17": "cpp", "c++20": "cpp", "xcpp": "cpp", "c#": "csharp", ".net-csharp": "csharp",
    "fsharp": "f#", ".net-fsharp": "f#", "bash": "shell", "sh": "shell", "zsh": "shell",
    "js": "javascript", "node": "javascript", "nodejs": "javascript", "ts": "typescript", "golang": "go",
    "octave": "matlab", "wolfram language": "mathematica", "spark": "scala", "sparkr": "r",
}  # fmt: skip

#: Cell magics whose body is still Python (only their first line is commented out).
PYTHON_BODY_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "px", "memit", "mprun",
                                     "autoreload", "cython_inline", "skip"})

#: ``%magic``, ``!shell``, ``?obj`` and ``obj?`` / ``obj??`` (help) lines.
_MAGIC_LINE = re.compile(r"^\s*(?:[%!?]|[\w.]+\?{1,2}\s*$)")
_KERNEL_NAME_PREFIX = re.compile(r"^([a-z+#]+?)(?:[-_ ]?v?\d[\w.]*)?$")


class NotebookError(ValueError):
    """A notebook that cannot become a document; ``reason`` is the decision's drop reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class NotebookDoc:
    """The rendered document and what the conversion recorded."""

    text: str
    language: str  #: program_lang of the document (kernel language, or ``jupyter notebook``)
    doc_type: str  #: ``code`` / ``data`` / ``text`` of that language
    kernel: str  #: the kernel label as found (sanitised), e.g. ``python`` or ``ir``
    kernel_source: str  #: where it was found (``kernelspec.language``...), or ``assumed``
    code_cells: int
    markdown_cells: int
    raw_cells: int
    skipped_cells: int  #: empty cells and unknown cell types
    outputs_dropped: int

    def detail(self) -> str:
        """One-line summary for the preprocessing decision of a kept notebook."""
        return (f"notebook kernel={self.kernel} ({self.kernel_source}) code_cells={self.code_cells} "
                f"markdown_cells={self.markdown_cells} raw_cells={self.raw_cells} "
                f"skipped_cells={self.skipped_cells} outputs_dropped={self.outputs_dropped}")


def _invalid(detail: str) -> NotebookError:
    return NotebookError("invalid_notebook", detail)


def _clean_label(value: Any) -> str | None:
    """A short printable kernel label, or None for anything that is not a usable string."""
    if not isinstance(value, str):
        return None
    label = re.sub(r"[^\w+#.\- ]", "", value.strip().lower())[:40].strip()
    return label or None


def _normalise_kernel(label: str) -> str | None:
    """Our language name for a kernel label, or None if it is not a language we know."""
    name = KERNEL_ALIASES.get(label, label)
    if language_info(name).doc_type in ("code", "data", "text"):
        return language_info(name).name
    m = _KERNEL_NAME_PREFIX.match(label)  # julia-1.9, python3.11, scala212
    if m and m.group(1) != label:
        return _normalise_kernel(m.group(1))
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def kernel_language(nb: dict[str, Any], cells: list[Any]) -> tuple[str, str, str]:
    """(language name, kernel label, where it was found); see the module docstring for the order."""
    meta = _dict(nb.get("metadata"))
    first_code = next((c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"), {})
    candidates = (
        ("kernelspec.language", _dict(meta.get("kernelspec")).get("language")),
        ("language_info.name", _dict(meta.get("language_info")).get("name")),
        ("metadata.language", meta.get("language")),
        ("cell.language", first_code.get("language")),
        ("kernelspec.name", _dict(meta.get("kernelspec")).get("name")),
    )
    fallback: tuple[str, str] | None = None
    for where, value in candidates:
        label = _clean_label(value)
        if label is None:
            continue
        name = _normalise_kernel(label)
        if name is not None:
            return name, label, where
        fallback = fallback or (label, where)
    if fallback is not None:  # a kernel we do not know: generic rules
        return NOTEBOOK_LANGUAGE, fallback[0], fallback[1]
    return "python", "python", "assumed"


def _source(cell: dict[str, Any], key: str, where: str) -> str:
    value = cell.get(key, "")
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    kind = type(value).__name__ if not isinstance(value, list) else "list with a non-string item"
    raise _invalid(f"{where}.{key}: {kind}, expected a string or a list of strings")


def _check_text(src: str, where: str) -> None:
    """JSON escapes can smuggle in what no text file holds: NUL (binary everywhere else) and lone
    surrogates (``\\ud800``: not encodable, every later step would fail on the file)."""
    if "\x00" in src:
        raise _invalid(f"{where}.source: NUL character at {src.index(chr(0))}")
    try:
        src.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _invalid(f"{where}.source: {exc.reason} at {exc.start}") from None


def _cells(nb: dict[str, Any]) -> list[Any]:
    if "cells" in nb:  # nbformat 4
        cells = nb["cells"]
        if not isinstance(cells, list):
            raise _invalid(f"cells: {type(cells).__name__}, expected a list")
        return cells
    worksheets = nb.get("worksheets")  # nbformat 3
    if worksheets is None:
        raise _invalid("no 'cells' (nbformat 4) or 'worksheets' (nbformat 3) key")
    if not isinstance(worksheets, list):
        raise _invalid(f"worksheets: {type(worksheets).__name__}, expected a list")
    cells: list[Any] = []
    for i, ws in enumerate(worksheets):
        ws_cells = ws.get("cells") if isinstance(ws, dict) else None
        if not isinstance(ws_cells, list):
            raise _invalid(f"worksheets[{i}].cells: missing or not a list")
        cells.extend(ws_cells)
    return cells


def _comment(lines: list[str], marker: str) -> list[str]:
    return [f"{marker} {line}" if line.strip() else marker for line in lines]


def _python_code(lines: list[str], marker: str) -> list[str]:
    """IPython syntax commented out (see the module docstring)."""
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("%%"):
        magic = first[2:].split(maxsplit=1)[0] if len(first) > 2 else ""
        if magic not in PYTHON_BODY_CELL_MAGICS:
            return _comment(lines, marker)
        i = next(i for i, line in enumerate(lines) if line.strip())
        return [*lines[:i], f"{marker} {lines[i]}", *_python_code(lines[i + 1:], marker)]
    return [f"{marker} {line}" if _MAGIC_LINE.search(line) else line for line in lines]


def render_notebook(text: str) -> NotebookDoc:
    """Percent-format document of a notebook's JSON text; raises :class:`NotebookError`."""
    containers = text.count("{") + text.count("[")
    if containers > MAX_JSON_CONTAINERS:
        raise _invalid(f"over {MAX_JSON_CONTAINERS} JSON containers ({containers} '{{'/'[' characters)")
    try:
        nb = json.loads(text)
    except RecursionError:
        raise _invalid("JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, int digit limit
        raise _invalid(f"not JSON: {str(exc)[:200]}") from None
    if not isinstance(nb, dict):
        raise _invalid(f"top level is a JSON {type(nb).__name__}, expected an object")
    cells = _cells(nb)
    language, kernel, where = kernel_language(nb, cells)
    syntax = comment_syntax(language)
    marker = syntax.line[0] if syntax is not None and syntax.line else "#"
    blocks: list[str] = []
    counts = {"code": 0, "markdown": 0, "raw": 0, "skipped": 0, "outputs": 0}
    for i, cell in enumerate(cells):
        at = f"cells[{i}]"
        if not isinstance(cell, dict):
            raise _invalid(f"{at}: {type(cell).__name__}, expected an object")
        kind = cell.get("cell_type")
        outputs = cell.get("outputs")
        if isinstance(outputs, list):
            counts["outputs"] += len(outputs)  # counted, never read
        if kind == "code":
            src = _source(cell, "source" if "source" in cell else "input", at)
        elif kind in ("markdown", "raw", "heading"):
            src = _source(cell, "source", at)
        else:
            counts["skipped"] += 1
            continue
        if not src.strip():
            counts["skipped"] += 1
            continue
        _check_text(src, at)
        lines = src.replace("\r\n", "\n").replace("\r", "\n").strip("\n").split("\n")
        if kind == "code":
            counts["code"] += 1
            body = _python_code(lines, marker) if language == "python" else lines
            blocks.append("\n".join([f"{marker} %%", *body]))
            continue
        if kind == "heading":  # nbformat 3 heading cell -> a markdown heading
            level = cell.get("level")
            level = level if isinstance(level, int) and 1 <= level <= 6 else 1
            lines = [f"{'#' * level} {lines[0]}", *lines[1:]]
            kind = "markdown"
        counts[kind] += 1
        blocks.append("\n".join([f"{marker} %% [{kind}]", *_comment(lines, marker)]))
    if not blocks:
        raise NotebookError("empty_notebook", f"{len(cells)} cells, none with source text")
    info = language_info(language)
    doc_type = info.doc_type if info.doc_type in ("code", "data", "text") else "code"
    return NotebookDoc(text="\n\n".join(blocks) + "\n", language=language, doc_type=doc_type, kernel=kernel,
                       kernel_source=where, code_cells=counts["code"], markdown_cells=counts["markdown"],
                       raw_cells=counts["raw"], skipped_cells=counts["skipped"], outputs_dropped=counts["outputs"])
