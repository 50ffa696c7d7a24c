"""Image metrics: the row-level ones over every image, shard by shard (``sharded``), the
same over one table in one process (``quality``), and the Fréchet distance and CLIP score
on encoder features (``fidelity``; the encoders run in ``synthfactory_workers.metrics``)."""
