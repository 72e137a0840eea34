"""Any command-line program as an engine, one process per call: ``cmd:TEMPLATE``.

The template is split like a shell would (``shlex``) once, when the engine is built; each call then
fills the placeholders inside the arguments and runs the program directly, never through a shell,
so the input text is always exactly one argument whatever quotes or spaces it holds.

Placeholders: ``{text}`` (the input text), ``{text_file}`` (a UTF-8 file holding it), ``{in}`` (the
MIDI or audio input file), ``{out}`` (a ``.wav`` path the program writes), ``{out_dir}`` (an empty
scratch folder). ``{{`` and ``}}`` stand for literal braces; other braces are left as they are.

A measured call includes the process start, as a user running the program pays it. With
``stdout="raw"`` or ``"wav"`` the engine also streams: audio is handed on as the program writes it,
so time to first audio is real.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

from voxbench import wav
from voxbench.engine import BaseEngine, Chunk, InputKind, Output, OutputKind, stage
from voxbench.errors import ConfigError, EngineFailed, EngineUnavailable
from voxbench.wav import RawDecoder

if TYPE_CHECKING:
    import numpy as np  # imported where used: listing engines must not pay for numpy

PLACEHOLDERS: tuple[str, ...] = ("text", "text_file", "in", "out", "out_dir")
_TEXT_PLACEHOLDERS = frozenset({"text", "text_file"})
INPUT_KINDS: tuple[str, ...] = ("text", "midi", "audio")
STDOUT_MODES: tuple[str | None, ...] = (None, "wav", "raw", "text")
STREAMED_STDOUT: tuple[str, ...] = ("raw", "wav")
READ_BLOCK = 4096  # bytes per read of a streamed stdout: ~93 ms of 22,050 Hz 16-bit mono
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MESSAGE_CHARS = 300


# --- the template --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """A placeholder inside one argument, filled per call."""

    name: str


Part = str | Slot


@dataclass(frozen=True)
class CommandTemplate:
    """A command line split into arguments, each a sequence of literal text and :class:`Slot`."""

    source: str
    args: tuple[tuple[Part, ...], ...]

    @classmethod
    def parse(cls, source: str) -> CommandTemplate:
        """Split ``source`` with shell quoting rules; raise ConfigError on an unknown placeholder."""
        try:
            words = shlex.split(source)
        except ValueError as exc:  # e.g. "No closing quotation"
            raise ConfigError(f"cannot split the command template {source!r}: {exc}") from None
        if not words:
            raise ConfigError(
                "the command template is empty (give e.g. 'cmd:espeak-ng -w {out} {text}')"
            )
        return cls(source=source, args=tuple(_parse_word(word) for word in words))

    @property
    def placeholders(self) -> frozenset[str]:
        """The names used anywhere in the template."""
        return frozenset(p.name for arg in self.args for p in arg if isinstance(p, Slot))

    @property
    def program(self) -> str:
        """The first argument: the program to run."""
        first = self.args[0]
        if any(isinstance(p, Slot) for p in first):
            raise ConfigError(
                f"the program in {self.source!r} cannot be a placeholder; name the program first"
            )
        return "".join(p for p in first if isinstance(p, str))

    def expand(self, values: Mapping[str, str]) -> list[str]:
        """The argument list with each placeholder replaced by ``values[name]``, verbatim."""
        # Values are joined in, never re-scanned: a text holding "{out}" stays that text.
        return [
            "".join(values[p.name] if isinstance(p, Slot) else p for p in arg) for arg in self.args
        ]


def _parse_word(word: str) -> tuple[Part, ...]:
    parts: list[Part] = []
    literal: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(word):
        literal.append(word[pos : match.start()])
        pos = match.end()
        token, name = match.group(0), match.group(1)
        if name is None:
            literal.append(token[0])  # "{{" or "}}"
            continue
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + n + "}" for n in PLACEHOLDERS)
            raise ConfigError(
                f"unknown placeholder {{{name}}} in the command template (known: {known}; "
                "write {{ and }} for literal braces)"
            )
        if "".join(literal):
            parts.append("".join(literal))
        literal = []
        parts.append(Slot(name))
    literal.append(word[pos:])
    if "".join(literal):
        parts.append("".join(literal))
    return tuple(parts)


# --- decoding what the program wrote -------------------------------------------------------------


# Errors of a WAV stdout say whose bytes they were; an empty stdout is reported by the engine.
STDOUT_NOT_WAV = "the command's stdout is not WAV voxbench reads"


class WavDecoder(wav.WavDecoder):
    """The decoder of a WAV stdout: :class:`voxbench.wav.WavDecoder`, errors naming stdout."""

    def __init__(self) -> None:
        super().__init__(context=STDOUT_NOT_WAV)


def _check_end(decoder: wav.WavDecoder) -> None:
    """Check the end of stdout: no audio at all is the program's failure (as an empty ``{out}``
    is); a header cut short is bad WAV, which the decoder reports."""
    if decoder.samples == 0 and (decoder.bytes_fed == 0 or decoder.started):
        raise EngineFailed("command wrote no audio to stdout")
    decoder.finish()


def _read_audio_file(path: Path) -> tuple[np.ndarray, int]:
    """Any file libsndfile reads, as float32 mono."""
    if not path.is_file() or path.stat().st_size == 0:
        raise EngineFailed(f"command wrote no audio to {{out}} ({path})")
    import numpy as np
    import soundfile as sf

    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except (RuntimeError, ValueError, OSError) as exc:  # LibsndfileError is a RuntimeError
        raise EngineFailed(f"cannot read the audio the command wrote to {path}: {exc}") from None
    mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
    if len(mono) == 0:
        raise EngineFailed(f"command wrote no audio to {{out}} ({path}: 0 frames)")
    return np.ascontiguousarray(mono), int(rate)


# --- running the program -------------------------------------------------------------------------


def _last_line(data: bytes) -> str:
    lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1][:_MESSAGE_CHARS] if lines else ""


def _exit_error(returncode: int, stderr: bytes) -> EngineFailed:
    if returncode < 0:
        try:
            what = f"command killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            what = f"command killed by signal {-returncode}"
    else:
        what = f"command exited with status {returncode}"
    tail = _last_line(stderr)
    return EngineFailed(f"{what}: {tail}" if tail else what)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill the program's process group if it still runs, reap it, and close its pipes."""
    # Only while unreaped: then its pid, which is the group's id, cannot belong to anyone else.
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _tail(log: IO[bytes], size: int = 65536) -> bytes:
    """The last ``size`` bytes of a log file written by the program."""
    end = log.seek(0, os.SEEK_END)
    log.seek(max(0, end - size))
    return log.read()


