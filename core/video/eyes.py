"""Eye closure per eye and blink events from the pose-free face-mesh points.

Openness of an eye is the mean of three upper-to-lower lid distances over the eye's width (corner to
corner), measured in the canonical head frame so head turns do not fake a blink. It is normalised per
video: 0 at the eye's usual open state (a high percentile over the video), 1 at a closed lid, whose
openness the face mesh reports as about ``CLOSED_RATIO`` of the open one (it never reaches 0)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (outer corner, inner corner, ((upper, lower) lid pairs)) per eye, MediaPipe indices; subject's left first.
EYE_GEOMETRY = {
    "left": (263, 362, ((385, 380), (386, 374), (387, 373))),
    "right": (33, 133, ((160, 144), (159, 145), (158, 153))),
}
OPEN_PERCENTILE = 90.0  # the eye's open reference: most frames of a talking head have the eyes open
CLOSED_RATIO = 0.15  # openness of a closed eye relative to open, as the face mesh reports it (real clip: 0.1-0.18)
BLINK_ON, BLINK_OFF = 0.5, 0.3  # hysteresis on the mean closure of both eyes
BLINK_MAX_SECONDS = 0.8  # longer closures are eyes shut, not blinks


@dataclass(frozen=True)
class Blink:
    start: int  # first frame with closure above BLINK_OFF
    end: int  # last such frame (inclusive)
    peak: int  # frame of maximum closure
    closure: float  # the maximum mean closure of both eyes, 0..1


def openness(points: np.ndarray) -> np.ndarray:
    """(T, 478, 3) pose-free points → (T, 2) lid opening over eye width, columns (left, right) of the subject."""
    cols = []
    for outer, inner, pairs in EYE_GEOMETRY.values():
        width = np.linalg.norm(points[:, outer] - points[:, inner], axis=-1)
        lids = np.mean([np.linalg.norm(points[:, up] - points[:, low], axis=-1) for up, low in pairs], axis=0)
        cols.append(lids / np.maximum(width, 1e-9))
    return np.stack(cols, axis=1)


def closure(points: np.ndarray, reliable: np.ndarray | None = None) -> np.ndarray:
    """(T, 2) eye closure in 0 (open as usual) .. 1 (closed), columns (left, right); the open reference
    is taken over the ``reliable`` frames (default: all)."""
    ratio = openness(points)
    ref = ratio if reliable is None or not reliable.any() else ratio[reliable]
    open_ref = np.percentile(ref, OPEN_PERCENTILE, axis=0)
    return np.clip((open_ref - ratio) / ((1.0 - CLOSED_RATIO) * open_ref), 0.0, 1.0).astype(np.float32)


def blinks(eye_closure: np.ndarray, fps: float) -> list[Blink]:
    """Blink events: the mean closure of both eyes rises above ``BLINK_ON`` and falls back under
    ``BLINK_OFF`` within ``BLINK_MAX_SECONDS``."""
    both = eye_closure.mean(axis=1)
    events, start, armed = [], None, False
    for t, value in enumerate(np.append(both, 0.0)):  # the appended 0 closes an event at the end
        if start is None and value > BLINK_OFF:
            start, armed = t, False
        if start is not None:
            armed = armed or value > BLINK_ON
            if value <= BLINK_OFF:
                end = t - 1
                if armed and (end - start + 1) <= BLINK_MAX_SECONDS * fps:
                    peak = start + int(np.argmax(both[start : end + 1]))
                    events.append(Blink(start, end, peak, float(both[peak])))
                start = None
    return events
