"""The run folder, ``<output>/<machine-id>/<run-id>/``: one lifecycle for every kind of run.

``voxbench run``, ``load``, ``micro``, ``quality`` and the pytest plugin all go through
:class:`RunFolder`:

1. :meth:`RunFolder.create` makes the folder for a new document (a one-line error when it
   cannot);
2. :meth:`RunFolder.save` rewrites ``results.json`` atomically (a temporary file, then
   ``os.replace``) after every case or level, so an interrupted or killed run keeps what it
   measured and never leaves a half-written document;
3. :meth:`RunFolder.close` stamps ``finished_at`` and ``duration_s`` and saves; an interrupted
   run is closed by :meth:`RunFolder.interrupted` without ``finished_at``, and the
   :class:`~voxbench.errors.Interrupted` it returns says how far the run got and where it is.

:meth:`RunFolder.measuring` wraps the loop that fills the document and does 3. either way.
Rendering ``report.md`` is not done here: reports sit above results (docs/architecture.md), and
:mod:`voxbench.api` writes the report after closing, interrupted or not.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import time
from collections.abc import Callable, Iterator
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


def write_json(doc: ResultDocument, path: Path) -> None:
    """Write ``doc`` to ``path`` atomically: readers see the old file or the new one, never half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(doc.model_dump_json(indent=2), encoding="utf-8")
    os.replace(tmp, path)


class RunFolder:
    """One run's folder and its document. Create it with :meth:`create` (a new run) or
    :meth:`open` (a finished run re-judged, e.g. by ``voxbench quality``)."""

    def __init__(self, path: Path, doc: ResultDocument, started: float | None = None) -> None:
        self.path = path
        self.doc = doc
        # perf_counter() when the run began (default: now); duration_s is measured from it
        self._started = time.perf_counter() if started is None else started

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

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS

    @property
    def report_path(self) -> Path:
        return self.path / REPORT

    @property
    def audio_dir(self) -> Path:
        return self.path / AUDIO

    def save(self) -> None:
        """Rewrite ``results.json`` atomically with the document as it is now."""
        write_json(self.doc, self.results_path)

    def close(self, finished: bool = True) -> None:
        """Stamp the run's end (``finished_at`` unless interrupted) and its duration; save."""
        if finished:
            self.doc.finished_at = now_iso()
        self.doc.duration_s = time.perf_counter() - self._started
        self.save()

    def interrupted(self, done: int, planned: int, unit: str = "cases") -> Interrupted:
        """Close an interrupted run (no ``finished_at``); the error to raise says where it is."""
        self.close(finished=False)
        return Interrupted(
            f"interrupted after {done} of {planned} {unit}; what was measured is in {self.path}"
        )

    @contextlib.contextmanager
    def measuring(
        self, planned: int, done: Callable[[], int], unit: str = "cases"
    ) -> Iterator[None]:
        """Around the loop that fills the document: closed when the loop ends; on Ctrl-C (or
        SIGTERM turned into KeyboardInterrupt) closed as interrupted and
        :class:`~voxbench.errors.Interrupted` raised, with ``done()`` of ``planned`` measured."""
        try:
            yield
        except KeyboardInterrupt:
            raise self.interrupted(done(), planned, unit) from None
        self.close()
