"""Cases as Ray tasks: ``voxbench run --executor ray`` (docs/distributed.md).

Each planned case becomes one Ray task that calls the very :func:`~voxbench.run.scenario.run_case`
a local run calls, with the same executor (by default a fresh worker process that times every call
next to the engine), so a case's figures mean the same wherever Ray places it. Ray decides only
*where*: the task asks for ``num_cpus`` (1, or ``CPU``), ``num_gpus`` (1 on a CUDA device, or
``GPU``) and custom resources (``{"gpu_type:H100": 1}``) from the engine's config entry and
``--ray-resources``.

Nothing goes silently missing. A case asking for resources no live node offers is recorded at
once with that reason (Ray itself would keep such a task pending for ever); a task whose worker
dies, or that raises, is run again ``retries`` times (Ray's ``max_retries`` and
``retry_exceptions``) and then recorded as a case with an error (phase ``case``). Results come
back as tasks finish (``ray.wait``) and are handed to the caller one by one, so the run folder is
saved after each. Each task returns its node's facts (host, CPU, GPUs and driver, Ray node id)
into ``case.meta["node"]``.

Ray is an optional extra, imported only here and only when a run asks for it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from voxbench.errors import ConfigError
from voxbench.results.document import ErrorRecord
from voxbench.run import environment
from voxbench.run.planner import PlannedCase
from voxbench.run.request import RAY_HINT, EngineChoice, RayOptions, RunRequest
from voxbench.run.scenario import CaseOutcome, Settings, _new_case, run_case

RAY_SET_ENV = ("OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
"""What Ray sets in a task's environment that changes how an engine runs (kept per case)."""

Finish = Callable[[PlannedCase, CaseOutcome], None]
Progress = Callable[[PlannedCase, int], None]


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_HINT) from None
    return ray


@contextmanager
def connected(options: RayOptions) -> Iterator[None]:
    """Ray for the length of a run: the caller's when already initialised (a test, a notebook),
    else the cluster at ``options.address`` (or ``$RAY_ADDRESS``), else a local Ray on every core
    of this machine, its session folder in a temporary folder removed afterwards."""
    ray = _ray()
    if ray.is_initialized():
        yield
        return
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    address = options.address or os.environ.get("RAY_ADDRESS")
    temp: str | None = None
    if address and address != "local":
        ray.init(address=address, runtime_env=options.runtime_env, **quiet)
    else:
        # Short on purpose: Ray's socket paths live under it (a Unix socket path is <108 bytes).
        temp = tempfile.mkdtemp(prefix="vxray-")
        ray.init(
            address="local",
            num_cpus=os.cpu_count(),
            include_dashboard=False,
            _temp_dir=temp,
            runtime_env=options.runtime_env,
            **quiet,
        )
    try:
        yield
    finally:
        ray.shutdown()
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


def _choice_of(planned: PlannedCase, engines: list[EngineChoice]) -> EngineChoice | None:
    """The engine entry a case was planned from: same reference, its fixed arguments kept."""
    for choice in engines:
        params = planned.spec.params
        if choice.ref == planned.spec.ref and all(
            params.get(k) == v for k, v in choice.args.items()
        ):
            return choice
    return None


def case_resources(
    planned: PlannedCase, engines: list[EngineChoice], options: RayOptions
) -> dict[str, float]:
    """What one case's task asks of a node, in Ray's names: ``CPU`` (1 unless given), ``GPU``
    (1 on a CUDA device unless given), and custom resources; ``--ray-resources`` over the
    engine entry's."""
    choice = _choice_of(planned, engines)
    asked = {**(choice.resources if choice else {}), **options.resources}
    cuda = planned.spec.device.startswith("cuda")
    need = {"CPU": asked.pop("CPU", 1.0), "GPU": asked.pop("GPU", 1.0 if cuda else 0.0), **asked}
    return {k: v for k, v in need.items() if v > 0}


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


def _nodes(ray: Any) -> list[dict[str, Any]]:
    return [n for n in ray.nodes() if n.get("Alive")]


def _node_ip(ray: Any, nodes: list[dict[str, Any]], node_id: str) -> str | None:
    """The address Ray knows a node by; the node list is read again for a node that joined."""
    for known in (nodes, None):
        for n in known if known is not None else ray.nodes():
            if n.get("NodeID") == node_id:
                return str(n.get("NodeManagerAddress"))
    return None


