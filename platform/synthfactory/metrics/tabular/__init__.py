"""Tabular metrics: quality by SDMetrics' definitions (``quality``), its shard summaries
for large tables (``sharded``), the report that puts quality, privacy, utility and bias
together (``report``), the model-based scores (``model_scores``), which metric applies to
which column (``sdtypes``), the holdout split (``holdout``), bias (``bias``) and the
multi-table reports (``relational``, ``sequential``)."""
