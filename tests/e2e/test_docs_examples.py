"""Every `voxbench run` command in docs/engines.md runs, as written, from the repository root."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "engines.md"
DOC_PORT = "8880"


def doc_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return [ln.strip() for b in blocks for ln in b.splitlines() if "voxbench run" in ln]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def example_server():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "examples/speech_server.py", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("examples/speech_server.py did not start")
    yield port
    proc.terminate()
    proc.wait(10)


def test_the_doc_has_all_three_forms():
    commands = doc_commands()
    assert any("my_engines:ChimeTTS" in c for c in commands)
    assert any('"cmd:' in c for c in commands)
    assert any("http://127.0.0.1:8880" in c for c in commands)


@pytest.mark.slow
@pytest.mark.parametrize("command", doc_commands())
def test_doc_command_runs(command, tmp_path, example_server):
    env = dict(os.environ)
    words = shlex.split(command.replace(f":{DOC_PORT}/", f":{example_server}/"))
    while "=" in words[0]:  # leading VAR=value assignments
        key, _, value = words.pop(0).partition("=")
        env[key] = os.pathsep.join([str(ROOT / value), env.get(key, "")])
    assert words[0] == "voxbench"
    argv = [sys.executable, "-m", "voxbench", *words[1:], "-o", str(tmp_path), "--json", "-"]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["cases"] and all(c["error_count"] == 0 for c in doc["cases"])
    assert all(c["rtf"] and c["audio_seconds"] > 0 for c in doc["cases"])
    streams = [c for c in doc["cases"] if c["streamed"]]
    assert all(c["ttfa_ms"]["median"] <= c["latency_ms"]["median"] for c in streams)
    if "ChimeTTS" in command and "--batch-size" not in command:
        assert all({"prefill", "decode", "vocoder"} <= set(c["stages"]) for c in doc["cases"])
    if "--batch-size" in command:
        assert {c["batch_size"] for c in doc["cases"]} == {1, 8}
        assert "Batch sizes" in proc.stderr and "best" in proc.stderr
    if "--param" in command:
        assert "Sweep: chime by word_ms" in proc.stderr
    if "http://" in command and "stream=false" not in command:
        assert streams and all("ttfb" in c["stages"] for c in streams)


@pytest.mark.slow
def test_readme_python_example_runs_as_written(tmp_path):
    """The README's "From Python" block, saved as a script and run from an empty folder."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "api.benchmark" in b]
    script = tmp_path / "example.py"
    script.write_text(block, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "espeak/short/short-1/cpu" in proc.stdout and "espeak/short/short-2/cpu" in proc.stdout
    [run_dir] = tmp_path.glob("results/*/*")
    assert {p.name for p in run_dir.iterdir()} >= {"results.json", "report.md"}
