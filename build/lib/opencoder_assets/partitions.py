"""Language partitions shared by every code asset.

The keys come from ``core.languages.PARTITION_LANGUAGES``: the eight languages with
language-specific rules, other major languages with their own partition, and ``other`` for every
remaining known (or unknown) extension, so each file lands in exactly one partition.
"""

from __future__ import annotations

from dagster import StaticPartitionsDefinition

from opencoder_assets.core.languages import PARTITION_LANGUAGES

language_partitions = StaticPartitionsDefinition(list(PARTITION_LANGUAGES))
