"""RefineCode "transformation" step: strip leading copyright headers, redact PII (pure library).

The recipe (opencoder_recipe.md §3, gaps §6.12-13) says only that repetitive copyright notices
are removed from the text (the file is kept) and that "complex regular expressions" replace
passwords, emails, IP addresses, ... with placeholders.  Neither the patterns nor the placeholder
set were released, so every decision below is ours; ``docs/transformation.md`` lists them with
examples.  Short version:

* **Copyright**: only license/copyright *comment blocks in the leading comment region* (after an
  optional shebang / encoding cookie / XML prolog / ``<?php`` / tool directives, which are kept)
  are removed, and only blocks that contain a license marker.  Code is never touched.  A file
  that would become empty is returned unchanged (``copyright_only`` flag for the caller).
* **PII**: ``<EMAIL>``, ``<IP_ADDRESS>``, ``<PASSWORD>``, ``<KEY>`` placeholders, replacing only
  the secret value and keeping the surrounding syntax.  Reserved/private/documentation IPs,
  version strings, RFC 2606 example emails and obvious non-secrets are kept.  Idempotent.
* **Names** (``<NAME>``, from the paper's placeholder list): author attributions *inside comments
  and docstrings* only (``@author X``, ``Author(s): X, Y``, ``Maintainer: X``, ``Written by X``,
  ``Copyright (c) 2019 X``); the keyword stays, each name becomes ``<NAME>``.  Code (identifiers,
  string literals) is never touched.

Performance: every pattern is compiled once and guarded by a cheap substring pre-check.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import regex

__all__ = [
    "PII_KINDS",
    "CommentSyntax",
    "CopyrightHeader",
    "TransformResult",
    "comment_spans",
    "comment_syntax",
    "find_copyright_header",
    "redact_names",
    "redact_pii",
    "remove_copyright_header",
    "transform_document",
]

PII_KINDS: tuple[str, ...] = ("EMAIL", "IP_ADDRESS", "PASSWORD", "KEY", "NAME")
EMAIL_PLACEHOLDER = "<EMAIL>"
IP_PLACEHOLDER = "<IP_ADDRESS>"
PASSWORD_PLACEHOLDER = "<PASSWORD>"
KEY_PLACEHOLDER = "<KEY>"
NAME_PLACEHOLDER = "<NAME>"


@dataclass
class TransformResult:
    """Outcome of :func:`transform_document`; counters feed the asset's metadata/metrics."""

    text: str
    copyright_removed_chars: int
    copyright_block: str | None
    pii_counts: dict[str, int]
    changed: bool
    #: The leading comment region is a license and nothing else follows: text left unchanged,
    #: the caller decides (e.g. records ``copyright_only_file``).  Additive field (default False).
    copyright_only: bool = False


# =====================================================================================
# Copyright headers
# =====================================================================================


@dataclass(frozen=True)
class CommentSyntax:
    """Comment delimiters of a language family (only what is needed to walk a file's header)."""

    line: tuple[str, ...] = ()
    block: tuple[tuple[str, str], ...] = ()
    docstring: bool = False  # Python-style module docstring counts as header material
    not_comment: tuple[str, ...] = ()  # prefixes that look like comments but are code/pragmas


_C = CommentSyntax(line=("//",), block=(("/*", "*/"),))
_CSS = CommentSyntax(block=(("/*", "*/"),))
_PHP = CommentSyntax(line=("//", "#"), block=(("/*", "*/"),), not_comment=("#[",))
_HASH = CommentSyntax(line=("#",))
_HASH_C = CommentSyntax(line=("#", "//"), block=(("/*", "*/"),))
_PY = CommentSyntax(line=("#",), docstring=True)
_PWSH = CommentSyntax(line=("#",), block=(("<#", "#>"),))
_JULIA = CommentSyntax(line=("#",), block=(("#=", "=#"),))
_COFFEE = CommentSyntax(line=("#",), block=(("###", "###"),))
_XML = CommentSyntax(block=(("<!--", "-->"),), not_comment=("<!--[if", "<!--<![endif"))
_SQL = CommentSyntax(line=("--",), block=(("/*", "*/"),))
_LUA = CommentSyntax(line=("--",), block=(("--[[", "]]"),))
_HASKELL = CommentSyntax(line=("--",), block=(("{-", "-}"),), not_comment=("{-#",))
_DASH = CommentSyntax(line=("--",))
_LISP = CommentSyntax(line=(";",), block=(("#|", "|#"),))
_SEMI = CommentSyntax(line=(";",))
_INI = CommentSyntax(line=(";", "#"))
_PERCENT = CommentSyntax(line=("%",), block=(("%{", "%}"),))
_PROLOG = CommentSyntax(line=("%",), block=(("/*", "*/"),))
_ML = CommentSyntax(block=(("(*", "*)"),))
_PASCAL = CommentSyntax(line=("//",), block=(("(*", "*)"), ("{", "}")), not_comment=("{$",))
_FORTRAN = CommentSyntax(line=("!",))
_VB = CommentSyntax(line=("'",))

_FAMILIES: dict[CommentSyntax, str] = {
    _C: "c cpp c++ csharp c# java javascript js jsx typescript ts tsx go rust kotlin swift scala "
    "dart groovy objective-c objective-c++ objective-j cuda d zig solidity "
    "protocol buffer glsl hlsl opencl metal verilog systemverilog vala haxe apex ceylon chapel "
    "gosu jsonnet less scss stylus actionscript processing qml wgsl thrift webidl smithy cue p4 "
    "renderscript unified parallel c xtend json with comments json5 gradle gradle kotlin dsl "
    "antlr bison yacc lex flex jflex nextflow ballerina cairo move vyper? yul cadence "
    "unrealscript squirrel angelscript pawn sourcepawn nesc xc ec gdscript? circom slint "
    "glimmer js kusto typst",
    _CSS: "css postcss sugarss",
    _PHP: "php hack zephir",
    _HASH: "shell bash sh zsh fish tcsh shellsession ruby crystal perl raku r yaml toml makefile "
    "cmake dockerfile elixir nim coffeescript? awk tcl gentoo ebuild gentoo eclass puppet graphql "
    "nginx apacheconf meson gn bitbake dotenv git config ssh config editorconfig gitignore "
    "ignore list git attributes codeowners procfile earthly just sage? mojo? nushell nu elvish "
    "gdscript robotframework hcl? terraform? vim snippet ini? properties? python traceback? "
    "snakemake? starlark? saltstack ansible conda",
    _HASH_C: "hcl terraform terraform template",
    _PY: "python cython sage xonsh starlark snakemake mojo",
    _PWSH: "powershell",
    _JULIA: "julia",
    _COFFEE: "coffeescript",
    _XML: "html xml svg xslt xhtml vue svelte markdown mdx maven pom xml property list "
    "ant build system xpages html+ecr html+eex html+erb html+razor html+php xaml wsdl xsd "
    "java server pages",
    _SQL: "sql plsql plpgsql tsql mysql hiveql sqlpl plsql",
    _LUA: "lua luau moonscript",
    _HASKELL: "haskell elm purescript idris agda",
    _DASH: "ada vhdl eiffel",
    _LISP: "common lisp emacs lisp lisp scheme racket lfe",
    _SEMI: "clojure fennel hy assembly nasm motorola 68k assembly autohotkey inno setup ini rebol red",
    _INI: "ini properties java properties editorconfig? git config? desktop",
    _PERCENT: "tex latex matlab octave lilypond",
    _PROLOG: "prolog erlang mercury logtalk",
    _ML: "ocaml f# fsharp standard ml coq mathematica reasonml? isabelle",
    _PASCAL: "pascal delphi component pascal oxygene",
    _FORTRAN: "fortran fortran free form",
    _VB: "vba vbscript visual basic .net visual basic 6.0 visual basic",
}