@lru_cache(maxsize=1)
def _machine() -> dict[str, Any]:
    """This node's machine facts, captured once per Ray worker process (outside any timing)."""
    env = environment.capture()
    return {
        "machine_id": env.machine_id,
        "hostname": env.hostname,
        "cpu_model": env.cpu_model,
        "cpu_cores_logical": env.cpu_cores_logical,
        "ram_gb": env.ram_gb,
        "os": env.os,
        "python": env.python,
        "gpus": [
            {
                "name": g.name,
                "driver": g.driver,
                "cuda": g.cuda,
                "memory_total_mb": g.memory_total_mb,
            }
            for g in env.gpus
        ],
        "gpu_note": env.gpu_note,
    }


def node_facts() -> dict[str, Any]:
    """The machine a task ran on, with its Ray node id (called inside the task; the driver adds
    the node's address as Ray knows it, ``ray_node_ip``)."""
    ray = _ray()
    facts = dict(_machine())
    facts["ray_node_id"] = ray.get_runtime_context().get_node_id()
    # Ray sets both for the task, and the engine's worker process inherits them: the thread
    # count follows the CPUs asked for, and the GPU Ray chose is the task's cuda:0.
    facts["env"] = {k: os.environ[k] for k in RAY_SET_ENV if k in os.environ}
    return facts


def case_task(planned: PlannedCase, settings: Settings) -> tuple[CaseOutcome, dict[str, Any]]:
    """One case, inside a Ray worker: the same :func:`run_case` as a local run, then the node."""
    outcome = run_case(
        planned.spec,
        planned.engine,
        planned.workload,
        planned.item,
        settings,
        batch_size=planned.batch_size,
    )
    return outcome, node_facts()


def failed_outcome(planned: PlannedCase, settings: Settings, kind: str, reason: str) -> CaseOutcome:
    """A case that could not be measured, recorded with why (phase ``case``)."""
    case = _new_case(
        planned.spec, planned.engine, planned.workload, planned.item, settings, planned.batch_size
    )
    case.errors.append(ErrorRecord(phase="case", type=kind, message=reason))
    case.error_count = len(case.errors)
    return CaseOutcome(case=case)


def _failure(exc: Exception, retries: int) -> tuple[str, str]:
    """The type and one-line reason of a task that failed after its retries."""
    cause = getattr(exc, "cause", None)
    shown = cause if isinstance(cause, Exception) else exc
    lines = [line.strip() for line in str(shown).splitlines() if line.strip()]
    text = lines[-1] if isinstance(cause, Exception) and lines else (lines[0] if lines else "")
    tries = f"{retries + 1} attempt{'s' if retries else ''}"
    return type(shown).__name__, f"Ray task failed after {tries}: {text or type(shown).__name__}"


def measure_cases(
    request: RunRequest,
    cases: list[PlannedCase],
    engines: list[EngineChoice],
    finish: Finish,
    progress: Progress = lambda c, n: None,
) -> None:
    """Run ``cases`` as Ray tasks and hand each outcome to ``finish`` as it arrives (finish
    order, not plan order); a case no node can take, or whose task failed after its retries, is
    handed over as a failed case. Ctrl-C cancels the tasks still out."""
    ray = _ray()
    s, opts = request.settings, request.ray
    calls = request.calls_per_case
    with connected(opts):
        task = ray.remote(case_task)
        nodes = _nodes(ray)
        offers = [dict(n.get("Resources") or {}) for n in nodes]
        pending: dict[Any, tuple[PlannedCase, dict[str, float]]] = {}

        def done(planned: PlannedCase, outcome: CaseOutcome, need: dict[str, float]) -> None:
            outcome.case.meta.setdefault("ray", {})["resources"] = need
            progress(planned, 0)
            progress(planned, calls)
            finish(planned, outcome)

        for planned in cases:
            need = case_resources(planned, engines, opts)
            reason = unmet_reason(need, offers)
            if reason:
                done(planned, failed_outcome(planned, s, "ResourceUnavailable", reason), need)
                continue
            ref = task.options(
                num_cpus=need.get("CPU", 0.0),
                num_gpus=need.get("GPU", 0.0),
                resources={k: v for k, v in need.items() if k not in ("CPU", "GPU")},
                max_retries=opts.retries,
                retry_exceptions=True,
            ).remote(planned, s)
            pending[ref] = (planned, need)
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                planned, need = pending.pop(ready[0])
                try:
                    outcome, node = ray.get(ready[0])
                    node["ray_node_ip"] = _node_ip(ray, nodes, node["ray_node_id"])
                    outcome.case.meta["node"] = node
                except ray.exceptions.RayError as exc:
                    kind, reason = _failure(exc, opts.retries)
                    outcome = failed_outcome(planned, s, kind, reason)
                done(planned, outcome, need)
        finally:
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # already finished or lost: nothing left to stop
                    continue
