#!/usr/bin/env python3
"""Generate ``opencoder_assets/data/languages.json`` from GitHub Linguist's ``languages.yml``.

Data attribution: the language/extension/filename data comes from GitHub Linguist
(https://github.com/github-linguist/linguist, ``lib/linguist/languages.yml``,
Copyright (c) 2017 GitHub, Inc., MIT License).  The generated JSON records the exact
source it was built from in its ``source`` field.

Usage::

    python scripts/gen_languages.py PATH/TO/languages.yml \
        [--source-ref "github-linguist/linguist@v9.5.0"] [-o opencoder_assets/data/languages.json]

The input may be the upstream YAML file or a JSON dump of the same mapping (JSON is valid
YAML), e.g. the ``linguist-languages`` npm package's data dumped with node.  Only the
``type``, ``group``, ``extensions`` and ``filenames`` keys of each entry are used.

What the generator does (the recipe-specific part, see opencoder_recipe.md §2.2 / App. E):

* names are lowercased Linguist names, with renames so that the reference's names match
  (``C#`` -> ``csharp``, ``C++`` -> ``cpp``, ``Rocq Prover`` -> ``coq``, ...);
* ``doc_type``: programming -> code, data -> data, prose -> text, markup -> decided per
  language; wherever a language appears in the reference's Appendix E grouping that grouping
  wins (``DOC_TYPE_OVERRIDES``);
* extension / filename collisions are resolved by ``EXTENSION_OVERRIDES`` (with a reason
  each) and, for the rest, by a deterministic preference order (see ``_rank``).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

DEFAULT_SOURCE = (
    "GitHub Linguist lib/linguist/languages.yml, release v9.5.0 "
    "(github-linguist/linguist, MIT License, Copyright (c) 2017 GitHub, Inc.), "
    "taken via the npm package linguist-languages@9.5.0 (MIT)"
)

#: Linguist name (lowercased) -> name used by the recipe / this project.
RENAMES: dict[str, str] = {
    "c#": "csharp",
    "c++": "cpp",
    "rocq prover": "coq",  # renamed upstream in 2025; the reference (and Appendix E) says coq
    "wolfram language": "mathematica",  # ditto: reference name is mathematica
    "salt": "saltstack",  # reference name
    "robots exclusion rules": "robots.txt",  # reference name (on the exclusion list)
}

#: The reference exclusion list (§2.2), lowercased.  The reference compares case-sensitively
#: and lists "Checksums" / "Gerber Image" capitalised, so those two never match there; we
#: compare lowercased names, i.e. they *are* excluded here (deliberate bug fix).
EXCLUDED: list[str] = sorted(
    {
        "adblock filter list",
        "pic",
        "postscript",
        "purebasic",
        "roff manpage",
        "unity3d asset",
        "wavefront object",
        "pickle",
        "stl",
        "raw token data",
        "x pixmap",
        "2-dimensional array",
        "ags script",
        "bicep",
        "checksums",
        "collada",
        "csv",
        "directx 3d file",
        "e-mail",
        "g-code",
        "gerber image",
        "git revision list",
        "gnuplot",
        "irc log",
        "jupyter notebook",
        "kicad layout",
        "kicad legacy layout",
        "kicad schematic",
        "lasso",
        "linux kernel module",
        "max",
        "microsoft developer studio project",
        "microsoft visual studio solution",
        "pov-ray sdl",
        "public key",
        "pure data",
        "robots.txt",
        "subrip text",
        "svg",
        "tsv",
        "webvtt",
    }
)

TYPE_TO_DOC: dict[str, str] = {"programming": "code", "data": "data", "prose": "text"}

_E_CODE_MARKUP = (
    "api blueprint, astro, bikeshed, blade, closure templates, d2, diff, edge, ejs, genero per, "
    "haml, handlebars, html, html+ecr, html+eex, html+erb, html+php, html+razor, jinja, kit, "
    "kvlang, latte, less, liquid, marko, mask, mermaid, mtml, mustache, nunjucks, pug, raml, "
    "riot, runoff, sass, scaml, slim, slint, sql, stylus, sugarss, svelte, tea, templ, "
    "terraform template, twig, velocity template language, vim snippet, vue, yasnippet"
)
#: doc_type where it differs from the plain Linguist type mapping.  The first three groups
#: follow the reference's Appendix E; the last group are markup languages Appendix E does not
#: reach, decided here (templates/UI DSLs -> code, prose-like markup -> text).
DOC_TYPE_OVERRIDES: dict[str, str] = {
    **{n: "code" for n in _E_CODE_MARKUP.split(", ")},
    **{n: "data" for n in ("bibtex", "cartocss", "css", "linker script", "postcss", "scss")},
    **{n: "text" for n in ("mdx", "rich text format", "roff", "srecode template", "tex")},
    # not in Appendix E (our decision)
    "antlers": "code",
    "blueprint": "code",
    "ecmarkup": "code",
    "go template": "code",
    "stringtemplate": "code",
    "vento": "code",
    "jupyter notebook": "code",
    "postscript": "code",
    "bru": "data",
    "bbcode": "text",
    "cooklang": "text",
    "mdsvex": "text",
    "pic": "text",
    "roff manpage": "text",
}

#: Deliberate resolutions of ambiguous extensions (keys with upper-case letters are matched
#: case-sensitively by the library, all others case-insensitively).
EXTENSION_OVERRIDES: dict[str, tuple[str, str]] = {
    ".h": (
        "c",
        "as the reference: the recipe's C rules treat .h as C (is_header); C++ and "
        "Objective-C headers also use .h but cannot be told apart by name",
    ),
    ".H": ("cpp", "as the reference: upper-case .H is a C++ header convention"),
    ".C": ("cpp", "as the reference: upper-case .C is a C++ source convention"),
    ".cp": ("cpp", "C++ far more common than Component Pascal"),
    ".hh": ("cpp", "C++ header far more common than Hack"),
    ".re": ("reason", "Reason source; re2c C++ inputs are rarer"),
    ".R": ("r", "fixes the reference, which leaves upper-case .R unmapped"),
    ".r": ("r", "R is far more common on GitHub than Rebol or Rez"),
    ".m": (
        "objective-c",
        "Objective-C is the most common .m language on GitHub (MATLAB is "
        "second); the reference's limbo is a dict-order artefact",
    ),
    ".mm": ("objective-c++", "Objective-C++ source; XML .mm (FreeMind) is rare"),
    ".v": (
        "verilog",
        "Verilog .v files far outnumber Coq/Rocq and V files on GitHub; the "
        "reference picks coq by dict order",
    ),
    ".s": ("assembly", "generic assembly; the reference picks motorola 68k assembly by dict order"),
    ".S": ("assembly", "preprocessed (GNU) assembly"),
    ".asm": ("assembly", "generic assembly rather than the 68k dialect"),
    ".inc": (
        "php",
        "legacy PHP include files are the largest .inc population among the 12 "
        "candidates (assembly, C++, pascal, sql, pawn, ... also use it)",
    ),
    ".pl": ("perl", "Perl far more common than Prolog/Raku"),
    ".pm": ("perl", "Perl module; X PixMap .pm is rare (and excluded)"),
    ".t": ("perl", "Perl test files (Test::More); Raku/Terra/Turing are rarer"),
    ".cfg": ("ini", "generic INI-style config; the reference picks haproxy by dict order"),
    ".fs": ("f#", "F# source; GLSL fragment shaders/Forth also use .fs but less on GitHub"),
    ".ts": ("typescript", "TypeScript, not Qt Linguist XML translation files"),
    ".tsx": ("tsx", "kept as its own name (Appendix E has tsx); partitioned with typescript"),
    ".md": ("markdown", "Markdown, not GCC machine description"),
    ".sql": ("sql", "generic SQL rather than a vendor dialect"),
    ".cshtml": ("csharp", "as the reference (Razor views are checked with the C# rules)"),
    ".jsx": ("javascript", "as the reference"),
    ".mjs": ("javascript", "as the reference"),
    ".cjs": ("javascript", "as the reference"),
    ".es": ("javascript", "ES module files; Erlang uses .erl"),
    ".ipynb": (
        "jupyter notebook",
        "as the reference: notebooks are excluded (processed separately in the paper)",
    ),
    ".html": ("html", "HTML, not the Ecmarkup dialect"),
    ".json": ("json", "plain JSON, not the OpenAPI sub-types"),
    ".yaml": ("yaml", "plain YAML, not MiniYAML/OpenAPI sub-types"),
    ".yml": ("yaml", "plain YAML, not MiniYAML/OpenAPI sub-types"),
    ".php": ("php", "PHP, not Hack"),
    ".rs": ("rust", "Rust, not RenderScript/XML"),
    ".cs": ("csharp", "C#, not Smalltalk"),
    ".cake": ("csharp", "Cake build scripts are C#"),
    ".txt": ("text", "plain text (not Adblock lists or Vim help)"),
    ".asc": ("asciidoc", "AsciiDoc; armored public keys / AGS scripts are excluded anyway"),
    ".cl": ("opencl", "OpenCL kernels are the most common .cl files in code repositories"),
    ".d": ("d", "D source; Makefile .d dependency files are generated output"),
    ".pp": ("puppet", "Puppet manifests outnumber Pascal .pp files on GitHub"),
    ".pro": ("qmake", "Qt project files are the dominant .pro population"),
    ".properties": ("java properties", "Java .properties files"),
    ".cls": ("apex", "Salesforce Apex classes dominate; TeX/VBA classes also use .cls"),
    ".bas": ("visual basic 6.0", "classic VB modules; the generic BASIC dialects are rarer"),
    ".frm": ("visual basic 6.0", "VB6 forms"),
    ".f": ("fortran", "Fortran fixed-form source"),
    ".for": ("fortran", "Fortran fixed-form source"),
    ".fpp": ("fortran", "preprocessed Fortran"),
    ".ex": ("elixir", "Elixir, not Euphoria"),
    ".ml": ("ocaml", "OCaml, not Standard ML"),
    ".l": ("lex", "lex/flex scanners"),
    ".y": ("yacc", "yacc/bison grammars"),
    ".yy": ("yacc", "bison C++ grammars; GameMaker JSON .yy is rarer"),
    ".lisp": ("common lisp", "Common Lisp, not NewLisp"),
    ".lsp": ("common lisp", "Common Lisp, not NewLisp"),
    ".sc": ("scala", "Scala worksheets / ammonite scripts"),
    ".scd": ("supercollider", "SuperCollider documents"),
    ".scm": ("scheme", "Scheme, not tree-sitter queries"),
    ".sls": ("saltstack", "Salt states"),
    ".sol": ("solidity", "Solidity contracts, not Gerber drill files"),
    ".spec": ("rpm spec", "RPM spec files"),
    ".st": ("smalltalk", "Smalltalk"),
    ".tpl": ("smarty", "Smarty templates"),
    ".gd": ("gdscript", "Godot scripts far outnumber GAP files"),
    ".lean": ("lean", "reference name (lean 4 files also use .lean)"),
    ".nu": ("nushell", "Nushell scripts are now the common .nu files"),
    ".jq": ("jq", "jq programs"),
    ".pkl": ("pickle", "binary pickles (excluded) are the common .pkl files"),
    ".vcf": ("vcard", "vCard, not variant-call TSV"),
    ".plist": ("xml property list", "XML plists are the common form"),
    ".cairo": ("cairo", "current Cairo"),
    ".mojo": ("mojo", "Mojo source"),
    ".typ": ("typst", "Typst source"),
    ".sw": ("sway", "Sway source"),
    ".res": ("rescript", "ReScript source"),
    ".workflow": ("hcl", "GitHub Actions (HCL) workflows"),
    ".gs": ("javascript", "Google Apps Script"),
    ".frag": ("glsl", "GLSL fragment shaders"),
    ".shader": ("shaderlab", "Unity shaders"),
    ".trigger": ("apex", "Salesforce triggers"),
    ".cgi": ("perl", "CGI scripts are mostly Perl"),
    ".fcgi": ("perl", "FastCGI scripts are mostly Perl"),
    ".ddl": ("sql", "generic SQL"),
    ".prc": ("sql", "generic SQL"),
    ".rpy": ("ren'py", "Ren'Py scripts"),
    ".b": ("brainfuck", "Brainfuck (Limbo and B are rarer)"),
    ".e": ("eiffel", "Eiffel"),
    ".as": ("actionscript", "ActionScript"),
    ".mod": ("modula-2", "Modula-2 (AMPL/NMODL/XML also; kernel .mod files are excluded binaries)"),
    ".x": ("rpc", "Sun RPC definitions"),
    ".srt": ("subrip text", "subtitle files (excluded) dwarf SRecode templates"),
    ".uc": ("unrealscript", "UnrealScript classes outnumber ucode files"),
    ".star": ("starlark", "Bazel/Starlark files outnumber STAR data files"),
}

#: Filename collisions.
FILENAME_OVERRIDES: dict[str, tuple[str, str]] = {
    "HOSTS": ("hosts file", "the hosts file format"),
    "hosts": ("hosts file", "the hosts file format"),
    ".releaserc": ("json", "semantic-release config, JSON by default"),
    ".eslintrc": ("json with comments", "ESLint legacy config, JSONC by default"),
}

_TYPE_RANK = {"programming": 0, "markup": 1, "data": 2, "prose": 3}


def normalise(name: str) -> str:
    """Lowercased Linguist name with the recipe's renames applied."""
    low = name.lower()
    return RENAMES.get(low, low)


