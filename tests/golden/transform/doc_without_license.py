"""Utilities for parsing widget manifests.

The manifest format is a tiny INI dialect; see ``parse`` for details.
"""

# Parsing is line based; continuation lines start with whitespace.

import re

_KEY = re.compile(r"^(\w+)\s*=\s*(.*)$")


def parse(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        m = _KEY.match(line)
        if m:
            out[m.group(1)] = m.group(2)
    return out