def _read_blocks(stream: IO[bytes], deadline: float | None) -> Iterator[bytes]:
    """Whatever the pipe holds, up to READ_BLOCK bytes at a time, until end of file."""
    fd = stream.fileno()
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise subprocess.TimeoutExpired("command", 0)
        data = os.read(fd, READ_BLOCK)  # returns as soon as anything is there
        if not data:
            return
        yield data


class CommandEngine(BaseEngine):
    """A command-line program run once per call; the reference is ``cmd:TEMPLATE``.

    Keyword options: ``input_kind`` ("text", "midi", "audio"), ``stdin`` (send the text, or the
    input file's bytes, on stdin), ``stdout`` (None: audio comes from ``{out}``; "wav"/"raw": audio
    on stdout, raw being s16le mono at ``sample_rate``; "text": the program prints text),
    ``cwd``, ``env`` (extra environment variables) and ``timeout`` (seconds per call).

    One call at a time: the scratch folder made in ``load()`` is reused by every call.
    """

    name: ClassVar[str] = "cmd"
    input_kind: ClassVar[InputKind] = "text"
    output_kind: ClassVar[OutputKind] = "audio"
    description: ClassVar[str] = "any command-line program, one process per call (cmd:TEMPLATE)"
    default_workloads: ClassVar[tuple[str, ...]] = ("short", "medium", "long")

    def __new__(cls, *args: Any, **kwargs: Any) -> CommandEngine:
        # can_stream() looks for a ``stream`` attribute, so only engines that can stream may
        # have one: the class is chosen by the stdout mode, and __init__ then runs as usual.
        if cls is CommandEngine and kwargs.get("stdout") in STREAMED_STDOUT:
            cls = StreamingCommandEngine
        return super().__new__(cls)

    def __init__(
        self,
        template: str,
        *,
        input_kind: str = "text",
        stdin: bool = False,
        stdout: str | None = None,
        sample_rate: int | None = None,
        cwd: str | None = None,
        env: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        if input_kind not in INPUT_KINDS:
            raise ConfigError(
                f"input_kind must be one of {', '.join(INPUT_KINDS)}, not {input_kind!r}"
            )
        if stdout not in STDOUT_MODES:
            raise ConfigError(f"stdout must be 'wav', 'raw', 'text' or None, not {stdout!r}")
        if timeout is not None and not timeout > 0:
            raise ConfigError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self.template = CommandTemplate.parse(template)
        # Per instance, since one class serves every kind of program (BaseEngine has class vars).
        self.input_kind = input_kind  # type: ignore[misc,assignment]
        self.output_kind = "text" if stdout == "text" else "audio"  # type: ignore[misc]
        self.stdin = bool(stdin)
        self.stdout = stdout
        self.sample_rate = None if sample_rate is None else int(sample_rate)
        self.cwd = cwd
        self.env = {str(k): str(v) for k, v in (env or {}).items()}
        self.timeout = None if timeout is None else float(timeout)
        self._validate()
        self._program_name = self.template.program
        self._program: str | None = None
        self._scratch: Path | None = None
        self._environ: dict[str, str] | None = None

    def _validate(self) -> None:
        used = self.template.placeholders
        if self.input_kind == "text":
            if "in" in used:
                raise ConfigError(
                    "{in} is for midi/audio input; a text engine uses {text} or {text_file}"
                )
            if not (used & _TEXT_PLACEHOLDERS or self.stdin):
                raise ConfigError(
                    "a text engine's template needs {text} or {text_file}, or stdin=True"
                )
        else:
            if used & _TEXT_PLACEHOLDERS:
                raise ConfigError(
                    f"{{text}} and {{text_file}} need text input, not {self.input_kind}"
                )
            if "in" not in used and not self.stdin:
                raise ConfigError(
                    f"a {self.input_kind} engine's template needs {{in}} (or stdin=True)"
                )
        self._validate_output(used)

    def _validate_output(self, used: frozenset[str]) -> None:
        if self.stdout in STREAMED_STDOUT and "out" in used:
            raise ConfigError(f"give either {{out}} or stdout={self.stdout!r}, not both")
        if self.stdout is None and "out" not in used:
            raise ConfigError(
                "an audio engine's template needs {out}, or stdout='wav' or 'raw' "
                "(stdout='text' for a program that prints text)"
            )
        if self.stdout == "raw" and not self.sample_rate:
            raise ConfigError("stdout='raw' needs sample_rate (the rate of the s16le mono samples)")
        if self.stdout != "raw" and self.sample_rate is not None:
            raise ConfigError(
                "sample_rate is only used with stdout='raw' (WAV carries its own rate)"
            )

    @classmethod
    def check(cls) -> str | None:
        """None: the program is only known per template, and load() looks it up."""
        return None

    def load(self) -> None:
        """Find the program and make the scratch folder every call reuses."""
        if self._scratch is not None:
            return
        self._environ = {**os.environ, **self.env} if self.env else None
        self._program = self._find_program()
        self._scratch = Path(tempfile.mkdtemp(prefix="voxbench-cmd-"))

    def _find_program(self) -> str:
        name = self._program_name
        if "/" in name:
            # A relative path is taken from cwd, as the child resolves it there.
            path = Path(self.cwd or ".", name)
            if not path.is_file():
                raise EngineUnavailable(f"program {name!r} not found (no file {path.absolute()})")
            if not os.access(path, os.X_OK):
                raise EngineUnavailable(f"program {name!r} is not executable (chmod +x {path})")
            return str(path.absolute())
        search = (self._environ or os.environ).get("PATH", os.defpath)
        found = shutil.which(name, path=search)
        if found is None:
            raise EngineUnavailable(f"program {name!r} not found on PATH")
        return found

    def _folder(self) -> Path:
        if self._scratch is None or self._program is None:
            raise EngineFailed("cmd engine used before load() or after close()")
        return self._scratch

    def _prepare(self, inp: Any) -> tuple[list[str], bytes | None]:
        """The arguments and stdin bytes of one call; clears what an earlier call left behind."""
        folder = self._folder()
        used = self.template.placeholders
        values: dict[str, str] = {}
        if self.input_kind == "text":
            if not isinstance(inp, str):
                raise ConfigError(f"this cmd engine takes text, not {type(inp).__name__}")
            data = inp.encode("utf-8")
            values["text"] = inp
            if "text_file" in used:
                text_file = folder / "input.txt"
                text_file.write_bytes(data)
                values["text_file"] = str(text_file)
        else:
            path = Path(inp)
            values["in"] = str(path.absolute())  # the child may run in another cwd
            data = path.read_bytes() if self.stdin else b""
        if "out" in used:
            out = folder / "out.wav"
            out.unlink(missing_ok=True)  # a stale file must not pass for this call's audio
            values["out"] = str(out)
        if "out_dir" in used:
            out_dir = folder / "out_dir"
            shutil.rmtree(out_dir, ignore_errors=True)
            out_dir.mkdir()
            values["out_dir"] = str(out_dir)
        return self.template.expand(values), (data if self.stdin else None)

    def _spawn(
        self, args: list[str], stdin: Any, stdout: Any, stderr: Any
    ) -> subprocess.Popen[bytes]:
        try:
            return subprocess.Popen(
                args,
                executable=self._program,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                cwd=self.cwd,
                env=self._environ,
                bufsize=0,
                # A group of its own, so that a timeout kills a whole `sh -c 'a | b'`, not just sh.
                process_group=0,
            )
        except OSError as exc:
            raise EngineFailed(f"cannot run {self._program}: {exc.strerror or exc}") from None

    def _run(self, args: list[str], stdin: bytes | None) -> bytes:
        """Run the program to its end; its stdout, or EngineFailed on timeout or failure."""
        pipe = subprocess.PIPE
        # Without stdin the program must not wait on (or eat) ours.
        proc = self._spawn(args, pipe if stdin is not None else subprocess.DEVNULL, pipe, pipe)
        try:
            out, err = proc.communicate(stdin, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise EngineFailed(f"command timed out after {self.timeout:g} s") from None
        finally:
            _stop(proc)
        if proc.returncode != 0:
            raise _exit_error(proc.returncode, err)
        return out

    def _decoder(self) -> wav.WavDecoder:
        if self.stdout == "raw":
            assert self.sample_rate is not None
            return RawDecoder(self.sample_rate)
        return WavDecoder()

    def synthesize(self, inp: Any) -> Output:
        """Run the program once on ``inp``; its audio (or text) once it has exited.

        Stages: ``run`` (process start to exit) and ``read`` (decoding what it wrote).
        """
        args, stdin = self._prepare(inp)
        with stage("run"):
            stdout = self._run(args, stdin)
        with stage("read"):
            return self._output(stdout)

    def _output(self, stdout: bytes) -> Output:
        if self.stdout == "text":
            return Output(text=stdout.decode("utf-8", "replace").strip())
        if self.stdout is None:
            audio, rate = _read_audio_file(self._folder() / "out.wav")
            return Output(audio=audio, sample_rate=rate)
        decoder = self._decoder()
        audio = decoder.feed(stdout)
        _check_end(decoder)
        return Output(audio=audio, sample_rate=decoder.sample_rate)

    def close(self) -> None:
        """Remove the scratch folder."""
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def info(self) -> dict[str, Any]:
        """The template as given, the program it runs, and how input and output travel."""
        result: dict[str, Any] = {
            "template": self.template.source,
            "program": self._program or self._program_name,
            "input_kind": self.input_kind,
            "stdin": self.stdin,
            "stdout": self.stdout,
        }
        optional = {"sample_rate": self.sample_rate, "cwd": self.cwd, "timeout": self.timeout}
        result.update({k: v for k, v in optional.items() if v is not None})
        if self.env:
            result["env"] = sorted(self.env)  # names only: values may be secrets
        return result


class StreamingCommandEngine(CommandEngine):
    """A command engine whose program writes WAV or raw PCM on stdout, handed on as it comes.

    Built by ``CommandEngine(..., stdout="wav" | "raw")``; see :class:`CommandEngine`.
    """

    def stream(self, inp: Any) -> Iterator[Chunk]:
        """Yield the audio of each read from the program's stdout (up to 4 KiB) as it arrives."""
        args, stdin = self._prepare(inp)
        folder = self._folder()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        # stdin and stderr go through files: nothing to pump alongside stdout, so no deadlock.
        stdin_source: Any = subprocess.DEVNULL
        if stdin is not None:
            (folder / "stdin").write_bytes(stdin)
            stdin_source = open(folder / "stdin", "rb")  # noqa: SIM115 (closed in finally)
        with open(folder / "stderr", "w+b") as stderr:
            try:
                proc = self._spawn(args, stdin_source, subprocess.PIPE, stderr)
            finally:
                if stdin_source is not subprocess.DEVNULL:
                    stdin_source.close()
            yield from self._pump(proc, stderr, deadline)

    def _pump(
        self, proc: subprocess.Popen[bytes], stderr: IO[bytes], deadline: float | None
    ) -> Iterator[Chunk]:
        decoder = self._decoder()
        assert proc.stdout is not None
        try:
            for data in _read_blocks(proc.stdout, deadline):
                audio = decoder.feed(data)
                if len(audio) and decoder.sample_rate:
                    yield Chunk(audio=audio, sample_rate=decoder.sample_rate)
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            returncode = proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            raise EngineFailed(f"command timed out after {self.timeout:g} s") from None
        finally:
            _stop(proc)  # also when the stream is abandoned: the program must not outlive it
        if returncode != 0:
            raise _exit_error(returncode, _tail(stderr))
        _check_end(decoder)
