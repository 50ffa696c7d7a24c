"""A pool of generator actors sized by the spec, replacing any actor that dies."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from synthfactory.errors import SynthfactoryError, WorkerLostError
from synthfactory.storage import forwarded_env, secret_env
from synthfactory_workers import telemetry
from synthfactory_workers.actor import ShardWorker
from synthfactory_workers.contract import ActorEngine, generator_class
from synthfactory_workers.credentials import worker_env

if TYPE_CHECKING:
    from synthfactory.spec import JobSpec
    from synthfactory_workers.contract import ShardTask


def actor_options(spec: JobSpec) -> dict[str, Any]:
    """The spec's resources as Ray actor options (what lands where, with how many threads)."""
    res = spec.resources
    options: dict[str, Any] = {
        "num_cpus": res.num_cpus,
        "num_gpus": res.num_gpus,
        "max_restarts": 0,
        "max_task_retries": 0,
    }
    if res.custom_resources:
        options["resources"] = dict(res.custom_resources)
    backend = backend_actor_options(spec)
    runtime_env: dict[str, Any] = backend.pop("runtime_env", None) or {"env_vars": actor_env(spec)}
    options.update(backend)
    options["runtime_env"] = with_credentials(runtime_env, spec)
    return options


def actor_engine(spec: JobSpec) -> type[ActorEngine]:
    """The engine the shard actors run (the registered class of the generator's backend),
    which decides its own part of their options; ``ActorEngine`` itself (nothing to add)
    for generators without one."""
    backend = spec.generator.actor_backend()
    if backend is None:
        return ActorEngine
    from synthfactory.spec.backends import BACKENDS

    kind = backend if isinstance(backend, str) else backend.kind  # or its shorthand
    engine = BACKENDS.load(kind)
    return engine if isinstance(engine, type) and issubclass(engine, ActorEngine) else ActorEngine


def backend_actor_options(spec: JobSpec) -> dict[str, Any]:
    """What the actors' engine changes in their options (merged into ``actor_options``;
    ``ActorEngine.actor_options``). Its ``env_vars`` hold no credential (``actor_options``
    adds the channel for those)."""
    return actor_engine(spec).actor_options(spec, actor_env(spec))


