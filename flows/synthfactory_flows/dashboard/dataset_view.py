"""What the dataset page shows beyond one version's detail: metrics over versions (a trend
per metric from each version's ``metrics.json``), gates, judge-score histograms and
validator pass rates (text pipelines), the rejected rows with their reasons, tokens and cost
per column and per model, lineage, and a page of whole rows for the sample browser.

Everything is read from storage with bounds (``MAX_SCAN_ROWS`` rows scanned, ``MAX_*``
items answered): the page stays fast on a large dataset."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any
from urllib.parse import urlencode

from synthfactory.dataset import Dataset, layout, list_versions, open_dataset
from synthfactory.dataset.manifest import Manifest
from synthfactory.dataset.parquet import decode
from synthfactory.metrics.report import flatten
from synthfactory.storage import open_store, split_uri
from synthfactory_flows.dashboard.catalog import finite, is_image, show_value

MAX_SCAN_ROWS = 50_000
MAX_TREND_METRICS = 40
MAX_VERSIONS = 30
MAX_REJECTED = 50
MAX_PAGE = 50
SCORE = re.compile(r"^(?P<judge>.+)\.(?P<criterion>[^.]+)\.score$")
TREND_SECTIONS = ("quality", "privacy", "bias", "utility", "judge", "pipeline", "text", "image")


def overview(uri: str, inside: Any = None) -> dict[str, Any]:
    """The dataset page's data for the version at ``uri``. ``inside(uri) -> bool`` limits
    the versions read for the trend to the dashboard's roots."""
    ds = open_dataset(uri)
    m = ds.manifest
    kept = _scan(ds, [s.path for s in m.shards])
    rejected = _scan(ds, [s.rejected_path for s in m.shards if s.rejected_path])
    return finite(
        {
            "uri": ds.uri,
            "name": m.name,
            "version": m.version,
            "status": m.status,
            "run_page": "/run?" + urlencode({"uri": ds.uri}),
            "flow_run_id": m.flow_run.get("id", ""),
            "gates": m.gates,
            "trend": trend(ds.uri, m, inside),
            "judges": judge_histograms(m, kept, rejected),
            "validators": validator_rates(m.stats),
            "rejected": rejected_rows(rejected, m.rejected_rows),
            "cost": cost_table(m, kept, rejected),
            "lineage": {
                "seeds": m.seeds,
                "lineage": m.lineage,
                "fingerprints": m.fingerprints,
                "generator": m.generator,
                "flow_run": m.flow_run,
                "spec_hash": m.spec_hash,
            },
        }
    )


# --- reading ---------------------------------------------------------------------------------


def _scan(ds: Dataset, paths: list[str]) -> list[dict[str, Any]]:
    """The rows of ``paths`` (image cells dropped), at most ``MAX_SCAN_ROWS``."""
    rows: list[dict[str, Any]] = []
    for path in paths:
        if len(rows) >= MAX_SCAN_ROWS:
            break
        try:
            table = decode(ds.store.get_bytes(path))
        except FileNotFoundError:
            continue
        images = [f.name for f in table.schema if is_image(f)]
        table = table.drop_columns(images).slice(0, MAX_SCAN_ROWS - len(rows))
        rows.extend(table.to_pylist())
    return rows


def rows_page(uri: str, offset: int, limit: int) -> dict[str, Any]:
    """Whole rows ``offset`` to ``offset + limit`` of the version (values shortened for
    display; image cells as thumbnail URLs), and the total."""
    ds = open_dataset(uri)
    limit = max(1, min(limit, MAX_PAGE))
    out: list[dict[str, Any]] = []
    start = 0
    for shard in ds.manifest.shards:
        end = start + shard.rows
        if end > offset and len(out) < limit:
            table = decode(ds.store.get_bytes(shard.path))
            first = max(0, offset - start)
            part = table.slice(first, limit - len(out))
            images = [f.name for f in part.schema if is_image(f)]
            for i, row in enumerate(part.drop_columns(images).to_pylist()):
                shown = {k: _show_long(v) for k, v in row.items()}
                for column in images:
                    query = {"uri": ds.uri, "row": start + first + i, "column": column}
                    shown[column] = {"thumbnail": "/api/thumbnail?" + urlencode(query)}
                out.append(shown)
        start = end
        if len(out) >= limit:
            break
    return finite({"uri": ds.uri, "offset": offset, "total": ds.manifest.rows, "rows": out})


