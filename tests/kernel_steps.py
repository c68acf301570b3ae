"""A tiny step registry for kernel fault tests: a step whose worker dies on a marker row.

Why a separate registry: the kernel looks steps up by module (``UnitTask.spec_module``), so a test
can run real units on a real process pool with a step that kills its own worker process.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

import pyarrow as pa

from opencoder_assets.core.kernel import StepOutput, StepSpec, decisions_for
from opencoder_assets.core.schema import CODE_SCHEMA


@dataclass(frozen=True)
class DieParams:
    marker: str = "__die__"


def die_on_marker(batch: pa.Table, params: DieParams) -> StepOutput:
    if any(params.marker in (c or "") for c in batch["content"].to_pylist()):
        os.kill(os.getpid(), signal.SIGKILL)
    n = batch.num_rows
    return StepOutput(batch, decisions_for(batch, [True] * n, [None] * n))


def lose_a_row(batch: pa.Table, params: DieParams) -> StepOutput:
    """A buggy step: keeps every row but drops one decision."""
    n = batch.num_rows
    return StepOutput(batch, decisions_for(batch.slice(1), [True] * (n - 1), [None] * (n - 1)))


STEP_BY_NAME = {
    "die": StepSpec("die", "x", "dies", CODE_SCHEMA, in_schema=CODE_SCHEMA, map_fn="tests.kernel_steps:die_on_marker"),
    "lose": StepSpec("lose", "x", "loses", CODE_SCHEMA, in_schema=CODE_SCHEMA, map_fn="tests.kernel_steps:lose_a_row"),
}
