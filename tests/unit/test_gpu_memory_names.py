"""GPU memory from torch's allocator and from NVML are two figures under two names, in the
document, the catalogue and the store; documents of schema 1.3 and before still load."""

from __future__ import annotations

import pytest

from voxbench.results.document import Case
from voxbench.results.metrics import BY_NAME
from voxbench.results.store import schema

BASE = {
    "id": "c",
    "engine": "e",
    "workload": "w",
    "input_id": "i",
    "input_kind": "text",
    "mode": "worker",
    "iterations": 1,
    "warmup": 0,
}


@pytest.mark.parametrize(
    ("scope", "allocated", "nvml"),
    [
        ("torch max_memory_allocated", 512.0, None),
        ("nvml process memory at end of case", None, 512.0),
    ],
)
def test_old_peak_gpu_mb_is_read_by_its_scope(scope, allocated, nvml):
    case = Case.model_validate({**BASE, "peak_gpu_mb": 512.0, "peak_gpu_scope": scope})
    assert (case.peak_gpu_allocated_mb, case.gpu_nvml_mb) == (allocated, nvml)
    dumped = case.model_dump()
    assert "peak_gpu_mb" not in dumped and "peak_gpu_scope" not in dumped


def test_old_document_without_gpu_still_loads():
    case = Case.model_validate_json(
        '{"id": "c", "engine": "e", "workload": "w", "input_id": "i", "input_kind": "text", '
        '"mode": "worker", "iterations": 1, "warmup": 0, "peak_gpu_mb": null, '
        '"peak_gpu_scope": null}'
    )
    assert case.peak_gpu_allocated_mb is None and case.gpu_nvml_mb is None


def test_the_two_gpu_figures_are_two_catalogue_entries_and_columns():
    case = Case.model_validate({**BASE, "peak_gpu_allocated_mb": 150.0, "gpu_nvml_mb": 824.0})
    assert "peak_gpu_mb" not in BY_NAME
    assert BY_NAME["peak_gpu_allocated_mb"].of_case(case) == 150.0
    assert BY_NAME["gpu_nvml_mb"].of_case(case) == 824.0
    assert BY_NAME["peak_gpu_allocated_mb"].column != BY_NAME["gpu_nvml_mb"].column
    added = " ".join(st for _, sts in schema.MIGRATIONS for st in sts)
    for name in ("peak_gpu_allocated_mb", "gpu_nvml_mb", "peak_child_rss_mb"):
        assert f"ADD COLUMN {name} " in added
