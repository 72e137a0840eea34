"""One way onto Ray for every command (``run``, ``micro``, ``pipeline``, ``load``), and the one
"submit, wait, retry, record" loop that ``run``, ``micro`` and ``pipeline`` place their cases
with (docs/distributed.md).

:func:`connected` joins the cluster named by ``--ray-address`` (else ``$RAY_ADDRESS``), or starts
a local Ray for the command, bound to 127.0.0.1, without dashboard or usage statistics, its session
folder in a temporary folder removed afterwards; ``--ray-runtime-env`` goes to ``ray.init``. A Ray
already initialised in the process (a notebook, a test) is used as it is.

:class:`TaskPool` is the loop. Each task asks for what its case needs (``CPU``, ``GPU``, custom
resources); one that no live node offers is finished at once with that reason (Ray itself would
keep it pending for ever); the others run as Ray tasks retried ``retries`` times (Ray's
``max_retries`` and ``retry_exceptions``) and come back in finish order (``ray.wait``), each
with its node's full environment (:func:`voxbench.run.environment.capture` run *on the node*, so
its ``machine_id`` is the node's own) or with the type and one-line reason of its failure.

Ray is an optional extra, imported only here (and by the load generators) when asked for.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from voxbench.errors import ConfigError
from voxbench.results.document import Environment
from voxbench.run import environment
from voxbench.run.request import RAY_HINT, RayOptions

RAY_SET_ENV = ("OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
"""What Ray sets in a task's environment that changes how an engine runs (kept per case)."""

LOCAL_HOST = "127.0.0.1"
"""The address a local Ray started here listens on: nothing of it is reachable from outside."""


