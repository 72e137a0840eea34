"""pytest plugin: a ``voxbench`` fixture for micro-benchmarks in your own test suite.

Registered through the ``pytest11`` entry point, so installing voxbench is enough::

    def test_mel(voxbench):
        mel = voxbench(my_mel, audio, name="mel-2s", audio_seconds=2.0)
        assert mel.shape[0] == 80

The fixture (also ``voxbench.measure(...)``) calls ``fn(*args, **kwargs)`` in a calibrated loop
(:mod:`voxbench.micro.timing`: loops of calls so a sample lasts ≥ 2 ms, warm-up samples, then
measured samples) and returns ``fn``'s result. Its own keywords (``name``, ``audio_seconds``,
``batch_size``, ``device``, ``sync``, ``iterations``, ``warmup``, ``min_sample_ms``,
``max_seconds``) are not passed on: wrap ``fn`` in ``functools.partial`` to pass arguments with
those names.

At the end of the session every measurement becomes one case (engine ``pytest:<node id>``) of
one result document (scenario ``micro``) written to ``--voxbench-output`` (default
``results/<machine>/<run-id>/``); ``--voxbench-store URL`` records it in a store;
``--voxbench-compare BASE`` compares it with a run folder, results.json or stored run id and sets
the exit status to 1 when a case regressed (``--voxbench-threshold``, default 5%).

Inert unless a test uses the fixture: no output, no files. Nothing of voxbench is imported until
then, so collecting a test suite stays as fast as without the plugin.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

DEFAULT_SAMPLES = 20
DEFAULT_WARMUP = 2


@dataclass
class _State:
    """What the session measured, and what happened to it at the end."""

    cases: list[Any] = field(default_factory=list)
    names: set[tuple[str, str]] = field(default_factory=set)
    started: float = field(default_factory=time.perf_counter)
    run_dir: Path | None = None
    stored: str | None = None
    comparison: Any = None
    error: str | None = None


_STATE = pytest.StashKey[_State]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("voxbench", "voxbench micro-benchmarks (the voxbench fixture)")
    group.addoption(
        "--voxbench-output",
        metavar="DIR",
        default="results",
        help="Results root folder; the run goes in DIR/<machine-id>/<run-id>/ [results].",
    )
    group.addoption(
        "--voxbench-store",
        metavar="URL",
        default=None,
        help="Also record the run in this store (a SQLite file or postgresql://...).",
    )
    group.addoption(
        "--voxbench-compare",
        metavar="BASE",
        default=None,
        help="Compare with BASE (run folder, results.json or stored run id); exit status 1 "
        "when a case regressed.",
    )
    group.addoption(
        "--voxbench-threshold",
        metavar="PCT",
        default="5%",
        help="Smallest change --voxbench-compare counts: 5%%, 5 or 0.05 [5%%].",
    )
    group.addoption(
        "--voxbench-iterations",
        metavar="N",
        type=int,
        default=None,
        help=f"Measured samples per benchmark [{DEFAULT_SAMPLES}].",
    )
    group.addoption(
        "--voxbench-machine-id",
        metavar="NAME",
        default=None,
        help="Name of this machine in the results folder (default: host name).",
    )
    group.addoption(
        "--voxbench-disable",
        action="store_true",
        default=False,
        help="Call each benchmarked function once, untimed, and record nothing.",
    )


def pytest_configure(config: pytest.Config) -> None:
    iterations = config.getoption("--voxbench-iterations", default=None)
    if iterations is not None and iterations < 1:
        raise pytest.UsageError("--voxbench-iterations must be at least 1")
    base = config.getoption("--voxbench-compare", default=None)
    if base and ("/" in base or base.endswith(".json")) and not Path(base).exists():
        raise pytest.UsageError(f"--voxbench-compare: no such run folder or file: {base}")
    config.stash[_STATE] = _State()


class VoxbenchFixture:
    """The ``voxbench`` fixture of one test: call it (or :meth:`measure`) to time a function."""

    def __init__(self, config: pytest.Config, nodeid: str) -> None:
        self._config = config
        self._nodeid = nodeid

    def __call__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str | None = None,
        audio_seconds: float | None = None,
        batch_size: int = 1,
        device: str = "cpu",
        sync: Callable[[], None] | None = None,
        iterations: int | None = None,
        warmup: int | None = None,
        min_sample_ms: float = 2.0,
        max_seconds: float | None = 10.0,
        **kwargs: Any,
    ) -> Any:
        """Time ``fn(*args, **kwargs)`` and return its result (from the last call).

        ``name`` tells apart several measurements in one test; ``audio_seconds`` (audio one call
        processes) gives the case rtf and × real time; ``sync`` (e.g. ``torch.cuda.synchronize``)
        runs before each clock read for device code; ``device`` is recorded with the case.
        """
        if self._config.getoption("--voxbench-disable"):
            return fn(*args, **kwargs)
        from voxbench.errors import ConfigError

        state = self._config.stash[_STATE]
        label = name or "call"
        if (self._nodeid, label) in state.names:
            raise ConfigError(
                f"voxbench: {label!r} is measured twice in {self._nodeid}; give each call its "
                "own name="
            )
        if audio_seconds is not None and audio_seconds <= 0:
            raise ConfigError("voxbench: audio_seconds must be above 0")
        if batch_size < 1:
            raise ConfigError("voxbench: batch_size must be at least 1")
        from voxbench.micro.runner import timing_case
        from voxbench.micro.timing import measure

        samples = iterations or self._config.getoption("--voxbench-iterations") or DEFAULT_SAMPLES
        timing = measure(
            lambda: fn(*args, **kwargs),
            samples=samples,
            warmup=DEFAULT_WARMUP if warmup is None else warmup,
            min_sample_ns=int(min_sample_ms * 1e6),
            max_seconds=max_seconds,
            min_samples=min(5, samples),
            sync=sync,
        )
        engine = f"pytest:{self._nodeid}"
        state.names.add((self._nodeid, label))
        state.cases.append(
            timing_case(
                case_id=f"{engine}/{label}/{device}",
                engine=engine,
                workload=label,
                input_id=getattr(fn, "__qualname__", type(fn).__name__),
                input_kind="call",
                timing=timing,
                device=device,
                batch_size=batch_size,
                audio_seconds=audio_seconds,
                meta={"min_sample_ms": min_sample_ms},
            )
        )
        return timing.result

    measure = __call__


@pytest.fixture
def voxbench(request: pytest.FixtureRequest) -> VoxbenchFixture:
    """Time a function in this test: ``voxbench(fn, *args, name=..., audio_seconds=...)``."""
    return VoxbenchFixture(request.config, request.node.nodeid)


def _finish(config: pytest.Config, state: _State) -> bool:
    """Write the document, record it, compare it; True when a case regressed."""
    from voxbench.micro.runner import MicroSettings, capture_environment, new_document
    from voxbench.report import write_report
    from voxbench.results.folder import RunFolder

    samples = config.getoption("--voxbench-iterations") or DEFAULT_SAMPLES
    env = capture_environment(config.getoption("--voxbench-machine-id"))
    doc = new_document(
        engines=list(dict.fromkeys(c.engine for c in state.cases)),
        workloads=list(dict.fromkeys(c.workload for c in state.cases)),
        settings=MicroSettings(samples=samples, warmup=DEFAULT_WARMUP),
        devices=list(dict.fromkeys(c.device for c in state.cases)),
        batch_sizes=sorted({c.batch_size for c in state.cases}),
        argv=["pytest", *config.invocation_params.args],
        environment=env,
    )
    doc.cases = list(state.cases)
    output = Path(config.getoption("--voxbench-output"))
    folder = RunFolder.create(output, doc, started=state.started)
    folder.close()
    write_report(doc, folder.report_path)
    run_dir = folder.path
    state.run_dir = run_dir
    url = config.getoption("--voxbench-store")
    if url:
        from voxbench.results.store import open_store

        with open_store(url) as store:
            store.add(doc, source=str(run_dir.resolve()))
        state.stored = url
    base = config.getoption("--voxbench-compare")
    if not base:
        return False
    from voxbench.analysis.compare import compare, parse_threshold
    from voxbench.results.store.io import resolve_run

    threshold = parse_threshold(config.getoption("--voxbench-threshold"))
    base_doc, base_label = resolve_run(base, url)
    state.comparison = compare(
        base_doc, doc, threshold=threshold, labels=(base_label, str(run_dir))
    )
    return bool(state.comparison.regressed)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is None or not state.cases:
        return
    from voxbench.errors import VoxbenchError

    try:
        regressed = _finish(session.config, state)
    except VoxbenchError as exc:
        state.error = str(exc)
        regressed = True
    except OSError as exc:
        state.error = f"cannot write the results: {exc}"
        regressed = True
    if regressed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None or not state.cases:
        return
    tr = terminalreporter
    tr.section("voxbench")
    for case in state.cases:
        lat = case.latency_ms
        ci = f" (CI95 {lat.ci95[0]:.4g}–{lat.ci95[1]:.4g})" if lat and lat.ci95 else ""
        rtfx = f", {case.rtfx:.1f}× real time" if case.rtfx else ""
        median = f"{lat.median:.4g} ms{ci}" if lat else "no samples"
        tr.write_line(f"{case.id}: median {median}, n={case.iterations}{rtfx}")
    if state.run_dir is not None:
        tr.write_line(f"voxbench: results in {state.run_dir / 'results.json'}")
    if state.stored:
        tr.write_line(f"voxbench: recorded in the store {state.stored}")
    if state.comparison is not None:
        from voxbench.analysis.compare import markdown

        tr.write_line("")
        tr.write(markdown(state.comparison))
        if state.comparison.regressed:
            tr.write_line("voxbench: a benchmark regressed: exit status 1", red=True, bold=True)
    if state.error:
        tr.write_line(f"voxbench: error: {state.error}", red=True, bold=True)
