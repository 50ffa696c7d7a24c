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
    _check_model_pools(spec, totals)
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


def _check_model_pools(spec: JobSpec, totals: list[dict[str, float]]) -> None:
    """A text pipeline's model pools must all be up, with room for one shard actor beside
    them, before a shard can finish: a ConfigError naming the pool otherwise."""
    keys = spec.generator.pool_model_keys()
    if not keys:
        return
    from synthfactory_workers.text.model_pool import model_spec

    needed = dict(demand(spec))
    for key in keys:
        pool = model_spec(spec, key)
        wanted = demand(pool)
        if not any(all(t.get(k, 0.0) >= v for k, v in wanted.items()) for t in totals):
            asked = ", ".join(f"{k} {v:g}" for k, v in sorted(wanted.items()))
            raise ConfigError(
                f"resources.models.{key}: no node of the Ray cluster can hold one actor of "
                f"model {key!r} (it asks for {asked})",
                fix=f"lower resources.models.{key}.num_cpus / num_gpus, or add such a node",
            )
        for name, amount in wanted.items():
            needed[name] = needed.get(name, 0.0) + amount * pool.resources.actors
    have = {k: sum(t.get(k, 0.0) for t in totals) for k in needed}
    short = [k for k, v in needed.items() if v > have[k] + 1e-9]
    if short:
        k = short[0]
        raise ConfigError(
            f"the model pools ({', '.join(keys)}) and one shard actor need {needed[k]:g} {k} "
            f"at once; the cluster has {have[k]:g}",
            fix="lower resources.models.<model>.actors / num_cpus / num_gpus (or the job's "
            "resources.num_cpus), or add nodes",
        )
