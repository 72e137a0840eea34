"""How cases and load levels are named: the key two runs are matched on, and the key a load
level is stored and exported under.

A case key is ``engine/workload/input_id[/params][/batch=N]/device``, parameters sorted by name
and written ``k=v`` joined by commas, empty parts left out: the same text as a single-scenario
``Case.id``. A load level's key is ``load/<workload>/<level label>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voxbench.results.document import Case, LoadLevel, LoadResult


def case_id(
    engine: str,
    workload: str,
    input_id: str,
    params: Mapping[str, Any],
    batch_size: int,
    device: str,
    ignore: frozenset[str] = frozenset(),
) -> str:
    """The key of one engine × input × parameters × batch × device, leaving out the parameters
    named in ``ignore`` (to match two settings of one engine)."""
    p = ",".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in ignore)
    b = f"batch={batch_size}" if batch_size > 1 else ""
    return "/".join(x for x in (engine, workload, input_id, p, b, device) if x)


def case_key(case: Case, ignore: frozenset[str] = frozenset()) -> str:
    """The stable key two runs' cases are matched on (compare, aggregate): :func:`case_id` of
    the case's fields, so it holds for cases whose ``id`` was written another way (micro)."""
    return case_id(
        case.engine,
        case.workload,
        case.input_id,
        case.params,
        case.batch_size,
        case.device,
        ignore,
    )


def level_key(workload: str, label: str) -> str:
    """The key of one load level: ``load/<workload>/<label>``."""
    return f"load/{workload}/{label}"


def keyed_levels(load: LoadResult | None) -> list[tuple[str, LoadLevel]]:
    """A load run's levels with their keys, in run order; empty for a run without load."""
    if load is None:
        return []
    return [(level_key(load.workload, lv.label), lv) for lv in load.levels]
