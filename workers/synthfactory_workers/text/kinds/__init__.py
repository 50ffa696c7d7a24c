"""The workers of the column kinds: one class per ``kind`` of ``generator.columns``, found
through ``synthfactory.spec.columns.COLUMNS`` (its config registers the class's path)."""