def _build_lang_table() -> dict[str, CommentSyntax]:
    """Language name -> syntax.  Names are the lowercase Linguist names used as program_lang."""
    multi = {
        "protocol buffer", "unified parallel c", "json with comments", "gradle kotlin dsl",
        "glimmer js", "gentoo ebuild", "gentoo eclass", "git config", "ssh config",
        "ignore list", "git attributes", "vim snippet", "maven pom", "xml property list",
        "ant build system", "java server pages", "common lisp", "emacs lisp",
        "motorola 68k assembly", "inno setup", "standard ml", "component pascal",
        "fortran free form", "visual basic .net", "visual basic 6.0", "visual basic",
        "terraform template",
    }  # fmt: skip
    table: dict[str, CommentSyntax] = {}
    for syntax, names in _FAMILIES.items():
        rest = names
        for name in sorted(multi, key=len, reverse=True):
            if f" {name} " in f" {rest} ":
                table.setdefault(name, syntax)
                rest = f" {rest} ".replace(f" {name} ", " ")
        for name in rest.split():
            if name.endswith("?"):  # "?" = undecided here (other family or unsure): skip
                continue
            table.setdefault(name, syntax)
    # explicit precedence for names that appear in two families
    table.update({"php": _PHP, "hcl": _HASH_C, "terraform": _HASH_C, "ini": _INI})
    table.update({"python": _PY, "starlark": _PY, "coffeescript": _COFFEE, "gdscript": _HASH})
    return table


_LANG_SYNTAX: dict[str, CommentSyntax] = _build_lang_table()
_ALIASES = {"c++": "cpp", "c#": "csharp", "py": "python", "python3": "python", "golang": "go",
            "js": "javascript", "ts": "typescript", "bash": "shell", "sh": "shell", "zsh": "shell",
            "objc": "objective-c", "yml": "yaml", "md": "markdown"}  # fmt: skip


def comment_syntax(program_lang: str) -> CommentSyntax | None:
    """Comment syntax for a program_lang value, or None (unknown language: never touched)."""
    name = (program_lang or "").strip().lower()
    name = _ALIASES.get(name, name)
    return _LANG_SYNTAX.get(name)


# A block is a license header only if it contains one of these.  Kept specific: a bare word
# "license" does not count (a comment can document a license-key feature).
_LICENSE_MARKER = re.compile(
    r"""
      copyright\b | \(c\)\s*(?-i:[0-9A-Z]) | \u00a9 | &copy; | spdx-license-identifier
    | licen[sc]ed\s+(?:under|to\s+the|as\b) | all\s+rights\s+reserved
    | gnu\s+(?:lesser\s+|library\s+|affero\s+)?general\s+public\s+licen[sc]e
    | (?-i:\b[LA]?GPL(?:-?v?[23](?:\.\d)?)?\b)
    | \b(?:mit|apache|bsd|isc|mozilla\s+public|eclipse\s+public|artistic|boost\s+software
        |zlib|unlicense|wtfpl|creative\s+commons)(?:[-\s]style)?\s+licen[sc]e
    | permission\s+is\s+hereby\s+granted | permission\s+to\s+use,\s+copy
    | redistribution\s+and\s+use\s+in\s+source | without\s+(?:any\s+)?warrant(?:y|ies)
    | is\s+free\s+software | provided\s+(?:by\s+\S.{0,80}?)?["']?as\s+is\b
    | use\s+of\s+this\s+source\s+code\s+is\s+governed | released\s+into\s+the\s+public\s+domain
    | @licen[sc]e\b | @copyright\b | ^[\s*#/;%!'-]*licen[sc]e\s*:\s*\S
    """,
    re.IGNORECASE | re.VERBOSE | re.MULTILINE,
)

# Lines kept even inside a removed comment group: they change how the file is built/run.
_DIRECTIVE = re.compile(
    r"""^[ \t]*(?:
        \#!(?!\[)                                   # shebang
      | \#.*?coding[:=][ \t]*[-\w.]+                # PEP 263 encoding cookie
      | \#[ \t]*(?:frozen_string_literal|encoding|warn_indent|shareable_constant_value):
      | \#[ \t]*(?:syntax|escape)=                  # Dockerfile parser directives
      | \#[ \t]*(?:type|mypy|pylint|flake8|noqa|isort|fmt|pyright|cython|distutils):
      | //[ \t]*(?:swift-tools-version|\+build\b|@flow\b|@ts-|eslint|prettier-ignore|jshint|
                 jscs|tslint|@jsx|@refresh|biome-ignore|@generated)
      | //go:
      | ///[ \t]*<reference
      | /\*[ \t]*(?:@flow|eslint|global\s|jshint|@jsx|@generated|istanbul)
      | -\*-.*-\*-
    )""",
    re.VERBOSE,
)

_XML_PROLOG = re.compile(r"^[ \t]*(?:<\?xml[^\n]*\?>|<!DOCTYPE[^\n]*>|<\?php[ \t]*$)", re.I)
# Python module docstring (any string prefix except f/b), used only at the top of the file.
_DOCSTRING = re.compile(
    r'(?:[rRuU]{0,2})(?:"""(?:[^"\\]|\\.|"(?!""))*"""|\'\'\'(?:[^\'\\]|\\.|\'(?!\'\'))*\'\'\')',
    re.DOTALL,
)


@dataclass
class CopyrightHeader:
    """What :func:`find_copyright_header` located: spans to delete and the resulting text."""

    spans: list[tuple[int, int]]  # removed [start, end) character spans
    block: str  # removed text (spans joined)
    new_text: str  # text with the spans removed (== input if only_comments)
    only_comments: bool  # removing would leave nothing but prolog/whitespace


@dataclass
class _Item:
    start: int
    end: int
    kind: str  # "line" | "block" | "doc"


def _line_end(text: str, pos: int) -> int:
    """Offset just past the newline of the line containing pos (or len(text))."""
    eol = text.find("\n", pos)
    return len(text) if eol < 0 else eol + 1


def _starts_comment(s: str, syntax: CommentSyntax, prefixes: tuple[str, ...]) -> str | None:
    if any(s.startswith(x) for x in syntax.not_comment):
        return None
    for p in prefixes:
        if s.startswith(p):
            return p
    return None


