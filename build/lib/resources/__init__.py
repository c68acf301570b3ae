"""Dagster resources: corpus storage, the DuckDB metrics store, input sources and settings."""

from resources.metrics import MetricsStore
from resources.settings import CodeSources, PipelineSettings
from resources.storage import CorpusStorage, PartitionWriter

__all__ = ["CodeSources", "CorpusStorage", "MetricsStore", "PartitionWriter", "PipelineSettings"]