def actor_env(spec: JobSpec) -> dict[str, str]:
    """Every actor's and task's environment variables: math threads and forwarded
    settings. Never a credential: Ray writes env_vars to its logs (``with_credentials``)."""
    res = spec.resources
    threads = str(res.math_threads or max(1, int(res.num_cpus)))
    env = {k: threads for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    env["SYNTHFACTORY_TORCH_THREADS"] = threads
    env.update(forwarded_environment())
    return env


def with_credentials(runtime_env: dict[str, Any], spec: JobSpec) -> dict[str, Any]:
    """``runtime_env`` with the channel that brings the job's credentials (``credentials``)
    to its workers: the name of their in-memory holder, from which the actor's
    constructor or the task function fetches them (``credentials.receive``)."""
    channel = worker_env(credentials(spec))
    if not channel:
        return runtime_env
    return {**runtime_env, "env_vars": {**runtime_env.get("env_vars", {}), **channel}}


def placement_bundles(spec: JobSpec) -> list[dict[str, float]] | None:
    """The placement group one actor reserves, as its engine asks
    (``ActorEngine.placement_bundles``); None when the actor needs none."""
    return actor_engine(spec).placement_bundles(spec)


PLACEMENT_STRATEGY = "STRICT_PACK"
CONTROL_GROUP = "control"
"""The actors' concurrency group for calls that must run beside a shard (``drain``)."""


def placement_options(placement_group: Any) -> dict[str, Any]:
    """Actor options that put the actor in bundle 0 of its placement group, with the
    engine's workers (vLLM's Ray executor finds the group from the actor) in the rest."""
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    return {
        "scheduling_strategy": PlacementGroupSchedulingStrategy(
            placement_group=placement_group,
            placement_group_bundle_index=0,
            placement_group_capture_child_tasks=True,
        )
    }


def task_options(spec: JobSpec, gpu: bool = True, retries: int = 1) -> dict[str, Any]:
    """The spec's resources as Ray *task* options (the fit, metric tasks): one actor's
    CPUs and environment; its GPUs and custom resources only when ``gpu``."""
    options = actor_options(spec)
    del options["max_restarts"], options["max_task_retries"]
    # tasks (prepare, metrics) run in the driver's environment, never a backend's
    options["runtime_env"] = with_credentials({"env_vars": actor_env(spec)}, spec)
    options["num_gpus"] = spec.resources.num_gpus
    if not gpu:
        options.pop("num_gpus", None)
        options.pop("resources", None)
    options["max_retries"] = retries
    return options


#: settings that reach the actors in their runtime_env (Ray logs it: no secret here):
#: every storage scheme's own (``ObjectStore.FORWARDED_ENV``) and the Hugging Face ones
FORWARDED = (*forwarded_env(), "HF_HUB_OFFLINE", "HF_HOME")

#: credentials that reach the actors through their holder (``credentials``), never env_vars
SECRETS = (*secret_env(), "HF_TOKEN")


def secret_names(spec: JobSpec) -> tuple[str, ...]:
    """Environment variables the spec names for its secrets (the API key variable of its
    backend and of each of its models' backends)."""
    names: list[str] = []
    for backend in spec.generator.backend_configs().values():
        name = getattr(backend, "api_key_env", None)
        if isinstance(name, str) and name and name not in names:
            names.append(name)
    return tuple(names)


def forward_mode() -> str:
    """SYNTHFACTORY_FORWARD_ENV: ``auto`` (the default), ``1`` or ``0``."""
    return os.environ.get("SYNTHFACTORY_FORWARD_ENV", "auto")


def forwarded_environment(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """The driver's AWS/HF settings (``FORWARDED``, no credential), for actors on a
    cluster that runs on this machine.

    A local Ray keeps the environment it started with, so settings made later in the
    driver would never reach it. Remote clusters use their own settings unless
    SYNTHFACTORY_FORWARD_ENV=1 asks otherwise.
    """
    mode = forward_mode()
    if mode == "0" or (mode == "auto" and not cluster_is_local()):
        return {}
    return {k: os.environ[k] for k in (*FORWARDED, *extra) if k in os.environ}


def credentials(spec: JobSpec) -> dict[str, str]:
    """The driver's credentials for the job's actors and tasks, values included: only for
    ``with_credentials``, which sends them through their in-memory holder.

    The API key variables the spec names always go (a remote cluster has no other way to
    them); the AWS keys and HF_TOKEN as the settings do: to a cluster on this machine, or
    to any with SYNTHFACTORY_FORWARD_ENV=1 (remote clusters keep their own credential
    chain, e.g. instance roles). SYNTHFACTORY_FORWARD_ENV=0 sends nothing.
    """
    mode = forward_mode()
    if mode == "0":
        return {}
    names = list(secret_names(spec))
    if mode != "auto" or cluster_is_local():
        names += SECRETS
    return {k: os.environ[k] for k in names if os.environ.get(k)}


def cluster_is_local() -> bool:
    import ray

    if not ray.is_initialized():
        return True
    import psutil

    local = {"127.0.0.1", "localhost", ray.util.get_node_ip_address()}
    local |= {a.address for addrs in psutil.net_if_addrs().values() for a in addrs}
    return all(node.get("NodeManagerAddress") in local for node in ray.nodes() if node["Alive"])


def start_timeout() -> float:
    """Seconds an actor (or its placement group) may take to start."""
    return float(os.environ.get("SYNTHFACTORY_ACTOR_START_TIMEOUT", "600"))


def unwrap(exc: BaseException) -> BaseException:
    """Ray wraps a remote exception; give back the user's own exception."""
    from ray.exceptions import RayTaskError

    if isinstance(exc, RayTaskError) and exc.cause is not None:
        return exc.cause
    return exc


class Spawner:
    """The one place actors are started: Ray actors of one class with one set of options,
    each in a placement group of its own when its engine asks for one (``bundles``); the
    group is freed with the actor. The shard pool and the model pools both start theirs here."""

    def __init__(
        self,
        cls: type,
        options: dict[str, Any],
        bundles: list[dict[str, float]] | None,
        concurrency_groups: dict[str, int] | None = None,
    ) -> None:
        import ray

        remote: Any = ray.remote
        wrapped = remote(concurrency_groups=concurrency_groups) if concurrency_groups else remote
        self._class: Any = wrapped(cls)
        self._options = options
        self._remote: Any = self._class.options(**options)
        self._bundles = bundles
        self.groups: dict[Any, Any] = {}  # actor id -> its placement group
        self.started: dict[Any, Any] = {}  # actor id -> every actor started and not killed

    def spawn(self, *args: Any) -> Any:
        """One actor (not yet set up), in a placement group of its own when it needs one."""
        if self._bundles is None:
            actor = self._remote.remote(*args)
            self.started[actor._actor_id] = actor
            return actor
        import ray
        from ray.util.placement_group import placement_group, remove_placement_group

        group = placement_group(self._bundles, strategy=PLACEMENT_STRATEGY)
        try:
            ray.get(group.ready(), timeout=start_timeout())
        except Exception:
            remove_placement_group(group)
            gpus = sum(b.get("GPU", 0) for b in self._bundles)
            raise WorkerLostError(
                f"no node has {gpus:g} free GPUs for one tensor-parallel engine "
                f"(placement group {self._bundles}, {PLACEMENT_STRATEGY})",
                fix="lower backend.tensor_parallel_size or resources.actors, or add a node "
                "with that many GPUs",
            ) from None
        options = {**self._options, **placement_options(group)}
        actor = self._class.options(**options).remote(*args)
        self.groups[actor._actor_id] = group
        self.started[actor._actor_id] = actor
        return actor

    def kill(self, actor: Any) -> None:
        """Kill an actor for good (no restart) and free its placement group (its GPUs)."""
        import ray

        ray.kill(actor, no_restart=True)
        self.started.pop(actor._actor_id, None)
        group = self.groups.pop(actor._actor_id, None)
        if group is not None:
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(group)

    def release(self) -> None:
        """Free every placement group still held."""
        from ray.util.placement_group import remove_placement_group

        while self.groups:
            remove_placement_group(self.groups.popitem()[1])


class ActorPool:
    """Hands one idle actor to each caller; a dead actor is replaced and the call fails
    with WorkerLostError (transient), so the caller's retry runs on a fresh actor."""

    def __init__(
        self, spec: JobSpec, prepared: dict[str, Any], version_uri: str, artifacts_uri: str
    ) -> None:
        # one shard at a time; `drain` runs beside it in its own group
        self._spawner = Spawner(
            ShardWorker, actor_options(spec), placement_bundles(spec), {CONTROL_GROUP: 1}
        )
        self._groups = self._spawner.groups  # actor id -> its placement group
        self.telemetry: Any = telemetry.start_collector()
        self.companions = generator_class(spec).companions(spec, self.telemetry)
        self._args: tuple[Any, ...] = (spec, prepared, version_uri, artifacts_uri, self.telemetry)
        self._names: dict[Any, str] = {}  # actor id -> its worker name (telemetry's key)
        self._actors: dict[Any, Any] = {}  # actor id -> every actor set up and not killed
        self._idle: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self.size = spec.resources.actors
        self.replaced = 0
        self.alive = self.size
        self.last_error = ""
        self.busy = 0
        self.info: list[dict[str, Any]] = []
        self.startup_seconds = 0.0

    def start(self) -> None:
        """Create every actor and load its model in parallel; fail fast on a load error."""
        import ray

        started = time.perf_counter()
        actors: list[Any] = []
        try:
            if self.companions is not None:  # first: the shard actors call them
                self._args = (*self._args, self.companions.start())
            actors = [self._spawn() for _ in range(self.size)]
            self.info = ray.get([a.setup.remote() for a in actors])
            for actor, info in zip(actors, self.info, strict=True):
                self._remember(actor, info)
        except Exception as exc:
            for actor in actors:
                self._kill(actor)
            self._spawner.release()
            if self.companions is not None:
                self.companions.stop()
            raise unwrap(exc) from None
        for actor in actors:
            self._idle.put(actor)
        self.startup_seconds = time.perf_counter() - started

    def _new_actor(self) -> Any:
        """A replacement actor, or an error if the cluster cannot place one in time (e.g.
        its node died and no other node has the resources): the pool then shrinks."""
        import ray

        actor = self._spawn()
        try:
            info = ray.get(actor.setup.remote(), timeout=start_timeout())
            self._remember(actor, info)
        except Exception:
            self._kill(actor)
            raise
        return actor

    def _spawn(self) -> Any:
        return self._spawner.spawn(*self._args)

    def _remember(self, actor: Any, info: dict[str, Any]) -> None:
        """The actor's worker name (its key in the telemetry), when setup reports one."""
        self._actors[actor._actor_id] = actor
        if isinstance(info, dict) and info.get("worker"):
            self._names[actor._actor_id] = str(info["worker"])

    def _kill(self, actor: Any) -> None:
        """Kill an actor and free its placement group (its GPUs)."""
        self._spawner.kill(actor)
        self._actors.pop(actor._actor_id, None)
        name = self._names.pop(actor._actor_id, None)
        if name is not None:
            self.telemetry.forget.remote(name)

    def _acquire(self) -> Any:
        while True:
            if self.alive == 0:
                raise WorkerLostError(
                    "every actor in the pool died and none could be replaced: "
                    + (self.last_error or "no resources"),
                    fix="check the Ray cluster has the CPUs/GPUs/resources the spec asks for",
                )
            try:
                return self._idle.get(timeout=0.5)
            except queue.Empty:
                continue

    def _replace(self) -> None:
        try:
            actor = self._new_actor()
        except Exception as exc:
            with self._lock:
                self.alive -= 1
                self.last_error = str(unwrap(exc))
            return
        with self._lock:
            self.replaced += 1
        self._idle.put(actor)

    def run(self, task: ShardTask) -> dict[str, Any]:
        """Generate and commit one shard on the next idle actor."""
        import ray
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        actor = self._acquire()
        with self._lock:
            self.busy += 1
        try:
            result: dict[str, Any] = ray.get(actor.run_shard.remote(task))
        except (ActorDiedError, ActorUnavailableError, RayActorError) as exc:
            self._kill(actor)
            self._replace()
            raise WorkerLostError(
                f"the actor generating shard {task.index} died ({type(exc).__name__}); "
                "it was replaced and the shard will be retried",
            ) from None
        except Exception as exc:
            self._idle.put(actor)
            cause = unwrap(exc)
            if isinstance(cause, SynthfactoryError):
                raise cause from None
            raise
        else:
            self._idle.put(actor)
            return result
        finally:
            with self._lock:
                self.busy -= 1

    def drain(self, timeout: float) -> int:
        """A graceful stop: tell every actor to send nothing new (its running shard
        journals the answers in flight and ends with ShardStopped), then wait up to
        ``timeout`` seconds for the running shards to end. Returns how many still run."""
        import ray

        calls = [
            a.drain.options(concurrency_group=CONTROL_GROUP).remote()
            for a in list(self._actors.values())
        ]
        deadline = time.monotonic() + timeout
        with contextlib.suppress(Exception):  # a dead actor has nothing to drain
            ray.get(calls, timeout=max(1.0, timeout))
        while self.busy and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.busy

    def live(self) -> dict[str, int] | None:
        """The actors' live counters: requests in flight and completion tokens received so
        far (None when no actor has counted any: no model, or the collector is slow)."""
        return telemetry.read(self.telemetry, timeout=0.5)

    def stop(self) -> None:
        import ray

        while not self._idle.empty():
            self._kill(self._idle.get_nowait())
        self._spawner.release()
        if self.companions is not None:
            self.companions.stop()
        ray.kill(self.telemetry)