def _scan_leading_region(text: str, syntax: CommentSyntax) -> tuple[int, list[_Item], int]:
    """Walk prolog + leading comments.  Returns (prolog_end, items, code_start)."""
    n = len(text)
    pos = 1 if text.startswith("\ufeff") else 0
    line_no = 0
    # -- prolog: shebang, encoding cookie, tool directives, <?xml?>, <!DOCTYPE>, <?php
    while pos < n:
        eol = _line_end(text, pos)
        line = text[pos:eol]
        if _XML_PROLOG.match(line) or (
            _DIRECTIVE.match(line) and (line_no == 0 or not line.lstrip().startswith("#!"))
        ):
            pos, line_no = eol, line_no + 1
            continue
        break
    prolog_end = pos
    items: list[_Item] = []
    doc_seen = False
    block_opens = tuple(o for o, _ in syntax.block)
    while pos < n:
        eol = _line_end(text, pos)
        line = text[pos:eol]
        s = line.lstrip()
        if not s.strip():
            pos = eol
            continue
        col = pos + (len(line) - len(s))
        opener = _starts_comment(s, syntax, block_opens)
        if opener is not None:
            close = dict(syntax.block)[opener]
            c = text.find(close, col + len(opener))
            if c < 0:
                break  # unterminated: do not guess
            end = c + len(close)
            after = _line_end(text, end) if end < n else n
            if text[end:after].strip():
                break  # code on the closing line: leave alone
            items.append(_Item(pos, after, "block"))
            pos = after
            continue
        if _starts_comment(s, syntax, syntax.line) is not None:
            q = pos
            while q < n:
                qe = _line_end(text, q)
                qs = text[q:qe].lstrip()
                if not qs or _starts_comment(qs, syntax, syntax.line) is None:
                    break
                if _starts_comment(qs, syntax, block_opens) is not None:
                    break  # e.g. "--[[" after "--" lines in Lua
                q = qe
            items.append(_Item(pos, q, "line"))
            pos = q
            continue
        if syntax.docstring and not doc_seen and col == pos:
            m = _DOCSTRING.match(text, col)
            if m:
                after = _line_end(text, m.end()) if m.end() < n else n
                if not text[m.end() : after].strip():
                    items.append(_Item(pos, after, "doc"))
                    doc_seen = True
                    pos = after
                    continue
        break
    return prolog_end, items, pos


def _is_license_item(text: str, item: _Item) -> bool:
    """Comments: any marker.  Docstrings: marker on the first non-blank line (real docs stay)."""
    if item.kind != "doc":
        return _LICENSE_MARKER.search(text, item.start, item.end) is not None
    body = text[item.start : item.end].lstrip(" \t\r\nrRuU").lstrip("\"'")
    first = next((ln for ln in body.splitlines() if ln.strip()), "")
    return _LICENSE_MARKER.search(first) is not None


def find_copyright_header(text: str, program_lang: str) -> CopyrightHeader | None:
    """Locate license comment blocks in the leading comment region; None if there are none."""
    syntax = comment_syntax(program_lang)
    if syntax is None or not text:
        return None
    prolog_end, items, code_start = _scan_leading_region(text, syntax)
    spans: list[tuple[int, int]] = []
    for idx, item in enumerate(items):
        if not _is_license_item(text, item):
            continue
        # swallow the blank lines that follow, up to the next item / code
        nxt = items[idx + 1].start if idx + 1 < len(items) else code_start
        end = nxt if not text[item.end : nxt].strip() else item.end
        if item.kind == "line":  # keep directive lines (//go:build, coding cookie, ...)
            pos = item.start
            run_start = pos
            while pos < item.end:
                eol = _line_end(text, pos)
                if _DIRECTIVE.match(text, pos):
                    if run_start < pos:
                        spans.append((run_start, pos))
                    run_start = eol
                pos = eol
            if run_start < end:
                spans.append((run_start, end))
        else:
            spans.append((item.start, end))
    if not spans:
        return None
    pieces: list[str] = []
    removed: list[str] = []
    prev = 0
    for a, b in spans:
        pieces.append(text[prev:a])
        removed.append(text[a:b])
        prev = b
    pieces.append(text[prev:])
    new_text = "".join(pieces)
    only = not new_text[prolog_end:].strip()
    block = "".join(removed)
    return CopyrightHeader(spans, block, text if only else new_text, only)


def remove_copyright_header(text: str, program_lang: str) -> tuple[str, str | None]:
    """Remove the leading license/copyright comment block(s); returns (text, removed block).

    Unknown languages, headers without a license marker and copyright-only files (which would
    become empty) come back unchanged with ``None``; use :func:`find_copyright_header` to tell
    the last case apart.
    """
    found = find_copyright_header(text, program_lang)
    if found is None or found.only_comments:
        return text, None
    return found.new_text, found.block


# =====================================================================================
# PII
# =====================================================================================

