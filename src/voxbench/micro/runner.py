"""Plan and run micro-benchmarks, and write them as an ordinary result document.

A micro run is a result document with ``scenario = "micro"`` in the usual run folder
``<output>/<machine-id>/<run-id>/`` (``results.json``, ``report.md``), so ``voxbench report``,
``compare``, ``history`` and the store read it like any run. One case per kernel × size ×
backend × device: engine ``micro:<kernel>``, workload the size label (``2s``,
``vocab32k-b8``), params ``{"backend": ...}``, mode ``in-process``. ``meta`` holds the
reference backend, the speed-up against it and the numerical agreement with it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from voxbench.errors import ConfigError
from voxbench.micro.kernels import (
    BACKENDS,
    FAMILIES,
    GPU_BACKENDS,
    KERNELS,
    Kernel,
    Size,
    backend_version,
)
from voxbench.micro.timing import Timing, measure
from voxbench.results.document import (
    Case,
    Environment,
    ErrorRecord,
    ResultDocument,
    Samples,
    Summary,
)
from voxbench.results.folder import RunFolder
from voxbench.results.validity import MIN_SAMPLES, case_validity
from voxbench.run.request import RayOptions


@dataclass(frozen=True)
class MicroSettings:
    """How each case is timed (see :mod:`voxbench.micro.timing`)."""

    samples: int = 30
    warmup: int = 3
    min_sample_ms: float = 2.0
    max_case_seconds: float = 5.0
    min_samples: int = MIN_SAMPLES  # a case stopped by max_case_seconds before this is invalid


FULL = MicroSettings()
QUICK = MicroSettings(samples=10, warmup=1, min_sample_ms=1.0, max_case_seconds=0.25)


@dataclass
class MicroRequest:
    """What to run: kernel names or families (None: all), backends (None: all installed; the
    reference backend always runs, as the speed-ups' denominator), devices, and settings."""

    kernels: list[str] | None = None
    backends: list[str] | None = None
    devices: list[str] = field(default_factory=lambda: ["cpu", "cuda"])
    quick: bool = False
    samples: int | None = None
    warmup: int | None = None
    min_sample_ms: float | None = None
    threads: int = 1
    output: Path = Path("results")
    machine_id: str | None = None
    argv: list[str] = field(default_factory=list)
    executor: str = "local"  # or "ray": each case a Ray task (voxbench.micro.ray_micro)
    ray: RayOptions = field(default_factory=RayOptions)

    def settings(self) -> MicroSettings:
        base = QUICK if self.quick else FULL
        samples = self.samples if self.samples is not None else base.samples
        if samples < 1:
            raise ConfigError("--iterations must be at least 1")
        warmup = self.warmup if self.warmup is not None else base.warmup
        if warmup < 0:
            raise ConfigError("--warmup cannot be negative")
        min_ms = self.min_sample_ms if self.min_sample_ms is not None else base.min_sample_ms
        if min_ms <= 0:
            raise ConfigError("--min-sample-ms must be above 0")
        if self.threads < 0:
            raise ConfigError("--threads cannot be negative (0: each library's default)")
        if self.executor not in ("local", "ray"):
            raise ConfigError(f"--executor must be local or ray, not {self.executor!r}")
        if self.executor == "ray":
            from voxbench.run.ray_cluster import import_ray

            import_ray()  # without Ray: one line saying how to install it
        return MicroSettings(
            samples=samples,
            warmup=warmup,
            min_sample_ms=min_ms,
            max_case_seconds=base.max_case_seconds,
            min_samples=min(base.min_samples, samples),
        )


@dataclass(frozen=True)
class MicroCase:
    """One planned case: a kernel at one size on one backend and device."""

    kernel: Kernel
    size: Size
    backend: str
    device: str
    reference: str

    @property
    def engine(self) -> str:
        return f"micro:{self.kernel.name}"

    @property
    def params(self) -> dict[str, Any]:
        return {"backend": self.backend, **self.kernel.params(self.size)}

    @property
    def id(self) -> str:
        return "/".join(
            (self.engine, self.size.workload, self.size.input_id, self.backend, self.device)
        )

    @property
    def is_reference(self) -> bool:
        return self.backend == self.reference and self.device == "cpu"


@dataclass
class MicroPlan:
    cases: list[MicroCase]
    skipped: list[dict[str, str]]
    kernels: list[str]


INSTALL_HINT = {
    "scipy": "pip install scipy",
    "torch": "pip install torch",
    "torchaudio": "pip install torchaudio",
    "librosa": "pip install librosa",
}


def resolve_kernels(names: Sequence[str] | None) -> list[Kernel]:
    """Kernel names or family names (audio, sampling, codes) → kernels; ConfigError otherwise."""
    if not names:
        return list(KERNELS.values())
    chosen: dict[str, Kernel] = {}
    for raw in names:
        name = raw.strip().lower().replace("-", "_")
        if name in KERNELS:
            chosen[name] = KERNELS[name]
        elif name in FAMILIES:
            chosen.update((k, KERNELS[k]) for k in FAMILIES[name])
        else:
            known = ", ".join([*KERNELS, *FAMILIES])
            raise ConfigError(f"unknown kernel {raw!r} (choose from {known})")
    return list(chosen.values())


def _check_backends(names: Sequence[str] | None) -> list[str] | None:
    if not names:
        return None
    out = []
    for raw in names:
        name = raw.strip().lower()
        if name not in BACKENDS:
            raise ConfigError(f"unknown backend {raw!r} (choose from {', '.join(BACKENDS)})")
        out.append(name)
    return list(dict.fromkeys(out))


def backend_reason(backend: str, device: str = "cpu", *, here: bool = True) -> str | None:
    """None when ``backend`` can run on ``device`` here, else why not (one line). ``here``
    False (``--executor ray``): whether this machine has the device is not asked; a Ray node
    with a GPU runs the case, or the case is skipped with the reason no node could take it."""
    if backend != "numpy" and importlib.util.find_spec(backend) is None:
        return f"{backend} not installed ({INSTALL_HINT[backend]})"
    if device == "cpu":
        return None
    if backend not in GPU_BACKENDS:
        return f"{backend} runs on the CPU only"
    if not here:
        return None
    import torch

    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build (no CUDA)"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device"
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        return f"no {device} here ({torch.cuda.device_count()} CUDA device(s))"
    return None


def plan_micro(request: MicroRequest) -> MicroPlan:
    """Kernels × sizes × backends × devices → cases; what cannot run is skipped with the reason
    (once per backend and device). One-line ConfigError for bad names or an empty plan."""
    kernels = resolve_kernels(request.kernels)
    wanted = _check_backends(request.backends)
    devices = list(dict.fromkeys(request.devices)) or ["cpu"]
    skipped: list[dict[str, str]] = []
    reasons: dict[tuple[str, str], str | None] = {}

    def reason(backend: str, device: str) -> str | None:
        if (backend, device) not in reasons:
            why = backend_reason(backend, device, here=request.executor != "ray")
            reasons[(backend, device)] = why
            # once per backend: a missing library on the CPU; a missing GPU for GPU backends
            said = device != "cpu" and reason(backend, "cpu") is not None
            if why and not said and (device == "cpu" or backend in GPU_BACKENDS):
                skipped.append({"engine": f"micro ({backend})", "device": device, "reason": why})
        return reasons[(backend, device)]

    cases: list[MicroCase] = []
    for kernel in kernels:
        reference = kernel.reference
        if reason(reference, "cpu"):
            reference = "numpy"  # the fallback reference; the skip above says why
        backends = [b for b in kernel.backends if wanted is None or b in wanted or b == reference]
        for size in kernel.sizes(request.quick):
            # the reference on the CPU first: every other case is compared with its output
            cases.append(MicroCase(kernel, size, reference, "cpu", reference))
            for device in devices:
                for backend in backends:
                    if device == "cpu" and backend == reference:
                        continue
                    if device != "cpu" and backend not in GPU_BACKENDS:
                        continue  # CPU libraries; their CPU cases are the comparison
                    if reason(backend, device) is None:
                        cases.append(MicroCase(kernel, size, backend, device, reference))
    if not any(c.device in devices for c in cases):  # only the CPU references, not asked for
        why = "; ".join(f"{s['engine']} on {s['device']}: {s['reason']}" for s in skipped)
        raise ConfigError(f"nothing to run on {', '.join(devices)}{': ' + why if why else ''}")
    return MicroPlan(cases=cases, skipped=skipped, kernels=[k.name for k in kernels])


def _median(values: Iterable[float]) -> float | None:
    vals = sorted(values)
    if not vals:
        return None
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def timing_case(
    *,
    case_id: str,
    engine: str,
    workload: str,
    input_id: str,
    input_kind: str,
    timing: Timing,
    params: dict[str, Any] | None = None,
    device: str = "cpu",
    batch_size: int = 1,
    audio_seconds: float | None = None,
    input_meta: dict[str, Any] | None = None,
    engine_info: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Case:
    """A result-document case from a :class:`Timing`: raw per-call samples, their summary
    (:func:`voxbench.results.stats.summarize`), rtf/rtfx when the call processes audio, items/s."""
    from voxbench.results.stats import summarize

    lat = timing.per_call_ms
    case = Case(
        id=case_id,
        engine=engine,
        workload=workload,
        input_id=input_id,
        input_kind=input_kind,
        input_meta=input_meta or {},
        params=params or {},
        device=device,
        batch_size=batch_size,
        mode="in-process",
        iterations=len(lat),
        warmup=timing.warmup_calls,
        engine_info=engine_info or {},
        meta={
            "loops_per_sample": timing.loops,
            "calibration_calls": timing.calibration_calls,
            **(meta or {}),
        },
        samples=Samples(latency_ms=list(lat), cpu_s=list(timing.cpu_per_call_s)),
    )
    summary = summarize(lat)
    if summary is None:
        return case
    case.latency_ms = Summary(**summary)
    if summary["median"] > 0:
        case.items_per_second = batch_size / (summary["median"] / 1000)
    if audio_seconds:
        case.audio_seconds = audio_seconds
        case.samples.audio_seconds = [audio_seconds] * len(lat)
        case.rtf = _median(ms / 1000 / audio_seconds for ms in lat)
        case.rtfx = _median(audio_seconds / (ms / 1000) for ms in lat if ms > 0)
        case.ms_per_audio_second = case.rtf * 1000 if case.rtf is not None else None
    case.cpu_utilization = _median(
        cpu / (ms / 1000) for cpu, ms in zip(timing.cpu_per_call_s, lat, strict=True) if ms > 0
    )
    return case


def _failed_case(mc: MicroCase, exc: BaseException, phase: Literal["load", "measure"]) -> Case:
    tb = traceback.extract_tb(exc.__traceback__)
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return Case(
        id=mc.id,
        engine=mc.engine,
        workload=mc.size.workload,
        input_id=mc.size.input_id,
        input_kind=mc.size.input_kind,
        input_meta=_input_meta(mc),
        params=mc.params,
        device=mc.device,
        batch_size=mc.size.batch,
        mode="in-process",
        iterations=0,
        warmup=0,
        errors=[
            ErrorRecord(
                phase=phase,
                type=type(exc).__name__,
                message=message[:500],
                where=f"{tb[-1].filename}:{tb[-1].lineno}" if tb else "",
            )
        ],
        error_count=1,
        meta={"reference": mc.reference},
    )


def _input_meta(mc: MicroCase) -> dict[str, Any]:
    from voxbench.micro.kernels import SAMPLING_SETTINGS

    return {**mc.size.settings, **SAMPLING_SETTINGS.get(mc.kernel.name, {})}


def measure_micro_case(
    mc: MicroCase, settings: MicroSettings, reference_output: Any | None
) -> tuple[Case, Any]:
    """Build, time and check one case; returns the case and its output as numpy (None when the
    kernel failed: the failure is recorded in the case, never raised)."""
    from voxbench.micro.kernels import agreement

    try:
        prepared = mc.kernel.build(mc.backend, mc.device, mc.size)
    except Exception as exc:
        return _failed_case(mc, exc, "load"), None
    try:
        timing = measure(
            prepared.call,
            samples=settings.samples,
            warmup=settings.warmup,
            min_sample_ns=int(settings.min_sample_ms * 1e6),
            max_seconds=settings.max_case_seconds,
            min_samples=settings.min_samples,
            sync=prepared.sync,
        )
        output = prepared.to_numpy(timing.result)
    except Exception as exc:
        return _failed_case(mc, exc, "measure"), None
    meta: dict[str, Any] = {"reference": mc.reference, "summary": mc.kernel.summary}
    if mc.is_reference:
        meta.update({"max_abs_error": 0.0, "max_rel_error": 0.0, "mismatched": 0})
    elif reference_output is not None:
        meta.update(agreement(output, reference_output))
    case = timing_case(
        case_id=mc.id,
        engine=mc.engine,
        workload=mc.size.workload,
        input_id=mc.size.input_id,
        input_kind=mc.size.input_kind,
        timing=timing,
        params=mc.params,
        device=mc.device,
        batch_size=mc.size.batch,
        audio_seconds=mc.size.audio_seconds,
        input_meta=_input_meta(mc),
        engine_info={
            "backend": mc.backend,
            "version": backend_version(mc.backend),
            **prepared.info,
        },
        meta=meta,
    )
    return case, output


def _reference_key(case: Case) -> tuple[str, str, str, str, str | None]:
    rest = {k: v for k, v in case.params.items() if k != "backend"}
    machine = (case.meta.get("node") or {}).get("machine_id")  # on Ray: the node's machine
    return (case.engine, case.workload, case.input_id, repr(sorted(rest.items())), machine)


def fill_speedups(cases: list[Case]) -> None:
    """``meta.speedup_vs_reference`` = the reference's median / this case's median (> 1: faster
    than the reference), against the reference backend on the CPU at the same kernel and size,
    measured on the same machine (on Ray a case whose reference ran on another node has none)."""
    refs: dict[tuple[str, str, str, str, str | None], float] = {}
    for c in cases:
        ref = c.meta.get("reference")
        if c.params.get("backend") == ref and c.device == "cpu" and c.latency_ms:
            refs[_reference_key(c)] = c.latency_ms.median
    for c in cases:
        ref_ms = refs.get(_reference_key(c))
        if c.latency_ms and ref_ms and c.latency_ms.median > 0:
            c.meta["speedup_vs_reference"] = ref_ms / c.latency_ms.median
        else:
            c.meta["speedup_vs_reference"] = None


def new_document(
    *,
    engines: list[str],
    workloads: list[str],
    settings: MicroSettings,
    devices: list[str],
    batch_sizes: list[int],
    argv: list[str],
    environment: Environment,
    skipped: list[dict[str, str]] | None = None,
) -> ResultDocument:
    """An empty micro result document (scenario ``micro``, in-process) for this machine."""
    from voxbench import __version__
    from voxbench.results.document import EngineRef, RunConfig
    from voxbench.results.folder import new_run_id, now_iso

    return ResultDocument(
        scenario="micro",
        run_id=new_run_id(),
        created_at=now_iso(),
        voxbench_version=__version__,
        environment=environment,
        config=RunConfig(
            engines=[EngineRef(ref=e) for e in engines],
            workloads=workloads,
            iterations=settings.samples,
            warmup=settings.warmup,
            mode="in-process",
            timeout_s=None,
            stream="off",
            devices=devices,
            batch_sizes=batch_sizes,
            save_audio=False,
            argv=argv,
        ),
        skipped=skipped or [],
    )


def capture_environment(machine_id: str | None) -> Environment:
    """The machine's environment, with the micro backends' versions among its packages."""
    from voxbench.run import environment

    env = environment.capture(machine_id)
    for backend in BACKENDS:
        version = backend_version(backend)
        if version:
            env.packages.setdefault(backend, version)
    if importlib.util.find_spec("soxr") is not None:
        from importlib import metadata

        env.packages.setdefault("soxr", metadata.version("soxr"))
    return env


@contextlib.contextmanager
def thread_limits(threads: int, backends: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Hold every backend to ``threads`` threads while the run lasts (0: leave the libraries'
    defaults): torch's intra-op threads, and the BLAS and OpenMP pools through threadpoolctl.

    One thread is the default because libraries' pools fight on a small machine: after a BLAS
    call OpenBLAS's workers spin, waiting for more work, and torch's OpenMP workers do the same;
    a kernel of the other library then waits scheduler ticks for its own threads (measured on a
    2-core machine: a 0.03 ms torch call took 16 ms when interleaved with numpy matrix products).
    The libraries are imported first, since threadpoolctl limits only loaded pools. Yields what
    was set, for ``engine_info``.
    """
    if threads == 0:
        yield {"threads": "library default"}
        return
    used = set(backends)
    for backend in ("numpy", "scipy", "librosa", "torch", "torchaudio"):
        if backend in used and importlib.util.find_spec(backend) is not None:
            importlib.import_module(backend)
            if backend == "librosa":
                importlib.import_module("librosa.feature")
    info: dict[str, Any] = {"threads": threads}
    torch = sys.modules.get("torch")
    torch_before = torch.get_num_threads() if torch is not None else None
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=threads))
        except ImportError:
            info["thread_note"] = "threadpoolctl not installed: BLAS/OpenMP pools not limited"
        if torch is not None:
            torch.set_num_threads(threads)
        try:
            yield info
        finally:
            if torch is not None and torch_before is not None:
                torch.set_num_threads(torch_before)


MicroProgress = Callable[[MicroCase, bool], None]


def run_micro(
    request: MicroRequest,
    the_plan: MicroPlan,
    progress: MicroProgress = lambda case, done: None,
) -> tuple[ResultDocument, Path]:
    """Measure every planned case and write the run folder; returns the document and folder.

    ``results.json`` is rewritten after every case; Ctrl-C closes the folder as interrupted.
    """
    folder = start_micro(request, the_plan)
    return measure_micro(folder, request, the_plan, progress), folder.path


def recorded_request(request: MicroRequest) -> dict[str, Any]:
    """The request as JSON, in the document's ``config.request``: what --resume re-plans with."""
    from dataclasses import asdict

    return {**asdict(request), "output": str(request.output), "ray": request.ray.record()}


def resume_request(folder: RunFolder) -> MicroRequest:
    """The request a micro run was made with, from its document, writing into the same folder;
    one-line ConfigError when the document does not record it (schema before 1.7)."""
    from dataclasses import fields

    rec = folder.doc.config.request if folder.doc.config is not None else None
    if not rec:
        raise ConfigError(
            f"--resume: {folder.path} does not record its request (schema "
            f"{folder.doc.schema_version}); run it again instead"
        )
    known = {f.name for f in fields(MicroRequest)} - {"output", "machine_id", "ray"}
    return MicroRequest(
        **{k: v for k, v in rec.items() if k in known},
        ray=RayOptions.from_record(rec.get("ray")),
        output=folder.path.parent.parent,
        machine_id=folder.doc.environment.machine_id,
    )


def reference_output(mc: MicroCase) -> Any | None:
    """The output of ``mc``'s kernel on its reference backend, called once (not timed): what a
    resumed run compares the cases with whose reference was measured before; None on failure."""
    try:
        prepared = mc.kernel.build(mc.reference, "cpu", mc.size)
        return prepared.to_numpy(prepared.call())
    except Exception:
        return None


def start_micro(request: MicroRequest, the_plan: MicroPlan) -> RunFolder:
    """Validate the settings, capture the machine and create the run folder."""
    settings = request.settings()
    doc = new_document(
        engines=[f"micro:{k}" for k in the_plan.kernels],
        workloads=list(dict.fromkeys(c.size.workload for c in the_plan.cases)),
        settings=settings,
        devices=list(dict.fromkeys(c.device for c in the_plan.cases)),
        batch_sizes=sorted({c.size.batch for c in the_plan.cases}),
        argv=request.argv,
        environment=capture_environment(request.machine_id),
        skipped=the_plan.skipped,
    )
    assert doc.config is not None
    doc.config.request = recorded_request(request)
    return RunFolder.create(request.output, doc)


def planned_on_disk(folder: RunFolder, the_plan: MicroPlan) -> set[str]:
    """Track ``the_plan``'s cases in ``folder`` and save it before the first is measured (a
    kill then says what is missing); the ids already measured (some, on ``--resume``)."""
    doc = folder.doc
    folder.track([mc.id for mc in the_plan.cases], lambda: (c.id for c in doc.cases))
    folder.save()
    return {c.id for c in doc.cases}


def measure_micro(
    folder: RunFolder,
    request: MicroRequest,
    the_plan: MicroPlan,
    progress: MicroProgress = lambda case, done: None,
) -> ResultDocument:
    """Every planned case ``folder`` lacks into it (all for a new run; the missing ones on
    ``--resume``), saved after each in plan order, speed-ups filled as they come."""
    settings = request.settings()
    doc = folder.doc
    order = {mc.id: i for i, mc in enumerate(the_plan.cases)}
    done = planned_on_disk(folder, the_plan)
    if request.executor == "ray":  # placed by the caller (api): voxbench.micro.ray_micro
        raise ConfigError("measure_micro runs here; for --executor ray call api.micro_bench")
    references: dict[tuple[str, str, str], Any] = {}
    backends = {c.backend for c in the_plan.cases}
    with (
        folder.measuring(len(the_plan.cases), lambda: len(doc.cases)),
        thread_limits(request.threads, backends) as threads,
    ):
        for mc in the_plan.cases:
            if mc.id in done:
                continue
            progress(mc, False)
            key = (mc.kernel.name, mc.size.workload, mc.size.input_id)
            if not mc.is_reference and key not in references:  # reference measured before resume
                references = {key: reference_output(mc)}
            case, output = measure_micro_case(mc, settings, references.get(key))
            case.engine_info.update(threads)
            case.validity = case_validity(case)
            if mc.is_reference:
                references = {key: output}  # cases are grouped by kernel and size
            doc.cases.append(case)
            doc.cases.sort(key=lambda c: order.get(c.id, len(order)))
            fill_speedups(doc.cases)
            folder.save()
            progress(mc, True)
    return doc
