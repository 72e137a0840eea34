"""``voxbench.toml``: a run described in a file, validated, and stored in the result document.

Example::

    iterations = 10
    warmup = 3
    workloads = ["short", "medium", "long"]
    devices = ["cpu"]

    [params]                 # swept for every engine, crossed
    length_scale = [0.8, 1.0, 1.2]

    [[engine]]
    ref = "piper"
    args = { noise_scale = 0.667 }
    resources = { CPU = 2 }  # --executor ray: what each case asks of a node

    [[engine]]
    ref = "cmd:espeak-ng -w {out} {text}"

    [pipeline]               # voxbench pipeline
    stt = "whisper"
    llm = "smollm2"
    tts = "piper"
    targets = ["first_audio_ms<=1500"]

Command-line options override the file's values.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from voxbench.errors import ConfigError
from voxbench.results.doc_checks import read_capped

Scalar = str | int | float | bool


class EngineEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(min_length=1)
    args: dict[str, Any] = {}
    params: dict[str, list[Scalar]] = {}
    # --executor ray: what each of this engine's cases asks of a node, in Ray's names
    # (CPU, GPU, custom ones such as "gpu_type:H100"); --ray-resources goes over it.
    resources: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = {}


class PipelineTable(BaseModel):
    """``[pipeline]``: a voice-assistant chain for ``voxbench pipeline`` (options override it)."""

    model_config = ConfigDict(extra="forbid")

    stt: str | None = None
    llm: str | None = None
    tts: str | None = None
    stt_args: dict[str, Any] = {}
    llm_args: dict[str, Any] = {}
    tts_args: dict[str, Any] = {}
    workload: str | None = None
    modes: list[Literal["sequential", "streaming"]] | None = None
    iterations: int | None = Field(None, ge=1)
    warmup: int | None = Field(None, ge=0)
    targets: list[str] = []


class ConfigFile(BaseModel):
    """The keys a voxbench.toml may hold; unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    engine: list[EngineEntry] = []
    workloads: list[str] | None = None
    params: dict[str, list[Scalar]] = {}
    devices: list[str] | None = None
    batch_sizes: list[int] | None = None
    iterations: int | None = Field(None, ge=1)
    warmup: int | None = Field(None, ge=0)
    mode: Literal["worker", "in-process"] | None = None
    timeout: float | None = Field(None, ge=0, allow_inf_nan=False)
    case_timeout: float | None = Field(None, ge=0, allow_inf_nan=False)
    max_memory: str | None = None
    stream: Literal["auto", "on", "off"] | None = None
    output: str | None = None
    machine_id: str | None = None
    save_audio: bool | None = None
    targets: dict[str, Any] = {}
    quality: bool | None = None
    metrics: list[str] | None = None
    pipeline: PipelineTable | None = None

    @field_validator("params", mode="before")
    @classmethod
    def _scalars_become_lists(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v if isinstance(v, list) else [v] for k, v in value.items()}
        return value


MAX_CONFIG_BYTES = 1 * 2**20
"""A voxbench.toml larger than this (1 MiB) is refused before it is read: a config is a page."""


def _read(path: Path) -> str:
    if not path.exists() and not path.is_symlink():
        raise ConfigError(f"config file {path} does not exist")
    data = read_capped(path, MAX_CONFIG_BYTES, "voxbench.toml")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _nul(value: Any, where: str) -> str | None:
    """Where a NUL character hides in the parsed table (it would cut a path or an argument)."""
    if isinstance(value, str):
        return where if "\x00" in value else None
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, inner in items:
        if isinstance(key, str) and "\x00" in key:
            return f"{where}.{key!r}".lstrip(".")
        found = _nul(inner, f"{where}.{key}".lstrip("."))
        if found:
            return found
    return None


def parse_config(
    text: str, path: Path | str = "voxbench.toml"
) -> tuple[ConfigFile, dict[str, Any]]:
    """Validate a config file's text; returns the model and the raw table for the document.
    Anything wrong is a one-line :class:`ConfigError` naming ``path`` and the key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML (nested too deeply)") from None
    where = _nul(raw, "")
    if where is not None:
        raise ConfigError(f"{path}: {where or '(top level)'}: a NUL character is not allowed")
    for entry in raw.get("engine", []) if isinstance(raw.get("engine"), list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("params"), dict):
            entry["params"] = {
                k: v if isinstance(v, list) else [v] for k, v in entry["params"].items()
            }
    try:
        return ConfigFile.model_validate(raw), raw
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = first["msg"]
        if first["type"] == "extra_forbidden":  # say which keys that table takes
            model: type[BaseModel] = ConfigFile
            for part in first["loc"][:-1]:
                if part == "engine":
                    model = EngineEntry
                elif part == "pipeline":
                    model = PipelineTable
            message = f"unknown key (this table takes: {', '.join(model.model_fields)})"
        raise ConfigError(" ".join(f"{path}: {where}: {message}".split())) from None


def load_config(path: Path) -> tuple[ConfigFile, dict[str, Any]]:
    """Read and validate a config file; returns the model and the raw table for the document."""
    return parse_config(_read(path), path)
