"""A generation run on a worker thread: progress, ETA, cancel, and the result handed back.

The Blender operator polls a job from its modal timer and writes the result on the main thread (so the
write is one undo step); tests and the CLI use the same object. Nothing here touches Blender data.
"""

from __future__ import annotations

import enum
import threading
import time
import traceback

from .clip import AnimationClip
from .errors import LatticeTalkError
from .pipeline import Cancelled, GenerateRequest, Pipeline, check_request


class JobState(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class GenerationJob:
    """Run ``pipeline`` on ``request`` in a daemon thread. ``start()`` prepares the pipeline on the
    calling (main) thread first, so torch is imported there."""

    def __init__(self, pipeline: Pipeline, request: GenerateRequest):
        self.pipeline = pipeline
        self.request = request
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._state = JobState.PENDING
        self._stage = "waiting"
        self._fraction = 0.0
        self._started_at = 0.0
        self._result: AnimationClip | None = None
        self._error = ""

    # ---------------------------------------------------------------- control
    def start(self) -> "GenerationJob":
        check_request(self.request)
        self.pipeline.prepare()
        self._started_at = time.monotonic()
        self._state = JobState.RUNNING
        self._thread = threading.Thread(target=self._run, name="lattice_talk generate", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the pipeline to stop at its next step; poll :attr:`state` or :meth:`wait` for the end."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> JobState:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state

    # ---------------------------------------------------------------- status
    @property
    def state(self) -> JobState:
        with self._lock:
            return self._state

    @property
    def finished(self) -> bool:
        return self.state in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)

    def progress(self) -> tuple[str, float, float | None]:
        """(stage, fraction 0..1, seconds left or None while too early to tell)."""
        with self._lock:
            stage, fraction = self._stage, self._fraction
        elapsed = time.monotonic() - self._started_at
        eta = elapsed * (1.0 - fraction) / fraction if fraction >= 0.05 and self._started_at else None
        return stage, fraction, eta

    @property
    def result(self) -> AnimationClip:
        if self.state is not JobState.DONE or self._result is None:
            raise LatticeTalkError(f"generation has no result ({self.state.value}): {self._error}".rstrip(": "))
        return self._result

    @property
    def error(self) -> str:
        return self._error

    # ---------------------------------------------------------------- worker
    def _report(self, stage: str, fraction: float) -> None:
        with self._lock:
            self._stage, self._fraction = stage, min(max(float(fraction), 0.0), 1.0)

    def _run(self) -> None:
        try:
            clip = self.pipeline.generate(self.request, self._report, self._stop.is_set)
            # A pipeline checks for a stop between its steps; one asked during the last step still drops the result.
            final = (JobState.CANCELLED, None, "cancelled") if self._stop.is_set() else (JobState.DONE, clip, "")
        except Cancelled:
            final = (JobState.CANCELLED, None, "cancelled")
        except LatticeTalkError as exc:
            final = (JobState.FAILED, None, str(exc))
        except Exception as exc:  # a bug, not bad input: keep the traceback for the log
            final = (JobState.FAILED, None, f"unexpected error ({exc!r}); details:\n{traceback.format_exc()}")
        with self._lock:
            self._state, self._result, self._error = final
            if final[0] is JobState.DONE:
                self._stage, self._fraction = "done", 1.0


def run_sync(pipeline: Pipeline, request: GenerateRequest, progress=None) -> AnimationClip:
    """The same work on the calling thread (scripts, ``blender -b``, the CLI)."""
    check_request(request)
    pipeline.prepare()
    return pipeline.generate(request, progress or (lambda stage, fraction: None), lambda: False)