# Values that are obviously not secrets (compared lowercased, after stripping quotes).
_NON_SECRET_WORDS = frozenset(
    """
    none null nil undefined true false yes no on off empty default str string bytes int bool boolean number
    char any object secretstr secretstring securestring optional password passwd pass pwd secret
    token key apikey api_key changeme change_me changeit change-me changethis example examples
    sample test dummy placeholder redacted hidden todo fixme your_password yourpassword
    your-password my_password mypassword my-password your_secret your_token
    your_api_key your-api-key your_key yourkey secret_key your_secret_key mysecret my_secret
    passwort senha wachtwoord parola salasana contrasena kennwort heslo
    """.split()
)
_PLACEHOLDER_VALUE = re.compile(
    r"""^(?:
        [xX*•.\-_#?]+                         # xxx, ***, ..., ---
      | <[^<>]*> | \[[^\[\]]*\]               # <PASSWORD>, <your password>, [REDACTED]
      | \$\{?[\w.:-]*\}? | \$\(.*\) | %\w+% | \$\w+  # ${ENV}, $(cmd), %VAR%, $VAR
      | \{\{.*\}\} | \{%.*%\} | \{\w*\} | \{\d+\} | %[sdr] | %\(\w+\)[sdr]   # templates / format
      | __\w+__ | @\w+@                       # __PASSWORD__, @PASSWORD@ (build substitution)
      | (?:your|my|the|some|enter|insert|put)[-_ ]?\w*
      | \w*(?:example|placeholder|changeme|redacted|dummy|sample)\w*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
# Key-name tokens that make the assigned value metadata, not the secret itself.
_META_TOKENS = frozenset(
    """length len min max size field label placeholder prompt hint text message msg error errors
    regex pattern re policy type input reset url uri endpoint path file dir rule rules strength
    expiry expires expire expiration validator validation required mode enabled enable disabled
    name id header prefix suffix env var variable key_name style class icon title format
    encoding lifetime ttl timeout count limit attempts param params column col table selector
    locator xpath css hash_algorithm algorithm algo scheme template view route method salt_rounds
    rounds manager provider reference ref storage cache dialog form button link state status
    module widget changed updated at date time version used last""".split()
)
_CAMEL_SPLIT = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def _key_tokens(key: str) -> list[str]:
    return [t.lower() for part in re.split(r"[_.\-]+", key) for t in _CAMEL_SPLIT.findall(part)]


_PASS_OWNERS = frozenset(
    """db database user smtp mail email admin root ftp sftp ssh mysql pg postgres postgresql redis
    mongo mongodb ldap proxy auth login account app imap pop wifi vpn sql rabbitmq amqp http basic
    keystore truststore store secret master api server client bind rpc""".split()
)


def _is_password_key(key: str) -> bool:
    low = key.lower().lstrip("-")
    toks = _key_tokens(key)
    if not toks or toks[-1] in _META_TOKENS:
        return False
    if any(w in low for w in ("password", "passwd", "passphrase")):
        return True
    if "pass" in toks:  # bare "pass" only alone or after a credential-ish owner (DB_PASS)
        i = toks.index("pass")
        return len(toks) == 1 or (i > 0 and toks[i - 1] in _PASS_OWNERS)
    return "pwd" in toks and toks != ["old", "pwd"]


_SECRET_KEY_HINT = re.compile(
    r"secret|token|api[_.-]?key|apikey|access[_.-]?key|private[_.-]?key|auth[_.-]?key|"
    r"client[_.-]?key|signing[_.-]?key|encryption[_.-]?key|app[_.-]?key|"
    r"master[_.-]?key|consumer[_.-]?key|session[_.-]?key|license[_.-]?key",
    re.IGNORECASE,
)


def _is_secret_key(key: str) -> bool:
    toks = _key_tokens(key)
    if not toks or toks[-1] in _META_TOKENS:
        return False
    return _SECRET_KEY_HINT.search(key) is not None


_FORMAT_FIELD = re.compile(r"%[sdr(]|\{\w*\}")
_SELF_NAMING = ("password", "passwd", "secret", "token", "apikey", "api_key")


def _looks_non_secret(value: str) -> bool:
    """True for empty values, placeholders, templates, natural language and i18n strings."""
    v = value.strip()
    if not v or len(v) > 200:
        return True
    if v.lower() in _NON_SECRET_WORDS or _PLACEHOLDER_VALUE.match(v):
        return True
    if any(ch.isspace() for ch in v) or not v.isascii():
        return True  # natural-language text (labels, translations); passphrases are missed
    if "{{" in v or "${" in v or "#{" in v or v[0] in "+," or _FORMAT_FIELD.search(v):
        return True  # template fragments / string concatenation
    low = v.lower()
    if any(w in low for w in _SELF_NAMING):
        return True  # enum-like names: USER_PASSWORD_AUTH = "USER_PASSWORD_AUTH"
    return False


def _entropy(s: str) -> float:
    counts: dict[str, int] = {}
    for ch in s:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _high_entropy(v: str) -> bool:
    """Heuristic for generic secrets: long, no spaces, mixes letters and digits, entropy >= 3."""
    if not (16 <= len(v) <= 512) or not re.fullmatch(r"[A-Za-z0-9+/=_\-.~:$!@#%^&*]+", v):
        return False
    if not (any(c.isdigit() for c in v) and any(c.isalpha() for c in v)):
        return False
    return _entropy(v) >= 3.0


# After "<key>" (+ optional closing quote/bracket): the assignment operator.
_ASSIGN = re.compile(r"""(?P<kq>["'`]?\]?)(?P<sp1>[ \t]*)(?P<op>:=|=>|=(?!=)|:(?![:=]))(?P<sp2>[ \t]*)""")
_QUOTED = {
    q: re.compile(
        rf"(?P<pfx>[rbuRBU]{{0,2}}){re.escape(q)}(?P<val>(?:[^{re.escape(q)}\\\n]|\\.){{0,256}}){re.escape(q)}"
    )
    for q in ("'", '"', "`")
}
_UNQUOTED = re.compile(r"""(?P<val>[^\s'"`,;&)}\]<>|]+)(?P<tail>[^\n]*)""")
_CODE_VALUE = re.compile(r"^(?:[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+|.*[(\[{].*|[$%@&*!~<{].*)$")
_TYPE_NAME = re.compile(r"^[A-Z][a-z]+(?:[A-Z][a-z0-9]*)*$")  # CamelCase: likely a type annotation

_CONFIG_LANGS = frozenset(
    """ini dotenv yaml toml properties java properties shell dockerfile makefile nginx apacheconf
    git config ssh config hocon editorconfig text markdown cmake procfile""".split()
)


_KEY_RIGHT = re.compile(r"[\w.\-]*")


def _hits(text: str, low: str | None, words: tuple[str, ...]) -> list[int]:
    """Start offsets of case-insensitive occurrences of ``words`` (sorted).

    ``str.find`` runs at memory speed while an IGNORECASE regex alternation crawls at
    ~10 MB/s, so ASCII text is lowercased once and searched literally; other text is searched
    for the three usual casings (lower, Title, UPPER).
    """
    out: list[int] = []
    if low is not None:
        variants = [(low, w) for w in words]
    else:
        variants = [(text, v) for w in words for v in {w, w.title(), w.upper()}]
    for hay, w in variants:
        i = hay.find(w)
        while i >= 0:
            out.append(i)
            i = hay.find(w, i + 1)
    out.sort()
    return out


def _redact_assignments(
    text: str,
    starts: list[int],
    key_ok: Callable[[str], bool],
    value_ok: Callable[[str], bool],
    placeholder: str,
    config_lang: bool,
) -> tuple[str, int]:
    """Find ``<key> <op> <value>`` shapes around keyword hits and replace the value only."""
    out: list[str] = []
    last = 0
    count = 0
    seen_key_end = -1
    n = len(text)
    for hs in starts:
        if hs < seen_key_end:
            continue
        ke = _KEY_RIGHT.match(text, hs).end()
        seen_key_end = ke
        m = _ASSIGN.match(text, ke)
        if not m or m.end() >= n:
            continue
        ks = hs
        while ks > 0 and text[ks - 1] in _KEY_CHARS:
            ks -= 1
        if ks < last:
            continue
        key = text[ks:ke]
        if not key_ok(key):
            continue
        before = text[ks - 1] if ks > 0 else "\n"
        if before in "/\\:" or before == "-" and key.startswith("-"):
            continue  # path (alias/aws/secret), namespace (AWS::IAM::AccessKey)
        vpos = m.end()
        kq, op = m.group("kq"), m.group("op")
        if before in "\"'" and not kq and op == ":":
            continue  # "password: " inside a string literal (a label), not a key
        q = text[vpos]
        qm = _QUOTED[q].match(text, vpos) if q in _QUOTED else None
        if qm is None and vpos + 1 < n and q in "bBrRuU" and text[vpos + 1] in _QUOTED:
            qm = _QUOTED[text[vpos + 1]].match(text, vpos)
        if qm is not None:
            val = qm.group("val")
            if _looks_non_secret(val) or not value_ok(val):
                continue
            a, b = qm.start("val"), qm.end("val")
        else:
            if q in "'\"`":
                continue
            um = _UNQUOTED.match(text, vpos)
            if not um:
                continue
            val = um.group("val")
            line_start = text.rfind("\n", 0, ks) + 1
            lead = text[line_start:ks].strip()
            tail = um.group("tail").strip()
            at_line = lead in _LINE_LEADS and (not tail or tail[0] in "#;")
            in_conn = before in ";?&\"'" and op == "=" and (not tail or tail[0] in ";&\"'")
            cli_flag = key.startswith("-") and op == "="
            if not (at_line or in_conn or cli_flag):
                continue
            if _looks_non_secret(val) or _CODE_VALUE.match(val) or not value_ok(val):
                continue
            spaced = bool(m.group("sp1") or m.group("sp2"))
            if val.isdigit() and spaced and not config_lang:
                continue  # `PASS = 20`: an enum constant in code
            if val.isidentifier() and not (config_lang or in_conn or cli_flag):
                # `password = pw` in code vs `password: hunter2` in YAML: without a config
                # language, accept only env style (KEY=value, no spaces) and `key: value`.
                if _TYPE_NAME.match(val):
                    continue
                env_style = op == "=" and not spaced and lead in _LINE_LEADS
                if not (env_style or op == ":"):
                    continue
            a, b = um.start("val"), um.end("val")
        out.append(text[last:a])
        out.append(placeholder)
        last = b
        count += 1
    if not count:
        return text, 0
    out.append(text[last:])
    return "".join(out), count


_LINE_LEADS = frozenset({"", "export", "set", "-", "setenv", "ENV", "ARG", "SET"})


# --- Known secret formats -> <KEY>.  One regex per family so that each has a literal prefix
# (sre then scans at memory speed; an alternation of prefixes would crawl).
_PEM = re.compile(
    r"-----BEGIN (?P<kind>(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----"
    r"[A-Za-z0-9+/=\s\"'\\,:\-]{40,20000}?-----END (?P=kind)-----",
)
_TOKEN_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p)
    for p in (
        # AWS access key id (AKIA) / temporary key (ASIA); Google API key (AIza...)
        r"A(?:[KS]IA[0-9A-Z]{16}(?![0-9A-Za-z])|Iza[0-9A-Za-z_\-]{35}(?![\w-]))",
        # GitHub classic / fine-grained tokens, GitLab personal access tokens
        r"g(?:h[pousr]_[A-Za-z0-9]{36,255}|ithub_pat_[A-Za-z0-9_]{60,255}|lpat-[A-Za-z0-9_\-]{20})\b",
        r"xox[abposr]-[A-Za-z0-9\-]{10,250}\b",  # Slack
        # Stripe sk_live_/rk_live_, OpenAI/Anthropic sk-...; the leading s/r is checked and
        # removed by _token_spans (a pattern must start with a literal to scan fast)
        r"k(?:_live_[0-9a-zA-Z]{24,99}|-(?:proj-|ant-)?[A-Za-z0-9_\-]{40,200})\b",
        r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b",  # SendGrid
        r"npm_[A-Za-z0-9]{36}\b",
        r"eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",  # JWT
    )
)


