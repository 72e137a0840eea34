"""Plan a run: engines × workloads × swept parameters × devices × batch sizes → cases.

:func:`plan` resolves every name in a :class:`~voxbench.run.request.RunRequest` and raises a
one-line error for bad input before anything is measured; devices or batch sizes an engine cannot
use are skipped with the reason (the document's ``skipped``).
"""

from __future__ import annotations

from dataclasses import dataclass

from voxbench.engines import devices
from voxbench.engines.registry import DEFAULT_ENGINES, EngineSpec
from voxbench.errors import ConfigError, EngineUnavailable
from voxbench.results.skips import skip_text
from voxbench.run import environment
from voxbench.run.params import combinations
from voxbench.run.request import EngineChoice, RunRequest
from voxbench.workloads import Workload, WorkloadItem, resolve_workload


@dataclass(frozen=True)
class PlannedCase:
    spec: EngineSpec
    engine: str
    workload: str
    item: WorkloadItem
    batch_size: int = 1


@dataclass
class Plan:
    cases: list[PlannedCase]
    skipped: list[dict[str, str]]
    workloads: list[str]
    engines: list[EngineChoice]


KIND_DEFAULT_WORKLOADS = {
    ("text", "audio"): ("short", "medium", "long"),
    ("text", "text"): ("prompts",),
    ("midi", "audio"): ("piano",),
    ("audio", "text"): ("spoken-short",),
}


def _engine_kind(spec: EngineSpec) -> tuple[str, tuple[str, ...]]:
    """What input an engine takes and its default workloads.

    An ``input_kind`` argument (the command-line engine has one) overrides the class's; an engine
    whose kinds depend on what it connects to (a Wyoming server) answers ``kinds_for(url=...)``
    with ``(input_kind, output_kind)``.
    """
    factory = spec.factory()
    kinds_for = getattr(factory, "kinds_for", None)
    if callable(kinds_for):
        kind, output = kinds_for(**spec.implicit_args())
    else:
        kind = str(getattr(factory, "input_kind", "text"))
        output = str(getattr(factory, "output_kind", "audio"))
    if "input_kind" in spec.params:
        kind = str(spec.params["input_kind"])
    defaults = tuple(getattr(factory, "default_workloads", ()))
    if "input_kind" in spec.params or callable(kinds_for) or not defaults:
        defaults = KIND_DEFAULT_WORKLOADS.get((kind, output), ())
    return kind, defaults


def _usable_engines(request: RunRequest, skipped: list[dict[str, str]]) -> list[EngineChoice]:
    explicit = request.engines is not None
    choices = request.engines if explicit else [EngineChoice(name) for name in DEFAULT_ENGINES]
    assert choices is not None
    unique = {(c.ref, repr(sorted(c.args.items())), repr(c.sweep)): c for c in choices}
    usable = []
    for choice in unique.values():
        reason = EngineSpec(choice.ref, choice.args).unavailable_reason()
        if reason is None:
            usable.append(choice)
        elif explicit:
            raise EngineUnavailable(f"engine {choice.ref!r} is unavailable: {reason}")
        else:
            skipped.append({"engine": choice.ref, "reason": reason})
    if not usable:
        raise EngineUnavailable(
            "no engine can run here: " + "; ".join(f"{s['engine']}: {s['reason']}" for s in skipped)
        )
    return usable


def _device_reason(request: RunRequest, device: str) -> str | None:
    """Why no case can run on ``device``: locally, when this machine lacks it; on Ray, where
    the cases run on the nodes, only a numbered GPU (Ray gives each task the GPUs it asked for,
    seen as ``cuda:0``...). A ``cuda`` case on Ray asks for a GPU; when no node has one it is
    recorded with that reason (:mod:`voxbench.run.ray_executor`), not skipped here."""
    if request.executor != "ray":
        return environment.machine_reason(device)
    if device.startswith("cuda:") and device != "cuda:0":
        return f"{device}: on Ray use --device cuda (a task sees the GPU Ray gives it as cuda:0)"
    return None


def _variants(
    request: RunRequest, choice: EngineChoice, skipped: list[dict[str, str]]
) -> list[tuple[EngineSpec, int]]:
    """Every (spec, batch size) of one engine: devices × batch sizes × swept parameters."""
    factory = EngineSpec(choice.ref, choice.args).factory()
    combos = combinations({**request.sweep, **choice.sweep})
    out: list[tuple[EngineSpec, int]] = []
    for device in request.devices:
        reason = _device_reason(request, device) or devices.engine_reason(factory, device)
        if reason:
            skipped.append({"engine": choice.ref, "device": device, "reason": reason})
            continue
        for batch in request.batch_sizes:
            if batch > 1 and not callable(getattr(factory, "synthesize_batch", None)):
                skipped.append(
                    {
                        "engine": choice.ref,
                        "batch_size": str(batch),
                        "reason": "takes no batches (no synthesize_batch)",
                    }
                )
                continue
            out.extend(
                (EngineSpec(choice.ref, {**choice.args, **combo}, device), batch)
                for combo in combos
            )
    return out


def plan(request: RunRequest) -> Plan:
    """Resolve engines, workloads, sweeps and devices into cases; raise a one-line VoxbenchError
    on bad input. Devices or batch sizes an engine cannot use are skipped with the reason."""
    skipped: list[dict[str, str]] = []
    usable = _usable_engines(request, skipped)
    given: list[Workload] | None = None
    if request.workloads is not None:
        given = [resolve_workload(ref) for ref in dict.fromkeys(request.workloads)]
    cases: list[PlannedCase] = []
    used: set[str] = set()
    for choice in usable:
        base = EngineSpec(choice.ref, choice.args)
        kind, defaults = _engine_kind(base)
        if given is None:
            chosen = [resolve_workload(w) for w in defaults]
        else:
            chosen = [w for w in given if w.kind == kind]
            if not chosen:
                hint = f" (try --workload {defaults[0]})" if defaults else ""
                raise ConfigError(
                    f"engine {choice.ref!r} takes {kind} input, but no {kind} "
                    f"workload was given{hint}"
                )
        name = base.name
        for spec, batch in _variants(request, choice, skipped):
            for w in chosen:
                used.add(w.name)
                cases.extend(PlannedCase(spec, name, w.name, item, batch) for item in w.items)
    for w in given or []:
        if w.name not in used and not skipped:
            raise ConfigError(
                f"workload {w.name!r} is {w.kind} input, which none of the chosen engines takes"
            )
    if not cases:
        reasons = "; ".join(skip_text(s) for s in skipped) or "no engine has a workload it takes"
        raise ConfigError(f"nothing to run: {reasons}")
    return Plan(cases=cases, skipped=skipped, workloads=sorted(used), engines=usable)
