"""``did you mean``: the closest known name to a misspelt one (stdlib difflib).

Why a module of its own: ingestion, the threshold loader and the up-front validation all name
the closest known key in their errors, and none of them may import the others.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The known name most similar to ``name`` (case-insensitive), or None if nothing is close."""
    options = {str(c).lower(): str(c) for c in choices}
    match = difflib.get_close_matches(str(name).lower(), list(options), n=1, cutoff=cutoff)
    return options[match[0]] if match else None


def did_you_mean(name: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """``" (did you mean 'x'?)"`` or ``""``: ready to append to an error message."""
    match = closest(name, choices, cutoff)
    return f" (did you mean {match!r}?)" if match is not None and match != name else ""
