"""The run folder, ``<output>/<machine-id>/<run-id>/``: one lifecycle for every kind of run.

``voxbench run``, ``load``, ``micro``, ``quality`` and the pytest plugin all go through
:class:`RunFolder`:

1. :meth:`RunFolder.create` makes the folder for a new document (a one-line error when it
   cannot), :meth:`RunFolder.resume` reopens an unfinished one for ``--resume``;
2. :meth:`RunFolder.track` says which cases (or levels) the run plans, so the document's
   ``status`` is ``running`` and ``incomplete`` lists what is not measured yet, even when the
   process is killed;
3. :meth:`RunFolder.save` rewrites ``results.json`` atomically (:func:`atomic_write_text`: a
   temporary file of its own in the same folder, fsynced, then ``os.replace``) after every case
   or level, so an interrupted or killed run keeps what it measured and never leaves a
   half-written document;
4. :meth:`RunFolder.close` stamps ``finished_at`` and ``duration_s`` and saves; an interrupted
   run is closed by :meth:`RunFolder.interrupted` without ``finished_at`` (``status``
   ``interrupted``), and the :class:`~voxbench.errors.Interrupted` it returns says how far the
   run got and where it is (exit status 128 + the signal: 130 for SIGINT, 143 for SIGTERM).

:meth:`RunFolder.measuring` wraps the loop that fills the document and does 4. either way.
Rendering ``report.md`` is not done here: reports sit above results (docs/architecture.md), and
:mod:`voxbench.api` writes the report after closing, interrupted or not.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shutil
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from voxbench.errors import ConfigError, Interrupted
from voxbench.results.document import ResultDocument, load_document

RESULTS = "results.json"
REPORT = "report.md"
AUDIO = "audio"


def new_run_id() -> str:
    """``YYYYMMDDTHHMMSSZ-xxxxxx``: sortable by start time, unique by six random hex digits."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def now_iso() -> str:
    """Now, as ISO 8601 UTC to the second (the document's time stamps)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


TMP_MARK = ".tmp"
"""In the name of every temporary file a run folder's writers make (``.NAME.PID-HEX.tmp.EXT``);
what a killed writer left is removed when the folder is resumed."""


def _temporary(path: Path) -> Path:
    # beside the target (same file system: os.replace is atomic), hidden, unique to this process
    # and call (pid + random), and ending in the target's suffix (soundfile reads the format)
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return path.with_name(f".{path.name}.{token}{TMP_MARK}{path.suffix}")


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; when the block ends it is fsynced and
    renamed over ``path`` (readers see the old file or the new one, never half; a kill at any
    moment leaves at most a hidden temporary file), and removed when the block raises."""
    tmp = _temporary(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_path`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(doc: ResultDocument, path: Path) -> None:
    """Write ``doc`` to ``path`` atomically: readers see the old file or the new one, never half."""
    atomic_write_text(path, doc.model_dump_json(indent=2))


def remove_temporaries(folder: Path) -> int:
    """Remove what killed writers left in a run folder (temporary files, staging folders);
    returns how many were removed."""
    found = 0
    for where in (folder, folder / AUDIO):
        if not where.is_dir():
            continue
        for p in where.iterdir():
            if p.name.startswith(".") and (TMP_MARK in p.name or p.name.startswith(".audio-")):
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
                found += 1
    return found


def _signum(exc: BaseException) -> int:
    """The signal a KeyboardInterrupt stands for: ``signum`` when
    :func:`voxbench.cli.signals.stop_on_signals` raised it, else SIGINT (Ctrl-C)."""
    return int(getattr(exc, "signum", signal.SIGINT))


def _signal_label(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class RunFolder:
    """One run's folder and its document. Create it with :meth:`create` (a new run),
    :meth:`open` (a finished run re-judged, e.g. by ``voxbench quality``) or :meth:`resume`
    (an unfinished run, ``--resume``)."""

    def __init__(self, path: Path, doc: ResultDocument, started: float | None = None) -> None:
        self.path = path
        self.doc = doc
        # perf_counter() when the run began (default: now); duration_s is measured from it
        self._started = time.perf_counter() if started is None else started
        self._earlier_s = 0.0  # measuring time of the sessions before a resume
        self._planned: list[str] | None = None
        self._measured: Callable[[], Iterable[str]] = lambda: ()
        self._lock: int | None = None  # a descriptor of the folder, flock()ed while measuring
        # called after each save (a distributed run's per-machine documents, results.machines)
        self.on_save: list[Callable[[RunFolder], None]] = []

    @classmethod
    def create(cls, output: Path, doc: ResultDocument, started: float | None = None) -> RunFolder:
        """Make ``output/<machine-id>/<run-id>/`` for ``doc``; ConfigError when it cannot be made
        or already exists (run ids are unique, so that is a second writer, not a rerun)."""
        path = output / doc.environment.machine_id / doc.run_id
        try:
            path.mkdir(parents=True, exist_ok=False)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the results folder {path}: {exc.strerror or exc}"
            ) from None
        return cls(path, doc, started)

    @classmethod
    def open(cls, path: Path) -> RunFolder:
        """An existing run folder (or its ``results.json``), with its document read and checked."""
        folder = path.parent if path.name == RESULTS else path
        return cls(folder, load_document(folder))

    @classmethod
    def resume(cls, path: Path, scenario: str, command: str) -> RunFolder:
        """An existing run folder of ``scenario`` to finish (``voxbench COMMAND --resume``):
        what killed writers left is removed, and the duration goes on from the recorded one.
        One-line ConfigError when ``path`` is not a run folder or is another scenario's."""
        folder = path.parent if path.name == RESULTS else path
        if not (folder / RESULTS).is_file():
            raise ConfigError(f"--resume: {folder} is not a run folder (no {RESULTS} in it)")
        run = cls(folder, load_document(folder))
        if run.doc.scenario != scenario:
            other = {"single": "run"}.get(run.doc.scenario, run.doc.scenario)
            raise ConfigError(
                f"--resume: {folder} is a {run.doc.scenario} run; resume it with "
                f"voxbench {other} --resume, not voxbench {command}"
            )
        run._take_lock()
        remove_temporaries(folder)
        run._earlier_s = run.doc.duration_s or 0.0
        return run

    def _take_lock(self) -> None:
        """Hold an exclusive ``flock`` on the folder while this process writes it: a second
        writer (say, ``--resume`` of a run still going) is refused in one line. The kernel lets
        go when the process ends, killed or not."""
        if self._lock is not None:
            return
        import fcntl

        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigError(
                f"{self.path} is being written by another voxbench process; let it finish "
                "(or stop it) first"
            ) from None
        self._lock = fd

    def _release_lock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    @property
    def complete(self) -> bool:
        """Whether the document says every planned case or level was measured."""
        return self.doc.status == "complete" and not self.doc.incomplete

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS

    @property
    def report_path(self) -> Path:
        return self.path / REPORT

    @property
    def audio_dir(self) -> Path:
        return self.path / AUDIO

    def track(self, planned: Sequence[str], measured: Callable[[], Iterable[str]]) -> None:
        """The ids of every planned case (or level) and how to read the ids measured so far:
        from now on the document is ``running`` and every save lists the ``incomplete`` ones."""
        self._take_lock()
        self._planned = list(planned)
        self._measured = measured
        self.doc.status = "running"
        self._update_incomplete()

    def _update_incomplete(self) -> None:
        if self._planned is not None:
            done = set(self._measured())
            self.doc.incomplete = [i for i in self._planned if i not in done]

    def save(self) -> None:
        """Rewrite ``results.json`` atomically with the document as it is now."""
        self._update_incomplete()
        write_json(self.doc, self.results_path)
        for hook in self.on_save:
            hook(self)

    def save_audio(self, write: Callable[[Path], str | None]) -> str | None:
        """Save one audio file atomically: ``write(folder)`` writes it into a staging folder of
        its own (and returns its path, whose name is kept), then it is fsynced and renamed into
        ``audio/``. Returns the path relative to the run folder, or None when nothing was
        written. A kill leaves at most a hidden staging folder, removed on resume."""
        staging = self.path / f".audio-{os.getpid()}-{secrets.token_hex(4)}"
        staging.mkdir()
        try:
            written = write(staging)
            if written is None:
                return None
            name = Path(written).name
            with open(staging / name, "rb+") as f:
                os.fsync(f.fileno())
            self.audio_dir.mkdir(exist_ok=True)
            os.replace(staging / name, self.audio_dir / name)
            _fsync_dir(self.audio_dir)
            return f"{AUDIO}/{name}"
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def close(self, finished: bool = True) -> None:
        """Stamp the run's end (``finished_at`` unless interrupted) and its duration; save."""
        if finished:
            self.doc.finished_at = now_iso()
            self.doc.status = "complete"
        self.doc.duration_s = self._earlier_s + time.perf_counter() - self._started
        self.save()
        if finished and self.doc.incomplete:  # the loop ended without measuring them all
            self.doc.status = "interrupted"
            self.doc.finished_at = None
            self.save()
        self._release_lock()

    def interrupted(
        self, done: int, planned: int, unit: str = "cases", signum: int = signal.SIGINT
    ) -> Interrupted:
        """Close an interrupted run (no ``finished_at``, ``status`` interrupted); the error to
        raise says where it is, with exit status 128 + ``signum`` (130: Ctrl-C; 143: SIGTERM)."""
        self.doc.status = "interrupted"
        self.close(finished=False)
        how = "interrupted" if signum == signal.SIGINT else f"stopped by {_signal_label(signum)}"
        error = Interrupted(
            f"{how} after {done} of {planned} {unit}; what was measured is in {self.path}"
            + (f" (finish it: --resume {self.path})" if self._planned is not None else "")
        )
        error.exit_code = 128 + signum
        return error

    @contextlib.contextmanager
    def measuring(
        self, planned: int, done: Callable[[], int], unit: str = "cases"
    ) -> Iterator[None]:
        """Around the loop that fills the document: closed when the loop ends; on Ctrl-C (or
        SIGTERM turned into KeyboardInterrupt) closed as interrupted and
        :class:`~voxbench.errors.Interrupted` raised, with ``done()`` of ``planned`` measured."""
        try:
            yield
        except KeyboardInterrupt as exc:
            raise self.interrupted(done(), planned, unit, _signum(exc)) from None
        self.close()