def doc_type_for(name: str, linguist_type: str | None) -> str:
    """``code``/``data``/``text`` for a (normalised) language name."""
    if name in DOC_TYPE_OVERRIDES:
        return DOC_TYPE_OVERRIDES[name]
    return TYPE_TO_DOC.get(linguist_type or "", "code")


def _rank(key: str, name: str, entry: dict[str, Any], field: str) -> tuple[Any, ...]:
    """Preference order for an unresolved collision (smaller is better)."""
    values = [v.lower() for v in entry.get(field) or []]
    primary = 0 if values and values[0] == key.lower() else 1
    return (
        name in EXCLUDED,  # prefer a kept language
        primary,  # the extension is this language's primary one
        entry.get("group") is not None,  # parent languages before sub-dialects
        _TYPE_RANK.get(entry.get("type") or "", 4),
        name,
    )


def build(raw: dict[str, dict[str, Any]], source: str) -> dict[str, Any]:
    """Turn the parsed Linguist mapping into the compact project table."""
    languages: dict[str, dict[str, Any]] = {}
    entries: dict[str, dict[str, Any]] = {}
    for lname, entry in raw.items():
        name = normalise(lname)
        entries[name] = entry
        languages[name] = {
            "doc_type": doc_type_for(name, entry.get("type")),
            "extensions": sorted(set(entry.get("extensions") or [])),
            "filenames": sorted(set(entry.get("filenames") or [])),
        }
    # Recipe extras not (or no longer) listed by Linguist for the reference's choice.
    for ext, (lang, _) in EXTENSION_OVERRIDES.items():
        if lang not in languages:
            raise SystemExit(f"override {ext} -> unknown language {lang!r}")

    overrides: dict[str, dict[str, str]] = {
        ext: {"language": lang, "reason": why} for ext, (lang, why) in EXTENSION_OVERRIDES.items()
    }
    # Record the automatic resolution of every remaining collision, so the library needs
    # no tie-breaking logic and the decision is visible in the data.
    by_ext: dict[str, list[str]] = defaultdict(list)
    for name, info in languages.items():
        for ext in info["extensions"]:
            by_ext[ext.lower()].append(name)
    overridden = {e.lower() for e in EXTENSION_OVERRIDES}
    for ext, names in sorted(by_ext.items()):
        if len(names) > 1 and ext not in overridden:
            best = min(names, key=lambda n: _rank(ext, n, entries[n], "extensions"))
            others = ", ".join(sorted(n for n in names if n != best))
            overrides[ext] = {"language": best, "reason": f"automatic (primary/parent rule) over {others}"}

    filename_overrides = {
        f: {"language": lang, "reason": why} for f, (lang, why) in FILENAME_OVERRIDES.items()
    }
    by_fn: dict[str, list[str]] = defaultdict(list)
    for name, info in languages.items():
        for fn in info["filenames"]:
            by_fn[fn].append(name)
    for fn, names in sorted(by_fn.items()):
        if len(names) > 1 and fn not in filename_overrides:
            best = min(names, key=lambda n: _rank(fn, n, entries[n], "filenames"))
            filename_overrides[fn] = {"language": best, "reason": "automatic (primary/parent rule)"}

    unknown_excl = [n for n in EXCLUDED if n not in languages]
    if unknown_excl:
        raise SystemExit(f"excluded names not in the source: {unknown_excl}")
    return {
        "source": source,
        "languages": dict(sorted(languages.items())),
        "extension_overrides": dict(sorted(overrides.items())),
        "filename_overrides": dict(sorted(filename_overrides.items())),
        "excluded": EXCLUDED,
    }


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("languages_yml", type=Path, help="path to Linguist languages.yml (or JSON dump)")
    ap.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "opencoder_assets/data/languages.json",
    )
    ap.add_argument("--source", default=DEFAULT_SOURCE, help="attribution string stored in the JSON")
    args = ap.parse_args(argv)
    raw = yaml.safe_load(args.languages_yml.read_text(encoding="utf-8"))
    table = build(raw, args.source)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    n_ext = len({e.lower() for v in table["languages"].values() for e in v["extensions"]})
    n_fn = len({f for v in table["languages"].values() for f in v["filenames"]})
    print(f"wrote {args.output}: {len(table['languages'])} languages, {n_ext} extensions, {n_fn} filenames")


if __name__ == "__main__":
    main()
