"""Tabular metrics that only the tabular evaluator and its siblings use: the report that
puts quality, privacy, utility and bias together (``report``), the model-based scores
(``model_scores``) and which metric applies to which column (``sdtypes``)."""