def _token_spans(text: str) -> list[tuple[int, int]]:
    """Spans of well-known token formats (one literal-prefixed regex per family)."""
    spans: list[tuple[int, int]] = []
    for pat in _TOKEN_PATTERNS:
        for m in pat.finditer(text):
            a, b = m.span()
            if text[a] == "k":  # needs "sk-" / "sk_live_" / "rk_live_" with a word boundary
                if a == 0 or text[a - 1] not in ("sr" if text[a + 1] == "_" else "s"):
                    continue
                a -= 1
                if a > 0 and (text[a - 1].isalnum() or text[a - 1] == "_"):
                    continue
            elif a > 0 and (text[a - 1].isalnum() or text[a - 1] == "_"):
                continue
            elif text.startswith("EXAMPLE", b - 7):
                continue  # AWS documentation keys (AKIAIOSFODNN7EXAMPLE)
            spans.append((a, b))
    spans.sort()
    return spans


_BEARER = re.compile(r"Bearer (?P<tok>[A-Za-z0-9._~+/\-]{20,}=*)")

# --- Connection strings scheme://user:pass@host -> <PASSWORD>
_CONN = re.compile(r"://[^\s:/@'\"`<>]+:(?P<pw>[^\s/@'\"`]{1,128})@(?=[\w.\-\[])")

# --- Emails: found from each "@" (fast literal scan), local part walked backwards.
_EMAIL_DOMAIN = re.compile(
    r"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+(?P<tld>[A-Za-z]{2,24}))"
    r"(?![\w\-]|\.[A-Za-z0-9])"
)
_EMAIL_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
# Generic TLDs accepted besides every 2-letter ccTLD; file extensions (x@2x.png, a@self.weight)
# are thereby rejected.  Reserved TLDs (.example/.test/.invalid/.localhost/.local) are not here.
_GTLDS = frozenset(
    """com org net edu gov mil int info biz name pro mobi aero coop museum jobs travel tel asia
    cat post app dev page io ai cloud online site tech store shop blog email xyz top club
    space website live life world today news media agency digital network systems solutions
    company group team studio design software services consulting academy center works tools
    codes engineering science technology social family global fun one ltd inc llc gmbh ventures
    capital partners finance money bank insure health care berlin london paris nyc tokyo wien
    amsterdam""".split()
)
_EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net", "example.edu")
_KOTLIN_LABELS = frozenset({"this", "super", "return", "break", "continue"})


def _email_at(text: str, at: int) -> tuple[int, int] | None:
    """Span of a redactable email around the "@" at offset ``at``, else None."""
    a = at
    lim = max(0, at - 64)
    while a > lim and text[a - 1] in _EMAIL_LOCAL_CHARS:
        a -= 1
    while a < at and text[a] in "._%+-":  # local part must start with an alphanumeric
        a += 1
    if a == at or (a > 0 and (text[a - 1] in _EMAIL_LOCAL_CHARS or text[a - 1] in "/\\")):
        return None  # no local part, or longer than 64 chars, or a path/URL segment
    m = _EMAIL_DOMAIN.match(text, at + 1)
    if not m:
        return None
    local, domain, tld = text[a:at], m.group("domain").lower(), m.group("tld").lower()
    if not (len(tld) == 2 or tld in _GTLDS):
        return None
    if domain in _EXAMPLE_DOMAINS or domain.endswith(tuple("." + d for d in _EXAMPLE_DOMAINS)):
        return None
    if local.lower() in _KOTLIN_LABELS:
        return None  # this@Outer.method
    if local == "git" and text.startswith(":", m.end()):
        return None  # git@github.com:owner/repo — an SSH remote, not a mailbox
    if a >= 3 and text[a - 3 : a] == "://":
        return None  # ftp://user@host: URL user name, not an address
    return a, m.end()


