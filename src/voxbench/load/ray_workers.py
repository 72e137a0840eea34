"""``voxbench load --executor ray --workers N``: one level's open-loop schedule sent by N Ray actors.

One generator process keeps its schedule up to a few thousand requests per second (one core);
beyond that, or beyond what one machine's network can carry, the load must come from several
processes on several machines without changing what is offered or how it is summarised:

* **One schedule.** The lead draws the level's intended send times once
  (:func:`~voxbench.load.schedule.intended_offsets`, the same seed as one generator) and deals
  request ``i`` to worker ``i mod N`` (:func:`share`), with the body one generator would have
  sent it (:func:`worker_target`). The offered process is exactly one generator's.
* **One start.** The lead picks a wall-clock time :data:`START_AHEAD_S` ahead and sends it with
  every share; each actor converts it once to its own monotonic clock and runs voxbench's own
  open-loop client (:func:`~voxbench.load.client.run_open`) from there. Every time an actor
  records is then seconds from the common start. On one machine the workers' starts agree to
  the microseconds it takes to open the client; across machines, to their wall clocks (NTP).
* **Raw records, merged.** Each actor returns its raw :class:`RequestRecord` list; the lead
  merges all of them, in intended order, into one list and summarises the level from it
  (:func:`~voxbench.load.metrics.summarize_level`): one set of percentiles over every request,
  never an average of the workers' percentiles.
* **Saturation per worker and for the whole.** Each worker's own schedule lag and sent rate
  are judged by the same rules as one generator's (:func:`~voxbench.load.metrics.generator_reasons`)
  and kept in the level's ``workers``; one worker that fell behind makes the level saturated
  even when the merged lag hides it among the others (:func:`judge_workers`).

Ray is joined or started by :func:`voxbench.run.ray_cluster.connected`, as for ``run``, and
only when asked for; without it the one-line :data:`RAY_MISSING` error says how to install it.
Only open-loop (``--rate``) levels run here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

from voxbench.errors import ConfigError, VoxbenchError
from voxbench.load.client import RequestRecord, Target
from voxbench.results.document import LoadLevel, LoadWorker
from voxbench.run.ray_cluster import connected
from voxbench.run.ray_cluster import import_ray as import_ray
from voxbench.run.request import RAY_HINT, RayOptions

RAY_MISSING = RAY_HINT
START_AHEAD_S = 1.0
"""How far ahead of the lead's clock the common start is set: time for every actor to get its
share before the first request is due (an actor call takes about a millisecond; a share of a
million offsets a few more)."""
READY_TIMEOUT_S = 120.0
"""How long the actors may take to start (a Ray worker process is about a second each)."""


def share(offsets: list[float], worker: int, workers: int) -> list[float]:
    """Worker ``worker``'s requests of the schedule: every ``workers``-th one from ``worker``."""
    return offsets[worker::workers]


def worker_target(target: Target, worker: int, workers: int) -> Target:
    """``target`` with the bodies worker ``worker`` sends in turn, so that its ``j``-th request
    (request ``i = worker + j * workers`` of the schedule) carries body ``i mod K``, as from one
    generator. The bodies repeat after ``K / gcd(K, workers)`` of its requests;
    :func:`global_item` turns a record's index into them back into the target's."""
    k = len(target.bodies)
    period = k // math.gcd(k, workers)
    bodies = tuple(target.bodies[(worker + j * workers) % k] for j in range(period))
    return dataclasses.replace(target, bodies=bodies)


def global_item(item: int, worker: int, workers: int, bodies: int) -> int:
    """The target's body index of a record whose ``item`` indexes :func:`worker_target`'s."""
    return item if item < 0 else (worker + item * workers) % bodies


@dataclass
class WorkerRun:
    """What one actor sent in one level: its raw records (seconds from the common start), the
    seconds from the start to its last answer, how long before the start its share arrived
    (negative: late), and its node's address."""

    worker: int
    node: str
    records: list[RequestRecord]
    wall_s: float
    start_margin_s: float


