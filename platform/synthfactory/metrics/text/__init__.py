"""Text metrics: the measures (patterns, distinct-n, n-gram overlap, near duplicates:
``measures``), their shard summaries (``sharded``) and the one-table report
(``quality``), demographic mentions (``bias``) and a column pipeline's per-column,
judge and validator metrics (``pipeline``)."""