# --- IP addresses
_IPV4_LOCATOR = re.compile(r"\.\d{1,3}\.\d{1,3}\.\d")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\w)")
_IPV6_LOCATOR = re.compile(r"::|:[0-9A-Fa-f]{1,4}:")
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:]|\.\w)")
_HEX_COLON = frozenset("0123456789abcdefABCDEF:")
_VERSION_CONTEXT = re.compile(
    r"(?:version|\bver\b|release|revision|\brev\b|firmware|section|chapter|objectidentifier|asn1|ieee|\bstd\b|802\.\d|(?<![a-z])oid(?![a-z])|\u00a7|\brfc\b|\bv$|(?:==|>=|<=|~=|!=|\^|~|@)\s*$|[A-Za-z]/$)",
    re.IGNORECASE,
)
# Well-known public resolvers: infrastructure, not personal data.
_PUBLIC_DNS = frozenset(
    "8.8.8.8 8.8.4.4 1.1.1.1 1.0.0.1 9.9.9.9 149.112.112.112 208.67.222.222 208.67.220.220 "
    "2001:4860:4860::8888 2001:4860:4860::8844 2606:4700:4700::1111 2606:4700:4700::1001".split()
)
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")


def _ip_should_redact(text: str, s: str, start: int, v6: bool) -> bool:
    try:
        ip = ipaddress.ip_address(s)
    except ValueError:
        return False
    if not ip.is_global or ip.is_multicast or str(ip) in _PUBLIC_DNS:
        return False
    if v6:
        return ip in _GLOBAL_UNICAST_V6
    if s.endswith(".0"):
        return False  # network address (x.y.z.0; also "1.0.0.0"-style versions): not a host
    if all(int(o) < 32 for o in s.split(".")[1:]):
        # section / version numbering ("27.4.2.6", "7.1.4.34" is kept by context only):
        # a random host has all three low octets < 32 with probability (1/8)^3 = 0.2 %
        return False
    end = start + len(s)
    if start > 0 and text[start - 1] == "[" and text.startswith("]", end):
        return False  # [23.3.4.2] standard-section reference
    if text.startswith("/", end) and end + 1 < len(text) and text[end + 1].isalpha():
        if not (start >= 1 and text[start - 1] in "/@"):
            return False  # "2.6.35.5/include/..." path segment, not a URL host
    if start >= 2 and text[start - 1] == "-" and text[start - 2].isalnum():
        return False  # lib-1.2.3.4 style package versions
    line_start = text.rfind("\n", max(0, start - 48), start) + 1
    window = text[max(line_start, start - 40) : start]
    return _VERSION_CONTEXT.search(window) is None


def _ip_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    last_end = -1
    for loc in _IPV4_LOCATOR.finditer(text):
        start = loc.start()
        k = 0
        while start > 0 and k < 3 and text[start - 1].isdigit():
            start, k = start - 1, k + 1
        if start <= last_end:
            continue
        m = _IPV4.match(text, start)
        if m and _ip_should_redact(text, m.group(0), start, v6=False):
            spans.append(m.span())
            last_end = m.end()
    if ":" in text:
        last_end = -1
        for loc in _IPV6_LOCATOR.finditer(text):
            start = loc.start()
            lim = max(0, start - 40)
            while start > lim and text[start - 1] in _HEX_COLON:
                start -= 1
            while start < loc.start() and text[start] == ":":
                start += 1
            if start <= last_end:
                continue
            m = _IPV6.match(text, start)
            if m and _ip_should_redact(text, m.group(0), start, v6=True):
                spans.append(m.span())
                last_end = m.end()
        spans.sort()
    return spans


def _replace_spans(text: str, spans: list[tuple[int, int]], placeholder: str) -> str:
    out: list[str] = []
    last = 0
    for a, b in spans:
        if a < last:
            continue
        out.append(text[last:a])
        out.append(placeholder)
        last = b
    out.append(text[last:])
    return "".join(out)


def _sub_filtered(
    pattern: re.Pattern[str], text: str, group: str | int, keep: Callable[[str], bool], ph: str
) -> tuple[str, int]:
    """Replace ``group`` of every match by ``ph`` unless ``keep(group text)``."""
    spans = [m.span(group) for m in pattern.finditer(text) if not keep(m.group(group))]
    if not spans:
        return text, 0
    return _replace_spans(text, spans, ph), len(spans)


_PASSWORD_TAG = re.compile(
    r"<(?P<tag>[\w.:\-]*(?:[Pp]assword|PASSWORD|[Pp]asswd|[Pp]wd)[\w.:\-]*)>(?P<val>[^<>\s]{1,200})</(?P=tag)>"
)


def redact_pii(text: str, program_lang: str | None = None) -> tuple[str, dict[str, int]]:
    """Replace emails, public IPs, passwords, keys and (given ``program_lang``, whose comment
    syntax locates the comments) author names by placeholders; returns (text, counts).

    ``program_lang`` (optional, additive) only relaxes one heuristic: in config languages
    (ini, dotenv, yaml, properties, ...) a bare-word value ``password = hunter2`` is a secret,
    while in code it is usually a variable.  Order matters: multi-line PEM blocks and known
    token formats first, then connection strings (so ``user:pw@host`` is not taken for an
    email), passwords, generic secrets, emails, IPs.
    """
    counts = dict.fromkeys(PII_KINDS, 0)
    if not text:
        return text, counts
    config_lang = (program_lang or "").lower() in _CONFIG_LANGS
    # --- keys
    if "PRIVATE KEY" in text:
        text, n = _PEM.subn(KEY_PLACEHOLDER, text)
        counts["KEY"] += n
    spans = _token_spans(text)
    if spans:
        text = _replace_spans(text, spans, KEY_PLACEHOLDER)
        counts["KEY"] += len(spans)
    if "Bearer " in text:
        text, n = _sub_filtered(_BEARER, text, "tok", _not_high_entropy, KEY_PLACEHOLDER)
        counts["KEY"] += n
    # --- passwords
    if "://" in text and "@" in text:
        text, n = _sub_filtered(_CONN, text, "pw", _looks_non_secret, PASSWORD_PLACEHOLDER)
        counts["PASSWORD"] += n
    low = text.lower() if text.isascii() else None
    starts = _hits(text, low, ("pass", "pwd"))
    if starts:
        text, n = _redact_assignments(
            text, starts, _is_password_key, _always, PASSWORD_PLACEHOLDER, config_lang
        )
        counts["PASSWORD"] += n
        if "</" in text:
            text, n = _sub_filtered(_PASSWORD_TAG, text, "val", _looks_non_secret, PASSWORD_PLACEHOLDER)
            counts["PASSWORD"] += n
        if counts["PASSWORD"] and low is not None:
            low = text.lower()
    # --- generic secrets (key name hint + high-entropy value)
    starts = _hits(text, low, ("secret", "token", "key"))
    if starts:
        text, n = _redact_assignments(
            text, starts, _is_secret_key, _high_entropy, KEY_PLACEHOLDER, config_lang
        )
        counts["KEY"] += n
    # --- emails
    if "@" in text:
        spans = []
        at = text.find("@")
        while at >= 0:
            sp = _email_at(text, at)
            if sp:
                spans.append(sp)
            at = text.find("@", at + 1)
        if spans:
            text = _replace_spans(text, spans, EMAIL_PLACEHOLDER)
            counts["EMAIL"] += len(spans)
    # --- IPs
    spans = _ip_spans(text)
    if spans:
        text = _replace_spans(text, spans, IP_PLACEHOLDER)
        counts["IP_ADDRESS"] += len(spans)
    # --- author names in comments (last: ``Maintainer: X <<EMAIL>>`` already has its placeholder)
    if program_lang:
        text, counts["NAME"] = redact_names(text, program_lang)
    return text, counts