def _show_long(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 4000:
        return value[:4000] + "…"
    if isinstance(value, str):
        return value
    return show_value(value)


# --- metrics over versions ----------------------------------------------------------------


def trend(uri: str, m: Manifest, inside: Any = None) -> dict[str, Any]:
    """Each headline metric's value in every version of this dataset (same name, beside
    this one), oldest first."""
    parent, _ = split_uri(uri)
    above, name = split_uri(parent)
    if name == layout.QUARANTINE:  # a quarantined version: its dataset's root
        parent = above
    versions: list[tuple[str, str, str, str]] = []  # created_at, version, status, uri
    if parent and parent != uri and (inside is None or inside(parent)):
        try:
            for info in list_versions(open_store(parent)):
                vm = info.manifest
                if vm is not None and vm.name == m.name:
                    versions.append((vm.created_at, vm.version, vm.status, info.uri))
        except Exception:  # the trend is extra: an unreadable neighbour must not hide it
            versions = []
    if not any(v[3].rstrip("/") == uri.rstrip("/") for v in versions):
        versions.append((m.created_at, m.version, m.status, uri))
    versions = sorted(versions)[-MAX_VERSIONS:]
    values: list[dict[str, float]] = [_metrics_of(v[3]) for v in versions]
    gated = [str(g.get("metric")) for g in m.gates if isinstance(g, dict)]
    names = _headline([n for vals in values for n in vals], gated)
    return {
        "versions": [
            {"created_at": c, "version": v, "status": s, "uri": u} for c, v, s, u in versions
        ],
        "metrics": {n: [vals.get(n) for vals in values] for n in names},
    }


def _metrics_of(uri: str) -> dict[str, float]:
    try:
        report = json.loads(open_store(uri).get_bytes(layout.METRICS))
    except (FileNotFoundError, ValueError, OSError):
        return {}
    if not isinstance(report, dict):
        return {}
    return {k: float(v) for k, v in flatten(report)}


def _headline(names: list[str], gated: list[str]) -> list[str]:
    """The metrics worth a trend: gated ones first, then each section's shallow ones."""
    seen = list(dict.fromkeys(names))
    shallow = [
        n
        for n in seen
        if n.split(".")[0] in TREND_SECTIONS and n.count(".") <= 2 and ".split." not in n
    ]
    first = [n for n in gated if n in seen]
    rest = sorted((n for n in shallow if n not in first), key=lambda n: (n.count("."), n))
    return (first + rest)[:MAX_TREND_METRICS]


# --- text pipelines -----------------------------------------------------------------------


def judge_histograms(
    m: Manifest, kept: list[dict[str, Any]], rejected: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per judge criterion (``<judge>.<criterion>.score`` columns): how many kept and
    rejected rows got each score."""
    columns = sorted({k for r in kept[:1] + rejected[:1] for k in r if SCORE.match(k)})
    out = []
    for column in columns:
        kept_scores = _scores(kept, column)
        rejected_scores = _scores(rejected, column)
        scores = sorted({*kept_scores, *rejected_scores})
        if not scores:
            continue
        top = max(max(scores), _levels(m, column) or 0)
        bins = list(range(min(1, min(scores)), top + 1))
        total = sum(kept_scores.values())
        mean = sum(s * c for s, c in kept_scores.items()) / total if total else None
        out.append(
            {
                "column": column,
                "scores": bins,
                "kept": [kept_scores.get(b, 0) for b in bins],
                "rejected": [rejected_scores.get(b, 0) for b in bins],
                "mean_kept": mean,
            }
        )
    return out


def _scores(rows: list[dict[str, Any]], column: str) -> Counter[int]:
    """How many of ``rows`` hold each whole-number score in ``column``."""
    found: Counter[int] = Counter()
    for r in rows:
        value = r.get(column)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if float(value).is_integer():
            found[int(value)] += 1
    return found


def _levels(m: Manifest, column: str) -> int | None:
    """How many levels the rubric criterion of ``column`` has (spec), when known."""
    match = SCORE.match(column)
    generator = m.spec.get("generator") if isinstance(m.spec, dict) else None
    if not match or not isinstance(generator, dict):
        return None
    for c in generator.get("columns") or []:
        if isinstance(c, dict) and c.get("name") == match["judge"]:
            for criterion in c.get("rubric") or []:
                if isinstance(criterion, dict) and criterion.get("name") == match["criterion"]:
                    levels = criterion.get("levels")
                    return len(levels) if isinstance(levels, list) else None
    return None


def validator_rates(stats: dict[str, float]) -> list[dict[str, Any]]:
    """``validate.<name>.checked/passed`` of the manifest's stats, as pass rates."""
    out = []
    for key, checked in sorted(stats.items()):
        if key.startswith("validate.") and key.endswith(".checked"):
            name = key[len("validate.") : -len(".checked")]
            passed = stats.get(f"validate.{name}.passed", 0.0)
            rate = passed / checked if checked else None
            out.append({"name": name, "checked": checked, "passed": passed, "rate": rate})
    return out


def rejected_rows(rows: list[dict[str, Any]], total: int) -> dict[str, Any]:
    """The first rejected rows (reason first) and the count of each reason's kind (the
    text before its first colon)."""
    kinds = Counter(str(r.get("reason") or "").split(":", 1)[0] or "unknown" for r in rows)
    first = []
    for r in rows[:MAX_REJECTED]:
        shown = {"reason": r.get("reason"), "rejected_column": r.get("rejected_column")}
        shown.update({k: show_value(v) for k, v in r.items() if k not in shown and "__" not in k})
        first.append(shown)
    return {
        "total": total,
        "scanned": len(rows),
        "by_reason": [{"reason": k, "rows": n} for k, n in kinds.most_common()],
        "rows": first,
    }


def cost_table(
    m: Manifest, kept: list[dict[str, Any]], rejected: list[dict[str, Any]]
) -> dict[str, Any]:
    """Tokens (and dollars, where the spec sets prices) per LLM column and per model, over
    the kept and rejected rows scanned; the manifest's totals (every request paid for)."""
    rows = kept + rejected
    columns = sorted(
        {k[: -len("__prompt_tokens")] for r in rows[:1] for k in r if k.endswith("__prompt_tokens")}
    )
    per_column: list[dict[str, Any]] = []
    per_model: dict[str, dict[str, Any]] = {}
    for column in columns:
        prompt = sum(int(r.get(f"{column}__prompt_tokens") or 0) for r in rows)
        completion = sum(int(r.get(f"{column}__completion_tokens") or 0) for r in rows)
        models = Counter(str(r.get(f"{column}__model") or "") for r in rows)
        model = models.most_common(1)[0][0] if models else ""
        prices = _prices(m.spec, column)
        cost = (prompt * prices[0] + completion * prices[1]) / 1e6 if prices else None
        per_column.append(
            {"column": column, "model": model, "prompt_tokens": prompt,
             "completion_tokens": completion, "cost_usd": cost}
        )  # fmt: skip
        entry = per_model.setdefault(
            model, {"model": model, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": None}
        )
        entry["prompt_tokens"] += prompt
        entry["completion_tokens"] += completion
        if cost is not None:
            entry["cost_usd"] = (entry["cost_usd"] or 0.0) + cost
    totals = {
        k: v
        for k, v in m.stats.items()
        if k in ("cost_usd", "prompt_tokens", "completion_tokens", "requests")
    }
    return {
        "columns": per_column,
        "models": list(per_model.values()),
        "rows_scanned": len(rows),
        "totals": totals,
    }


def _prices(spec: dict[str, Any], column: str) -> tuple[float, float] | None:
    """(prompt, completion) dollars per million tokens of the model ``column`` uses."""
    generator = spec.get("generator") if isinstance(spec, dict) else None
    if not isinstance(generator, dict):
        return None
    backend = generator.get("backend")
    for c in generator.get("columns") or []:
        if isinstance(c, dict) and c.get("name") == column and c.get("model"):
            entry = (generator.get("models") or {}).get(c["model"])
            if isinstance(entry, dict) and entry.get("backend"):
                backend = entry["backend"]
    prices = backend.get("price_per_million_tokens") if isinstance(backend, dict) else None
    if not isinstance(prices, dict):
        return None
    try:
        return float(prices.get("prompt") or 0.0), float(prices.get("completion") or 0.0)
    except (TypeError, ValueError):
        return None
