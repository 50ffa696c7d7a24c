"""Can the cluster place the job's actors? Asked of Ray's node table in a second, instead of
leaving an actor pending forever for a GPU (or a custom resource) no node has."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError

if TYPE_CHECKING:
    from synthfactory.spec import JobSpec


def demand(spec: JobSpec) -> dict[str, float]:
    """What one actor asks Ray for."""
    res = spec.resources
    wanted: dict[str, float] = {"CPU": res.num_cpus}
    if res.num_gpus:
        wanted["GPU"] = res.num_gpus
    wanted.update(res.custom_resources)
    return wanted


def check_placeable(spec: JobSpec, nodes: list[dict[str, Any]] | None = None) -> list[str]:
    """Raise ConfigError when no alive node could ever hold one actor; return warnings
    (e.g. fewer actors fit at once than the spec asks for: they then take turns)."""
    if nodes is None:
        import ray

        nodes = [n for n in ray.nodes() if n.get("Alive")]
    totals = [dict(n.get("Resources") or {}) for n in nodes]
    wanted = demand(spec)
    fits = [t for t in totals if all(t.get(k, 0.0) >= v for k, v in wanted.items())]
    if not fits:
        have = ", ".join(
            f"{k} {max((t.get(k, 0.0) for t in totals), default=0):g}" for k in sorted(wanted)
        )
        asked = ", ".join(f"{k} {v:g}" for k, v in sorted(wanted.items()))
        raise ConfigError(
            f"no node of the Ray cluster can hold one actor: each asks for {asked}; the "
            f"largest node has {have or 'nothing'} ({len(totals)} node(s) alive)",
            fix="lower resources.num_cpus / num_gpus / custom_resources, or add a node "
            "that has them (GPU jobs need a GPU node)",
        )
    slots = sum(
        int(min(t.get(k, 0.0) // v if v else 10**9 for k, v in wanted.items())) for t in fits
    )
    if slots < spec.resources.actors:
        return [
            f"the cluster holds {slots} of the {spec.resources.actors} actors at once; the "
            "rest wait for room (lower resources.actors to match)"
        ]
    return []
