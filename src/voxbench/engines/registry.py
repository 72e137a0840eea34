"""Find engines by reference: a built-in or entry-point name, ``module.path:Factory``,
``cmd:TEMPLATE`` (a command line), an OpenAI-compatible endpoint — ``http(s)://host:port/v1/audio/
speech`` (speech), ``…/v1/audio/transcriptions`` (speech recognition), ``…/v1/chat/completions`` or
``llm:http(s)://host:port/v1`` (a chat LLM) — or ``wyoming://host:port`` (a Wyoming server).

Resolution imports only the engine's own module; the heavy libraries an engine needs are imported
in its ``load()``, so listing engines stays fast.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from voxbench.engines.devices import accepts_device
from voxbench.errors import ConfigError, EngineUnavailable

BUILTIN_ENGINES: dict[str, str] = {
    "espeak": "voxbench.engines.espeak:EspeakEngine",
    "piper": "voxbench.engines.piper:PiperEngine",
    "fluidsynth": "voxbench.engines.fluidsynth:FluidSynthEngine",
    "worldvc": "voxbench.engines.worldvc:WorldVCEngine",
    "flite": "voxbench.engines.flite:FliteEngine",
    "kokoro": "voxbench.engines.kokoro:KokoroEngine",
    "whisper": "voxbench.engines.whisper:WhisperEngine",
    "pocketsphinx": "voxbench.engines.pocketsphinx:PocketSphinxEngine",
    "smollm2": "voxbench.engines.smollm2:SmolLM2Engine",
    "echo": "voxbench.engines.echo:EchoEngine",
}
# Engines the default ``voxbench run`` (no --engine) measures: the text-to-speech and MIDI ones;
# the others answer other inputs (speech, prompts) and are asked for by name.
DEFAULT_ENGINES = ("espeak", "piper", "fluidsynth", "worldvc")
ENTRY_POINT_GROUP = "voxbench.engines"
COMMAND_ENGINE = "voxbench.engines.command:CommandEngine"
HTTP_ENGINE = "voxbench.engines.http:OpenAISpeechEngine"
HTTP_STT_ENGINE = "voxbench.engines.http_stt:OpenAITranscriptionEngine"
LLM_ENGINE = "voxbench.engines.llm:OpenAIChatEngine"
WYOMING_ENGINE = "voxbench.engines.wyoming:WyomingEngine"
_TARGETS = {
    "command": COMMAND_ENGINE,
    "http": HTTP_ENGINE,
    "http-stt": HTTP_STT_ENGINE,
    "llm": LLM_ENGINE,
    "wyoming": WYOMING_ENGINE,
}


_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]*@", re.IGNORECASE)


def redact(text: str) -> str:
    """``https://user:secret@host/...`` → ``https://***@host/...``: nothing secret in a document."""
    return _USERINFO.sub(lambda m: m.group("scheme") + "***@", text)


def _ref_kind(ref: str) -> str:
    if ref.startswith("cmd:"):
        return "command"
    if ref.startswith("llm:"):
        return "llm"
    if ref.startswith("wyoming://"):
        return "wyoming"
    if ref.startswith(("http://", "https://")):
        path = ref.split("?", 1)[0].rstrip("/")
        if path.endswith("/audio/transcriptions"):
            return "http-stt"
        if path.endswith("/chat/completions"):
            return "llm"
        return "http"
    return "python"


def _load_object(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"engine reference {target!r} must look like 'package.module:Factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import engine module {module_name!r}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"module {module_name!r} has no attribute {attr!r}") from None
    return obj


def known_engines() -> dict[str, str]:
    """Engine name → ``module:Factory`` for the built-ins and installed entry points."""
    found = dict(BUILTIN_ENGINES)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


@dataclass(frozen=True)
class EngineSpec:
    """A picklable recipe for an engine: a registered name or ``module:Factory``, plus keyword args.

    Worker processes receive the spec, not the engine, and build the engine themselves.
    """

    ref: str
    params: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"

    @property
    def target(self) -> str:
        kind = _ref_kind(self.ref)
        if kind in _TARGETS:
            return _TARGETS[kind]
        engines = known_engines()
        if self.ref in engines:
            return engines[self.ref]
        if ":" in self.ref:
            return self.ref
        raise ConfigError(
            f"unknown engine {self.ref!r} (known: {', '.join(sorted(engines))}; "
            "or give 'package.module:Factory')"
        )

    def factory(self) -> Any:
        return _load_object(self.target)

    def unavailable_reason(self) -> str | None:
        """None when the engine can run here, else a one-line reason with its fix."""
        check = getattr(self.factory(), "check", None)
        return check() if callable(check) else None

    def create(self) -> Any:
        """Build the engine (not yet loaded). Raises EngineUnavailable with the fix when it cannot run."""
        factory = self.factory()
        reason = self.unavailable_reason()
        if reason:
            raise EngineUnavailable(f"engine {self.ref!r} is unavailable: {reason}")
        extra = self.implicit_args()
        if self.device != "cpu" or "device" in self.params:
            extra["device"] = self.params.get("device", self.device)
        elif getattr(factory, "devices", None) and accepts_device(factory):
            extra["device"] = "cpu"
        params = {k: v for k, v in self.params.items() if k != "device"}
        try:
            return factory(**extra, **params)
        except TypeError as exc:
            raise ConfigError(f"engine {self.ref!r} rejected its parameters: {exc}") from exc

    def implicit_args(self) -> dict[str, Any]:
        """Arguments the reference itself carries: the command template or the endpoint URL."""
        kind = _ref_kind(self.ref)
        if kind == "command":
            return {"template": self.ref[len("cmd:") :]}
        if kind == "llm":
            return {"url": self.ref[len("llm:") :] if self.ref.startswith("llm:") else self.ref}
        if kind in ("http", "http-stt", "wyoming"):
            return {"url": self.ref}
        return {}

    @property
    def name(self) -> str:
        """A short engine name for tables: the registered name, the program, or host:port."""
        kind = _ref_kind(self.ref)
        if kind == "command":
            words = self.ref[len("cmd:") :].split()
            return "cmd:" + (words[0].rsplit("/", 1)[-1] if words else "?")
        if kind in ("http", "http-stt", "llm", "wyoming"):
            from urllib.parse import urlsplit

            url = self.implicit_args()["url"]
            parts = urlsplit(url)
            host = parts.hostname or "?"
            prefix = {"http": "http", "http-stt": "stt", "llm": "llm", "wyoming": "wyoming"}[kind]
            return f"{prefix}:{host}:{parts.port}" if parts.port else f"{prefix}:{host}"
        if self.ref in known_engines():
            return self.ref
        factory = self.factory()
        return getattr(factory, "name", None) or self.ref.rsplit(":", 1)[-1]


def describe(ref: str) -> dict[str, Any]:
    """Name, kinds, availability and reason of one engine, for ``voxbench engines``."""
    spec = EngineSpec(ref)
    try:
        factory = spec.factory()
        reason = spec.unavailable_reason()
    except ConfigError as exc:
        return {
            "name": ref,
            "input": "?",
            "output": "?",
            "available": False,
            "reason": str(exc),
            "description": "",
            "streaming": False,
        }
    return {
        "name": ref,
        "input": getattr(factory, "input_kind", "text"),
        "output": getattr(factory, "output_kind", "audio"),
        "streaming": callable(getattr(factory, "stream", None)),
        "available": reason is None,
        "reason": reason or "",
        "description": getattr(factory, "description", ""),
    }
