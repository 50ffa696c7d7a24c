"""Tabular synthesizers: shared interface, column metadata, and one file per method."""
