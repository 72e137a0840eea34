"""Devices: the real fall-back path of ONNX Runtime on this CPU-only machine is flagged."""

from voxbench.engines.registry import EngineSpec
from voxbench.report import render_markdown
from voxbench.results import ResultDocument
from voxbench.run.scenario import Settings, run_case
from voxbench.workloads import resolve_workload


def test_piper_asked_for_cuda_without_a_cuda_provider_is_flagged():
    item = resolve_workload("short").items[0]
    # Bypasses the planner (which would skip cuda on a machine without a GPU) to exercise what
    # a GPU machine with a CPU-only onnxruntime does: onnxruntime silently runs on the CPU.
    case = run_case(
        EngineSpec("piper", {}, "cuda"), "piper", "short", item, Settings(iterations=1, warmup=0)
    ).case
    assert case.errors == []
    assert case.device == "cuda" and case.device_actual == "cpu" and case.device_fallback
    doc = ResultDocument.model_validate_json(_doc_json(case))
    assert "cuda→cpu (fallback!)" in render_markdown(doc)


def _doc_json(case) -> str:
    from voxbench.results import ResultDocument, RunConfig
    from voxbench.run.environment import capture

    doc = ResultDocument(
        run_id="r",
        created_at="now",
        voxbench_version="0",
        environment=capture(),
        config=RunConfig(
            engines=[],
            workloads=["short"],
            iterations=1,
            warmup=0,
            mode="worker",
            timeout_s=None,
            devices=["cuda"],
        ),
        cases=[case],
    )
    return doc.model_dump_json()
