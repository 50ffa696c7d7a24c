"""Model-based metrics: they load a model (MiniLM, a reference LM, an image encoder) and run
inside a Ray task on the cluster. Their definitions and the mergeable shard summaries live in
``synthfactory.metrics``."""
