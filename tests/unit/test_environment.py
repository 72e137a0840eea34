import sys
import types

from voxbench.run import environment


def test_capture_describes_this_machine():
    env = environment.capture(machine="my box/1")
    assert env.machine_id == "my-box-1"  # folder-safe
    assert env.cpu_cores_logical >= 1 and env.ram_gb > 0
    assert env.packages["voxbench"]
    assert env.python.startswith("3.")


def test_gpu_fields_from_nvml(monkeypatch):
    """FAKE NVML: this machine has no GPU, so a stand-in pynvml module checks the field mapping."""
    fake = types.ModuleType("pynvml")
    fake.nvmlInit = lambda: None
    fake.nvmlShutdown = lambda: None
    fake.nvmlSystemGetDriverVersion = lambda: "550.54.15"
    fake.nvmlSystemGetCudaDriverVersion = lambda: 12040
    fake.nvmlDeviceGetCount = lambda: 1
    fake.nvmlDeviceGetHandleByIndex = lambda i: f"handle{i}"
    fake.nvmlDeviceGetCudaComputeCapability = lambda h: (9, 0)
    fake.nvmlDeviceGetName = lambda h: b"NVIDIA H100 80GB HBM3"
    fake.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=80 * 2**30)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    gpus, note = environment.gpus()
    assert note is None
    assert gpus[0].model_dump() == {
        "index": 0,
        "name": "NVIDIA H100 80GB HBM3",
        "driver": "550.54.15",
        "cuda": "12.4",
        "compute_capability": "9.0",
        "memory_total_mb": 80 * 1024.0,
    }


def test_no_nvml_is_a_note_not_an_error(monkeypatch):
    fake = types.ModuleType("pynvml")

    def fail():
        raise RuntimeError("NVML Shared Library Not Found")

    fake.nvmlInit = fail
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert environment.gpus() == ([], "NVML unavailable: NVML Shared Library Not Found")


def test_machine_id_never_names_a_parent_or_hidden_folder():
    assert environment.machine_id("..") == "machine"
    assert environment.machine_id("../../etc") == "etc"
    assert environment.machine_id(".hidden box") == "hidden-box"
    assert environment.machine_id("gpu.node-3") == "gpu.node-3"
