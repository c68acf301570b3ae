"""opencoder-assets: the OpenCoder RefineCode data-curation recipe as a Dagster asset graph."""

import warnings

# Partitioned asset checks are a Dagster preview feature; we rely on them knowingly.
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")