def import_ray() -> Any:
    """The ``ray`` module; :data:`~voxbench.run.request.RAY_HINT` as a ConfigError without it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_HINT) from None
    return ray


@contextmanager
def connected(options: RayOptions | None = None) -> Iterator[Any]:
    """Ray for the length of a command; yields the ``ray`` module.

    The caller's Ray when one is initialised already; else the cluster at ``options.address``
    (or ``$RAY_ADDRESS``; ``local`` means start one here); else a local Ray on every core of this
    machine, bound to 127.0.0.1, no dashboard, worker output not copied to this terminal (it
    would break the progress bar; a failed task's error still comes back), its session folder a
    temporary folder removed afterwards. Ray's usage statistics are off unless the environment
    says otherwise. A Ray started here is shut down on leaving."""
    opts = options or RayOptions()
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    address = opts.address or os.environ.get("RAY_ADDRESS")
    temp: str | None = None
    if address and address != "local":
        ray.init(address=address, runtime_env=opts.runtime_env, **quiet)
    else:
        # Short on purpose: Ray's socket paths live under it (a Unix socket path is <108 bytes).
        temp = tempfile.mkdtemp(prefix="vxray-")
        with _loopback(ray):
            ray.init(
                address="local",
                num_cpus=os.cpu_count(),
                include_dashboard=False,
                _node_ip_address=LOCAL_HOST,
                _temp_dir=temp,
                runtime_env=opts.runtime_env,
                **quiet,
            )
    try:
        yield ray
    finally:
        ray.shutdown()
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


@contextmanager
def _loopback(ray: Any) -> Iterator[None]:
    """While a local Ray starts: keep it on 127.0.0.1. Ray turns a loopback ``_node_ip_address``
    into the machine's own address (and its servers then listen on every interface) unless it
    believes multi-node clusters are off, as on Windows and macOS (its
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``, read once at import into ``ENABLE_RAY_CLUSTER``);
    that belief is held for the start only. Where a Ray version lacks the switch, it starts as
    Ray decides."""
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    if constants is None or not hasattr(constants, "ENABLE_RAY_CLUSTER"):
        yield
        return
    saved = constants.ENABLE_RAY_CLUSTER
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = saved


# -- on the node ------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _environment(capture: Callable[[], Environment]) -> dict[str, Any]:
    """This node's environment, captured once per Ray worker process (outside any timing)."""
    return capture().model_dump(mode="json")


def node_facts(capture: Callable[[], Environment] = environment.capture) -> dict[str, Any]:
    """The machine a task ran on (called inside the task): its whole environment as a local run
    captures it (``machine_id`` from the node's ``$VOXBENCH_MACHINE_ID`` or host name), its Ray
    node id, and what Ray set in the task's environment (:data:`RAY_SET_ENV`). The driver adds
    the node's address as Ray knows it (``ray_node_ip``)."""
    ray = import_ray()
    facts = dict(_environment(capture))
    facts["ray_node_id"] = ray.get_runtime_context().get_node_id()
    # Ray sets both for the task, and an engine's worker process inherits them: the thread
    # count follows the CPUs asked for, and the GPU Ray chose is the task's cuda:0.
    facts["env"] = {k: os.environ[k] for k in RAY_SET_ENV if k in os.environ}
    return facts


def _traced(
    capture: Callable[[], Environment], fn: Callable[..., Any], *args: Any
) -> tuple[Any, dict[str, Any]]:
    """The body of every task: ``fn(*args)``, then the node's facts."""
    return fn(*args), node_facts(capture)


def value_of(wrapped: list[Any]) -> Any | None:
    """Inside a task: the value of another task whose reference was passed wrapped in a list (so
    that Ray does not wait on it before starting this one's worker); None when that task failed
    or was never submitted."""
    if not wrapped or wrapped[0] is None:
        return None
    ray = import_ray()
    try:
        value, _node = ray.get(wrapped[0])
    except ray.exceptions.RayError:
        return None
    return value


# -- on the driver ----------------------------------------------------------------------------


def _amounts(resources: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in resources.items())


def unmet_reason(need: dict[str, float], nodes: list[dict[str, float]]) -> str | None:
    """None when some node offers all of ``need`` (in total, busy or not), else why none does."""
    if any(all(node.get(k, 0.0) >= v for k, v in need.items()) for node in nodes):
        return None
    short = {k: v for k, v in need.items() if not any(node.get(k, 0.0) >= v for node in nodes)}
    if short:
        most = {k: max((node.get(k, 0.0) for node in nodes), default=0.0) for k in short}
        offered = ", ".join(f"{k}={most[k]:g}" for k in short)
        return f"no Ray node offers {_amounts(short)} (the most any node has: {offered})"
    return f"no single Ray node offers {_amounts(need)} together"


def failure_of(exc: Exception, retries: int) -> tuple[str, str]:
    """The type and one-line reason of a task that failed after its retries."""
    cause = getattr(exc, "cause", None)
    shown = cause if isinstance(cause, Exception) else exc
    lines = [line.strip() for line in str(shown).splitlines() if line.strip()]
    text = lines[-1] if isinstance(cause, Exception) and lines else (lines[0] if lines else "")
    tries = f"{retries + 1} attempt{'s' if retries else ''}"
    return type(shown).__name__, f"Ray task failed after {tries}: {text or type(shown).__name__}"


@dataclass
class Done:
    """One finished task: the caller's ``key``, what it asked for, and either its ``value`` and
    ``node`` (:func:`node_facts`) or a ``failure`` (type, reason): not placeable
    (``ResourceUnavailable``) or failed after its retries."""

    key: Any
    need: dict[str, float]
    value: Any = None
    node: dict[str, Any] | None = None
    failure: tuple[str, str] | None = None


@dataclass
class TaskPool:
    """Tasks on the connected Ray (:func:`connected`), each retried ``retries`` times; leaving the
    ``with`` block cancels those still out (Ctrl-C). ``capture`` is what :func:`node_facts`
    records on the node (micro adds its backends' versions)."""

    ray: Any
    retries: int = 1
    capture: Callable[[], Environment] = environment.capture
    offers: list[dict[str, float]] = field(default_factory=list)
    _nodes: list[dict[str, Any]] = field(default_factory=list)
    _pending: dict[Any, tuple[Any, dict[str, float]]] = field(default_factory=dict)
    _ready: list[Done] = field(default_factory=list)
    _remote: Any = None

    def __enter__(self) -> TaskPool:
        self._nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        self.offers = [dict(n.get("Resources") or {}) for n in self._nodes]
        self._remote = self.ray.remote(_traced)
        return self

    def __exit__(self, *exc: object) -> None:
        for ref in self._pending:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # already finished or lost: nothing left to stop
                continue
        self._pending.clear()

    def unmet(self, need: dict[str, float]) -> str | None:
        """Why no live node can take a task asking ``need``; None when one can."""
        return unmet_reason(need, self.offers)

    def submit(self, key: Any, need: dict[str, float], fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` as a task asking ``need`` (Ray's names: ``CPU``, ``GPU``, custom);
        its object reference, or None when no node can take it (then it is finished at once,
        with the reason, among :meth:`results`)."""
        reason = self.unmet(need)
        if reason:
            self._ready.append(Done(key, need, failure=("ResourceUnavailable", reason)))
            return None
        ref = self._remote.options(
            num_cpus=need.get("CPU", 0.0),
            num_gpus=need.get("GPU", 0.0),
            resources={k: v for k, v in need.items() if k not in ("CPU", "GPU")},
            max_retries=self.retries,
            retry_exceptions=True,
        ).remote(self.capture, fn, *args)
        self._pending[ref] = (key, need)
        return ref

    def __len__(self) -> int:
        return len(self._pending) + len(self._ready)

    def results(self) -> Iterator[Done]:
        """Every task submitted so far (and any submitted while iterating), as it finishes."""
        while self._ready or self._pending:
            if self._ready:
                yield self._ready.pop(0)
                continue
            ready, _ = self.ray.wait(list(self._pending), num_returns=1)
            key, need = self._pending.pop(ready[0])
            try:
                value, node = self.ray.get(ready[0])
            except self.ray.exceptions.RayError as exc:
                yield Done(key, need, failure=failure_of(exc, self.retries))
                continue
            node["ray_node_ip"] = self._node_ip(node["ray_node_id"])
            yield Done(key, need, value=value, node=node)

    def _node_ip(self, node_id: str) -> str | None:
        """The address Ray knows a node by; the node list is read again for a node that joined."""
        for known in (self._nodes, None):
            for n in known if known is not None else self.ray.nodes():
                if n.get("NodeID") == node_id:
                    return str(n.get("NodeManagerAddress"))
        return None