class Generator:
    """A load generator in a Ray actor (``ray.remote(Generator)``): it sends its share of each
    level with voxbench's open-loop client. A plain class at module level, so that Ray's worker
    processes import it by name."""

    def __init__(self, worker: int, workers: int) -> None:
        self.worker, self.workers = worker, workers

    def node(self) -> str:
        """The address of the Ray node this actor runs on."""
        import ray

        return str(ray.util.get_node_ip_address())

    def run(
        self, target: Target, offsets: list[float], start_wall: float, bodies: int
    ) -> WorkerRun:
        """Send request ``j`` of ``offsets`` at ``start_wall + offsets[j]`` (wall clock), timed on
        this process's monotonic clock; the records, with items indexing the whole target's
        ``bodies`` (``target`` is :func:`worker_target`'s cut of it)."""
        import asyncio
        import gc

        from voxbench.load.client import run_open

        margin = start_wall - time.time()
        # As client.run_level: objects that exist now are out of the collector's way while the
        # level runs (a full collection would stop sending for tens of ms).
        gc.collect()
        gc.freeze()
        start = time.monotonic() + (start_wall - time.time())  # the common start, converted once

        async def level() -> list[RequestRecord]:
            # run_open starts its clock at monotonic() + lead_s, read microseconds after this.
            return await run_open(target, offsets, lead_s=start - time.monotonic())

        runner: Any = asyncio.run
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            pass
        try:
            records = runner(level())
        finally:
            gc.unfreeze()
        wall = time.monotonic() - start
        for rec in records:
            rec.item = global_item(rec.item, self.worker, self.workers, bodies)
        return WorkerRun(self.worker, self.node(), records, wall, margin)


class RayLoad:
    """N generator actors on a Ray cluster, for all the levels of one load run.

    Connects to ``address`` (None: ``RAY_ADDRESS`` when set, else starts a local Ray;
    :func:`voxbench.run.ray_cluster.connected`, with ``runtime_env``), checks that the cluster
    has a CPU per worker, starts the actors (one CPU each, so that no two share a core; spread
    over the nodes) and waits for them; leaving the ``with`` block ends them, and a Ray started
    here."""

    def __init__(
        self,
        workers: int,
        address: str | None = None,
        runtime_env: dict[str, Any] | None = None,
    ) -> None:
        if workers < 1:
            raise ConfigError("--workers must be at least 1")
        self.workers, self.address, self.runtime_env = workers, address, runtime_env
        self.actors: list[Any] = []
        self.nodes: list[str] = []
        self._ray: contextlib.ExitStack | None = None

    def __enter__(self) -> RayLoad:
        self._ray = contextlib.ExitStack()
        ray = self._ray.enter_context(
            connected(RayOptions(address=self.address, runtime_env=self.runtime_env))
        )
        try:
            # Against the cluster's total: an actor asking for more than any node has would wait
            # for ever (CPUs busy now are waited for, up to READY_TIMEOUT_S).
            cpus = ray.cluster_resources().get("CPU", 0.0)
            if cpus < self.workers:
                raise ConfigError(
                    f"--workers {self.workers} needs {self.workers} CPUs on the Ray cluster; "
                    f"it has {cpus:g}"
                )
            actor = ray.remote(num_cpus=1, max_restarts=0, scheduling_strategy="SPREAD")(Generator)
            self.actors = [actor.remote(w, self.workers) for w in range(self.workers)]
            try:
                self.nodes = ray.get(
                    [a.node.remote() for a in self.actors], timeout=READY_TIMEOUT_S
                )
            except ray.exceptions.GetTimeoutError:
                raise VoxbenchError(
                    f"the {self.workers} Ray load workers did not start in {READY_TIMEOUT_S:g} s"
                ) from None
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        ray = import_ray()
        for a in self.actors:
            ray.kill(a)
        self.actors = []
        if self._ray is not None:
            self._ray.close()  # shuts down a Ray started here
            self._ray = None

    def run_level(
        self, target: Target, offsets: list[float], *, timeout_s: float
    ) -> tuple[list[WorkerRun], float]:
        """Every worker's share of ``offsets`` from one common start; each worker's run (in
        worker order) and the seconds from the start to the last answer of any of them.
        ``timeout_s``: how long past the last intended send to wait for the workers."""
        ray = import_ray()
        n = self.workers
        start_wall = time.time() + START_AHEAD_S
        calls = []
        for w, actor in enumerate(self.actors):
            mine = worker_target(target, w, n)
            calls.append(
                actor.run.remote(mine, share(offsets, w, n), start_wall, len(target.bodies))
            )
        wait = START_AHEAD_S + (offsets[-1] if offsets else 0.0) + timeout_s + 60.0
        try:
            runs: list[WorkerRun] = ray.get(calls, timeout=wait)
        except ray.exceptions.RayError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise VoxbenchError(
                f"a Ray load worker failed: {type(exc).__name__}: {first}"[:300]
            ) from None
        return runs, max((r.wall_s for r in runs), default=0.0)