def _always(_: str) -> bool:
    return True


def _not_high_entropy(v: str) -> bool:
    return _looks_non_secret(v) or not _high_entropy(v.rstrip("=")[:512])


# =====================================================================================
# Author names in comments
# =====================================================================================

#: String-literal quotes per comment family (so a comment marker inside a string is not a
#: comment, and ``"Author: X"`` in code stays). Families where ``'`` is not a string quote
#: (Haskell primes, Ada attributes, Lisp quote, VB comments, MATLAB transpose) use ``"`` only.
_STRING_QUOTES: dict[CommentSyntax, str] = {
    _C: "\"'`", _CSS: "\"'", _PHP: "\"'", _HASH: "\"'", _HASH_C: '"', _PY: "\"'", _PWSH: "\"'",
    _JULIA: '"', _COFFEE: "\"'", _XML: "", _SQL: "\"'", _LUA: "\"'", _HASKELL: '"', _DASH: '"',
    _LISP: '"', _SEMI: '"', _INI: "", _PERCENT: "", _PROLOG: '"', _ML: '"', _PASCAL: "'",
    _FORTRAN: "\"'", _VB: '"',
}  # fmt: skip
_TRIPLE = (r'(?:"""(?:[^"\\]|\\.|"(?!""))*(?:"""|\Z)|'
           r"'''(?:[^'\\]|\\.|'(?!''))*(?:'''|\Z))")


@lru_cache(maxsize=64)
def _token_re(syntax: CommentSyntax) -> re.Pattern[str]:
    """One left-to-right tokenizer: Python docstring | triple-quoted string | block comment |
    line comment | string. ``finditer`` skips the code between tokens at C speed; a quoted
    string ends at its line's end unless closed (a stray ``'``, e.g. a Rust lifetime, cannot
    swallow the rest of the file)."""
    alts: list[str] = []
    if syntax.docstring:  # a triple-quoted string that starts its line = a docstring
        alts.append(rf"(?P<doc>^[ \t]*[rRuU]{{0,2}}{_TRIPLE})")
        alts.append(rf"(?P<str3>{_TRIPLE})")  # a prefix letter (r, b, f) is just code before it
    for opener, closer in sorted(syntax.block, key=lambda oc: -len(oc[0])):
        alts.append(f"(?P<b{len(alts)}>{re.escape(opener)}.*?(?:{re.escape(closer)}|\\Z))")
    for marker in sorted(syntax.line, key=len, reverse=True):
        alts.append(f"(?P<l{len(alts)}>{re.escape(marker)}[^\\n]*)")
    for q in _STRING_QUOTES.get(syntax, "\"'"):
        eq = re.escape(q)
        body = f"(?:[^{eq}\\\\]|\\\\.)*" if q == "`" else f"(?:[^{eq}\\\\\\n]|\\\\.)*"
        alts.append(f"(?P<s{len(alts)}>{eq}{body}{eq}?)")
    return re.compile("|".join(alts), re.DOTALL | re.MULTILINE)


def comment_spans(text: str, program_lang: str) -> list[tuple[int, int]]:
    """``[start, end)`` spans of the comments (and, Python family, docstrings) of ``text``;
    empty for an unknown language. Strings are skipped, so markers inside them do not count."""
    syntax = comment_syntax(program_lang)
    if syntax is None:
        return []
    spans: list[tuple[int, int]] = []
    for m in _token_re(syntax).finditer(text):
        kind = m.lastgroup or "s"
        if kind.startswith("s"):
            continue  # a string literal (``s<i>``, ``str3``): code
        if kind != "doc" and any(m.group().startswith(nc) for nc in syntax.not_comment):
            continue
        spans.append(m.span())
    return spans


#: Words that end a strict name (boilerplate after a copyright holder, an article).
_NOT_NAME = r"(?:All|Rights|Reserved|The|And|By|See)(?![\p{L}\p{N}_])"
#: A capitalised name word (``Jane``, ``O'Neil``, ``McDonald``, ``Jean-Luc``) or an initial (``J.``);
#: all-caps words are not (``COPYRIGHT HOLDERS BE LIABLE``, ``IBM``).
_CAP_WORD = rf"(?!{_NOT_NAME})(?:\p{{Lu}}\.|\p{{Lu}}[\p{{Ll}}'\u2019][\p{{L}}\p{{M}}'\u2019\-]*)"
_PARTICLE = r"(?:van|von|der|den|de|del|della|da|di|du|la|le|bin|ibn|al|el|dos|das|do|ter|zu)"
#: Strict name (copyright lines, "written by"): two to five capitalised words, particles between.
_STRICT_NAME = rf"{_CAP_WORD}(?:[ \t]+(?:{_PARTICLE}[ \t]+)*{_CAP_WORD}){{1,4}}(?![\p{{L}}\p{{N}}_])"
#: Words that end a lenient name and are never its first word.
_STOP = (r"(?i:on|at|in|for|since|from|see|the|with|based|using|via|version|date|created|modified|"
         r"updated|todo|tbd|unknown|none|n/a|anonymous|various|contributors|authors|team|et|al|and|or|"
         r"is|was|of|to|a|an|this|that|by|here|name|your|my|january|february|march|april|may|june|july|"
         r"august|september|october|november|december)")
_LOOSE_WORD = (rf"(?!{_STOP}(?![\p{{L}}\p{{N}}_.]))"
               rf"(?:\p{{L}}\.(?=[ \t])|\p{{L}}[\p{{L}}\p{{M}}\p{{N}}'\u2019._\-]*(?<![.\-_]))")
#: Lenient name (after ``Author:``/``@author``/``Maintainer:``): one to five words, lowercase
#: user names included, ending before ``<``, ``(``, ``,``, a digit or a stop word.
_LOOSE_NAME = rf"{_LOOSE_WORD}(?:[ \t]+{_LOOSE_WORD}){{0,4}}(?![\p{{L}}\p{{N}}_@\-]|\.[\p{{L}}\p{{N}}])"
_LIST_SEP = r"(?:[ \t]*[,;&][ \t]*|[ \t]+(?i:and)[ \t]+)"
#: Organisation words: a strict match containing one is not a person (``Google LLC``,
#: ``Free Software Foundation``) and stays.
_ORG_WORDS = frozenset(
    "inc llc ltd corp corporation co company gmbh ag s.a sa bv b.v plc foundation authors contributors "
    "project team group university institute software technologies technology systems labs lab "
    "laboratory laboratories limited association organization organisation consortium community "
    "developers maintainers".split()
)
_LOOSE_KEYWORD = (r"(?i:@(?:author|maintainer)s?|\b(?:module|section|code)?authors?::?|\bauthor\(s\)[ \t]*:"
                  r"|\bmaintainers?[ \t]*:|\bmaintainer\(s\)[ \t]*:)[ \t]*:?[ \t]*"
                  rf"(?P<names>{_LOOSE_NAME}(?:{_LIST_SEP}{_LOOSE_NAME})*)")
