"""The text metrics (``metrics.evaluators.text``): row-level ones over every text
(``text.quality``, ``text.sharded``), the model-based ones on a sample
(``synthfactory_workers.metrics``) and group mentions (``text.bias``). A pipeline's judge
and validator columns add names of their own (``metrics.text.pipeline.metric_names``). The card
shows them in this order."""

from __future__ import annotations

from synthfactory.metrics.catalogue import Metric, hidden, shown

REFERENCE = "jobs with a reference (metrics.reference, or the prompt source)"
PERPLEXITY = "jobs with metrics.perplexity_model"
COUNTERFACTUAL = "llm jobs with metrics.groups and a prompt column"
GROUPS = "jobs with metrics.groups"
COLUMNS = "pipelines with more than one llm_text column"
JSON = "jobs that ask for JSON"

METRICS: tuple[Metric, ...] = (
    hidden("quality.rows", "texts scored"),
    hidden("quality.rows_sampled", "texts in the seeded sample"),
    shown("quality.chars_mean", "mean characters per text"),
    hidden("quality.chars_p50", "median characters per text"),
    shown("quality.words_mean", "mean words per text"),
    shown("quality.completion_tokens_mean", "mean generated tokens per text"),
    shown("quality.distinct_1", "unique words over all words (higher = more varied vocabulary)"),
    shown("quality.distinct_2", "unique word pairs over all word pairs"),
    shown("quality.exact_duplicate_rate", "share of texts identical to an earlier one"),
    shown(
        "quality.near_duplicate_rate",
        "share of sampled texts with MinHash Jaccard >= 0.7 to another",
    ),
    shown(
        "quality.self_similarity",
        "mean MinHash Jaccard of random text pairs (lower = more diverse)",
    ),
    shown("quality.refusal_rate", "share of texts that refuse ('I can't help with that')"),
    shown("quality.json_valid_rate", "share of texts that parsed as the requested JSON", when=JSON),
    shown("quality.embedding.diversity", "mean pairwise cosine distance of MiniLM embeddings"),
    shown(
        "quality.embedding.similarity_to_reference",
        "mean best cosine similarity to a reference",
        when=REFERENCE,
    ),
    hidden("quality.embedding.embedded", "texts embedded"),
    shown(
        "quality.perplexity.mean",
        "mean perplexity under the reference LM (lower = more fluent)",
        when=PERPLEXITY,
    ),
    hidden("quality.perplexity.*", "the perplexity's other statistics", when=PERPLEXITY),
    shown("privacy.pii_email_rate", "share of texts containing an e-mail address"),
    shown("privacy.pii_phone_rate", "share of texts containing a phone number"),
    shown(
        "privacy.verbatim_8gram_overlap_rate",
        "texts copying 8 words in a row from the source",
        when=REFERENCE,
    ),
    shown(
        "bias.counterfactual.sentiment_gap",
        "largest sentiment gap between groups on swapped prompts",
        when=COUNTERFACTUAL,
    ),
    shown(
        "bias.counterfactual.refusal_gap",
        "largest refusal-rate gap between groups",
        when=COUNTERFACTUAL,
    ),
    shown(
        "bias.counterfactual.length_ratio",
        "shortest over longest mean length by group (1 = equal)",
        when=COUNTERFACTUAL,
    ),
    hidden("bias.counterfactual.*", "the counterfactual test's details", when=COUNTERFACTUAL),
    hidden("bias.mentions.*", "each group's share of the texts that mention it", when=GROUPS),
    hidden("rows_scored", "rows the metrics read (every row)"),
    hidden("columns.*.quality.*", "another llm_text column's row-level metrics", when=COLUMNS),
    hidden("columns.*.privacy.*", "another llm_text column's PII and overlap", when=COLUMNS),
    hidden("columns.*.bias.mentions.*", "another llm_text column's mentions", when=COLUMNS),
)
