"""A pool of generator actors sized by the spec, replacing any actor that dies."""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from synthfactory.errors import SynthfactoryError, WorkerLostError
from synthfactory_workers.actor import ShardWorker

if TYPE_CHECKING:
    from synthfactory.spec import JobSpec
    from synthfactory_workers.contract import ShardTask


def actor_options(spec: JobSpec) -> dict[str, Any]:
    """The spec's resources as Ray actor options (what lands where, with how many threads)."""
    res = spec.resources
    threads = str(res.math_threads or max(1, int(res.num_cpus)))
    env = {k: threads for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    env["SYNTHFACTORY_TORCH_THREADS"] = threads
    env.update(forwarded_environment(secret_names(spec)))
    options: dict[str, Any] = {
        "num_cpus": res.num_cpus,
        "num_gpus": res.num_gpus,
        "max_restarts": 0,
        "max_task_retries": 0,
        "runtime_env": {"env_vars": env},
    }
    if res.custom_resources:
        options["resources"] = dict(res.custom_resources)
    return options


def task_options(spec: JobSpec, gpu: bool = True, retries: int = 1) -> dict[str, Any]:
    """The spec's resources as Ray *task* options (the fit, metric tasks): one actor's
    CPUs and environment; its GPUs and custom resources only when ``gpu``."""
    options = actor_options(spec)
    del options["max_restarts"], options["max_task_retries"]
    if not gpu:
        options.pop("num_gpus", None)
        options.pop("resources", None)
    options["max_retries"] = retries
    return options


FORWARDED = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CA_BUNDLE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "HF_HUB_OFFLINE",
    "HF_HOME",
)


def secret_names(spec: JobSpec) -> tuple[str, ...]:
    """Environment variables the spec names for its secrets (an API key's variable): they
    reach local actors the way AWS credentials do, and are never written anywhere."""
    name = getattr(getattr(spec.generator, "backend", None), "api_key_env", None)
    return (name,) if isinstance(name, str) and name else ()


def forwarded_environment(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """The driver's AWS/HF settings, for actors on a cluster that runs on this machine.

    A local Ray keeps the environment it started with, so settings made later in the
    driver would never reach it. Remote clusters use their own credential chain
    (instance roles, their env) unless SYNTHFACTORY_FORWARD_ENV=1 asks otherwise.
    """
    mode = os.environ.get("SYNTHFACTORY_FORWARD_ENV", "auto")
    if mode == "0" or (mode == "auto" and not cluster_is_local()):
        return {}
    return {k: os.environ[k] for k in (*FORWARDED, *extra) if k in os.environ}


def cluster_is_local() -> bool:
    import ray

    if not ray.is_initialized():
        return True
    import psutil

    local = {"127.0.0.1", "localhost", ray.util.get_node_ip_address()}
    local |= {a.address for addrs in psutil.net_if_addrs().values() for a in addrs}
    return all(node.get("NodeManagerAddress") in local for node in ray.nodes() if node["Alive"])


def unwrap(exc: BaseException) -> BaseException:
    """Ray wraps a remote exception; give back the user's own exception."""
    from ray.exceptions import RayTaskError

    if isinstance(exc, RayTaskError) and exc.cause is not None:
        return exc.cause
    return exc


class ActorPool:
    """Hands one idle actor to each caller; a dead actor is replaced and the call fails
    with WorkerLostError (transient), so the caller's retry runs on a fresh actor."""

    def __init__(
        self, spec: JobSpec, prepared: dict[str, Any], version_uri: str, artifacts_uri: str
    ) -> None:
        import ray

        self._remote: Any = ray.remote(ShardWorker).options(**actor_options(spec))
        self._args = (spec, prepared, version_uri, artifacts_uri)
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
        actors: list[Any] = [self._remote.remote(*self._args) for _ in range(self.size)]
        try:
            self.info = ray.get([a.setup.remote() for a in actors])
        except Exception as exc:
            for actor in actors:
                ray.kill(actor)
            raise unwrap(exc) from None
        for actor in actors:
            self._idle.put(actor)
        self.startup_seconds = time.perf_counter() - started

    def _new_actor(self) -> Any:
        """A replacement actor, or an error if the cluster cannot place one in time (e.g.
        its node died and no other node has the resources): the pool then shrinks."""
        import ray

        actor = self._remote.remote(*self._args)
        timeout = float(os.environ.get("SYNTHFACTORY_ACTOR_START_TIMEOUT", "600"))
        try:
            ray.get(actor.setup.remote(), timeout=timeout)
        except Exception:
            ray.kill(actor)
            raise
        return actor

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
            ray.kill(actor)
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

    def stop(self) -> None:
        import ray

        while not self._idle.empty():
            ray.kill(self._idle.get_nowait())
