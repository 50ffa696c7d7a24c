"""What decides whether a text is kept, shared by every text job: JSON parsing of a reply
(``extract_json``, ``parse_json``), the spec's filters and in-shard dedup (``ShardFilter``)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from synthfactory.minhash import band_hashes, exact_key, signatures

if TYPE_CHECKING:
    from synthfactory.spec.generators.text import DedupConfig, FilterConfig


def extract_json(text: str) -> Any:
    """The first JSON object or array in a completion (models often wrap it in prose)."""
    fenced = re.search(r"```(?:json)?\s*(.+?)```", text, re.S)
    candidate = fenced.group(1) if fenced else text
    start = min((i for i in (candidate.find("{"), candidate.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise ValueError("no JSON object in the completion")
    value, _ = json.JSONDecoder().raw_decode(candidate[start:])
    return value


def parse_json(text: str, validator: Any) -> tuple[Any, str | None]:
    """(the reply's JSON value, None), or (None, why it is not valid against the schema)."""
    try:
        value = extract_json(text)
    except ValueError as exc:
        return None, f"invalid_json: {exc}"
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    if errors:
        return None, f"schema_violation: {errors[0].message}"
    return value, None


class ShardFilter:
    """The filters and in-shard dedup of one shard: texts seen so far are remembered."""

    def __init__(self, filters: FilterConfig, dedup: DedupConfig) -> None:
        self.filters, self.dedup = filters, dedup
        self.seen_exact: set[int] = set()
        self.bands_seen: list[dict[int, int]] = []

    def reject_reason(self, row: dict[str, Any], text: str) -> str | None:
        """Why ``text`` (of ``row``) is not kept, or None; the row gets its dedup keys
        (``__exact``, ``__lsh_bands``) for the dataset-wide pass."""
        return self._filtered(text) or self._duplicate(row, text)

    def _filtered(self, text: str) -> str | None:
        f = self.filters
        if len(text) < f.min_chars:
            return f"too_short: {len(text)} < {f.min_chars} chars"
        if f.max_chars is not None and len(text) > f.max_chars:
            return f"too_long: {len(text)} > {f.max_chars} chars"
        lowered = text.lower()
        for word in f.blocklist:
            if word.lower() in lowered:
                return f"blocklist: {word}"
        for pattern in f.require_regex:
            if not re.search(pattern, text):
                return f"missing_regex: {pattern}"
        for pattern in f.exclude_regex:
            if re.search(pattern, text):
                return f"excluded_regex: {pattern}"
        return None

    def _duplicate(self, row: dict[str, Any], text: str) -> str | None:
        d = self.dedup
        key = exact_key(text)
        row["__exact"] = key
        if d.exact:
            if key in self.seen_exact:
                return "exact_duplicate"
            self.seen_exact.add(key)
        if d.near:
            bands = band_hashes(signatures([text], d.num_perm), d.threshold)[0]
            if not self.bands_seen:
                self.bands_seen.extend({} for _ in bands)
            if any(int(h) in self.bands_seen[b] for b, h in enumerate(bands)):
                return "near_duplicate"
            for b, h in enumerate(bands):
                self.bands_seen[b][int(h)] = 1
            row["__lsh_bands"] = [int(h) for h in bands]
        return None


def pop_dedup_keys(rows: list[dict[str, Any]]) -> tuple[list[int], list[list[int]]]:
    """The dedup keys ``ShardFilter`` put into ``rows``, taken out of them."""
    return [r.pop("__exact", 0) for r in rows], [r.pop("__lsh_bands", []) for r in rows]


def with_dedup_keys(table: Any, keys: tuple[list[int], list[list[int]]], dedup: DedupConfig) -> Any:
    """``table`` with the sidecar dedup columns (``__exact``, ``__lsh_bands``) the
    dataset-wide pass reads."""
    import pyarrow as pa

    exact, bands = keys
    if dedup.exact:
        table = table.append_column("__exact", pa.array(exact, pa.uint64()))
    if dedup.near:
        table = table.append_column("__lsh_bands", pa.array(bands, pa.list_(pa.uint64())))
    return table