def merge(runs: list[WorkerRun]) -> list[RequestRecord]:
    """Every worker's raw records in one list, in intended order (as one generator's are)."""
    return sorted((rec for run in runs for rec in run.records), key=lambda r: r.due)


def _rate(times: list[float]) -> float | None:
    """Events per second between the first and the last of ``times`` (as metrics computes the
    level's sent rate); None without a spread."""
    spread = max(times) - min(times) if len(times) > 1 else 0.0
    return (len(times) - 1) / spread if spread > 0 else None


def worker_figures(
    run: WorkerRun, level: LoadLevel, *, warmup_s: float, max_lag_ms: float
) -> LoadWorker:
    """One worker's measured requests, scheduled and sent rate, schedule lag and whether it
    kept its share of the schedule, by the rules one generator is judged by."""
    from voxbench.load.metrics import generator_reasons, percentiles

    measured = [r for r in run.records if r.due >= warmup_s]
    sent = [r.sent for r in measured if r.sent >= 0]
    lag = percentiles([(r.sent - r.due) * 1000 for r in measured if r.sent >= 0])
    mine = LoadLevel(
        label=level.label, kind=level.kind, value=level.value, sent_rate=_rate(sent), lag_ms=lag
    )
    scheduled = _rate([r.due for r in measured])
    reasons = generator_reasons(mine, scheduled_rate=scheduled, max_lag_ms=max_lag_ms)
    return LoadWorker(
        worker=run.worker,
        node=run.node,
        requests=len(measured),
        warmup_requests=len(run.records) - len(measured),
        scheduled_rate=scheduled,
        sent_rate=mine.sent_rate,
        lag_ms=lag,
        start_margin_ms=run.start_margin_s * 1000,
        saturated=bool(reasons),
        reasons=reasons,
    )


def judge_workers(
    level: LoadLevel,
    runs: list[WorkerRun],
    *,
    warmup_s: float,
    max_lag_ms: float,
    max_error_rate: float,
    min_duration_s: float,
) -> None:
    """Add each worker's figures to ``level`` (summarised from the merged records) and judge
    the generators: the level is saturated when the merged records say so (the existing rules)
    or any one worker fell behind its share; its validity then says which."""
    from voxbench.load.metrics import generator_reasons, level_reasons
    from voxbench.results.validity import verdict

    level.workers = [
        worker_figures(run, level, warmup_s=warmup_s, max_lag_ms=max_lag_ms) for run in runs
    ]
    behind = [f"worker {w.worker}: {reason}" for w in level.workers for reason in w.reasons]
    if not behind:
        return
    merged = [r.due for run in runs for r in run.records if r.due >= warmup_s]
    generator = generator_reasons(level, scheduled_rate=_rate(merged), max_lag_ms=max_lag_ms)
    level.saturated = True
    level.validity = verdict(
        level_reasons(
            level,
            generator + behind,
            max_error_rate=max_error_rate,
            min_duration_s=min_duration_s,
        )
    )
