"""One metric evaluator per modality behind one interface (``base.Evaluator``), registered
by modality in ``EVALUATORS``. To add a metric, see the README's development section."""

from synthfactory.metrics.evaluators.base import (
    EVALUATORS,
    Evaluator,
    ShardSummary,
    evaluator_class,
    unknown_gates,
)

EVALUATORS.add("tabular", "synthfactory.metrics.evaluators.tabular:TabularEvaluator")
EVALUATORS.add("text", "synthfactory.metrics.evaluators.text:TextEvaluator")
EVALUATORS.add("image", "synthfactory.metrics.evaluators.image:ImageEvaluator")

__all__ = ["EVALUATORS", "Evaluator", "ShardSummary", "evaluator_class", "unknown_gates"]