#: the keyword must come first on its comment line (after comment punctuation): prose such as
#: ``implements Author: lookups`` is not an attribution
_LINE_START = r"(?m:^)[ \t]*[/*#;%!'\"<{\[(|:.=\-]*[ \t]*"
_BY_RULE = regex.compile(
    r"(?i:\b(?:written|created|contributed|maintained|authored|developed|modified)[ \t]+by)[ \t]+"
    rf"(?P<names>{_STRICT_NAME}(?:{_LIST_SEP}{_STRICT_NAME})*)")
_COPYRIGHT_RULE = regex.compile(
    r"(?:(?i:copyright)(?:[ \t]*(?:\((?i:c)\)|\u00a9|&copy;))?|\u00a9|\((?i:c)\)(?=[ \t]*\d{4}))"
    r"[ \t]*(?:\d{4}(?:[ \t]*[-\u2013,][ \t]*\d{4})*,?[ \t]+)?(?:(?i:by)[ \t]+)?"
    rf"(?P<names>{_STRICT_NAME}(?:{_LIST_SEP}{_STRICT_NAME})*)")
_NAME_RULES: list[tuple[regex.Pattern[str], str]] = [
    (regex.compile(_LINE_START + _LOOSE_KEYWORD), "loose"),
    (_BY_RULE, "strict"),
    (_COPYRIGHT_RULE, "strict"),
]
#: Pre-filter: a lower-case literal -> the rule (unanchored) that must match on its line before
#: the file is tokenized; most files have no attribution line and cost a few ``str.find``.
_NAME_LITERALS: tuple[tuple[str, regex.Pattern[str]], ...] = (
    ("author", regex.compile(_LOOSE_KEYWORD)), ("maintainer", regex.compile(_LOOSE_KEYWORD)),
    (" by", _BY_RULE), ("copyright", _COPYRIGHT_RULE), ("\u00a9", _COPYRIGHT_RULE), ("(c)", _COPYRIGHT_RULE),
)
#: the words before `` by`` that make it an attribution (checked with ``endswith`` before the rule)
_BY_VERBS = ("written", "created", "contributed", "maintained", "authored", "developed", "modified")
_NAME_LITERAL_RE = re.compile("|".join(re.escape(lit) for lit, _ in _NAME_LITERALS), re.IGNORECASE)
#: one name of a matched list, starting at a word start (not inside ``and``/``McDonald``)
_WORD_START = r"(?<![\p{L}\p{M}\p{N}_'\u2019.\-])"
_ONE_NAME = {"loose": regex.compile(_WORD_START + _LOOSE_NAME), "strict": regex.compile(_WORD_START + _STRICT_NAME)}


_ORG_SUFFIX = regex.compile(r"[ \t]*,?[ \t]*(?i:inc|llc|ltd|corp|corporation|gmbh|co|company|plc|ag|s\.a|b\.v)\b")


def _is_org(name: str, following: str = "") -> bool:
    """An organisation word in the name, or a legal suffix right after it (``Meta Platforms, Inc.``)."""
    return any(w.lower().rstrip(".,") in _ORG_WORDS for w in name.split()) or bool(_ORG_SUFFIX.match(following))


def _name_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans (in ``text``) of the names each rule finds in the comment ``text[start:end]``."""
    seg = text[start:end]
    spans: list[tuple[int, int]] = []
    for rule, mode in _NAME_RULES:
        for m in rule.finditer(seg):
            a, b = m.span("names")
            for n in _ONE_NAME[mode].finditer(seg, a, b):
                if mode == "strict" and _is_org(n.group(), seg[n.end():n.end() + 16]):
                    continue
                spans.append((start + n.start(), start + n.end()))
    return spans


def _line_at(text: str, pos: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return start, len(text) if end < 0 else end


def _may_have_names(text: str) -> bool:
    """Some line holds a keyword followed by a name (comment or not): only then is the file
    tokenized. ``str.find`` on the lower-cased text, each rule tried from its keyword (at most
    7 characters before: ``section``author) to the end of that line; one case-insensitive regex
    instead when lower-casing changes the length (a few non-ASCII characters do)."""
    low = text.lower()
    if len(low) == len(text):
        for lit, rule in _NAME_LITERALS:
            i = low.find(lit)
            while i >= 0:
                a, b = _line_at(text, i)
                if (rule is not _BY_RULE or low.endswith(_BY_VERBS, a, i)) and rule.search(text, max(a, i - 14), b):
                    return True
                i = low.find(lit, i + 1)
        return False
    for m in _NAME_LITERAL_RE.finditer(text):
        a, b = _line_at(text, m.start())
        if any(rule.search(text, a, b) for _, rule in _NAME_LITERALS):
            return True
    return False


def redact_names(text: str, program_lang: str) -> tuple[str, int]:
    """Replace author names in comments/docstrings by ``<NAME>`` (keyword kept); returns
    (text, number of names). A name in code (``author = get_author()``, a string literal) stays;
    an unknown language (no comment syntax) is never touched."""
    if not text or not _may_have_names(text):
        return text, 0
    spans: list[tuple[int, int]] = []
    for a, b in comment_spans(text, program_lang):
        spans.extend(_name_spans(text, a, b))
    if not spans:
        return text, 0
    merged: list[tuple[int, int]] = []
    for a, b in sorted(set(spans)):  # two rules on one name (``Copyright ... by X``): replace once
        if merged and a < merged[-1][1]:
            continue
        merged.append((a, b))
    return _replace_spans(text, merged, NAME_PLACEHOLDER), len(merged)


# =====================================================================================
# Document-level entry point
# =====================================================================================


def transform_document(
    text: str, program_lang: str, *, remove_copyright: bool = True, redact: bool = True
) -> TransformResult:
    """Copyright removal first (so header emails are not counted as PII), then PII redaction.

    Either part can be switched off (e.g. to reproduce the reference filter on untouched text).
    """
    header = find_copyright_header(text, program_lang) if remove_copyright else None
    removed_block: str | None = None
    only = False
    work = text
    if header is not None:
        if header.only_comments:
            only = True
        else:
            work, removed_block = header.new_text, header.block
    removed_chars = len(text) - len(work)
    redacted, counts = redact_pii(work, program_lang) if redact else (work, {})
    return TransformResult(
        text=redacted,
        copyright_removed_chars=removed_chars,
        copyright_block=removed_block,
        pii_counts=counts,
        changed=redacted != text,
        copyright_only=only,
    )
