"""Fill frames without a measurement (face lost, frame dropped) from their tracked neighbours: linear
between two tracked frames, held at the ends; rotations by slerp."""

from __future__ import annotations

import numpy as np

from ..rotations import slerp_track


def _positions(known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the known frames, and every frame's fractional position among them."""
    idx = np.flatnonzero(known)
    return idx, np.interp(np.arange(known.size), idx, np.arange(idx.size, dtype=np.float64))


def fill_linear(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """(T, ...) array with the rows where ``known`` is False replaced by linear interpolation."""
    if known.all():
        return values.copy()
    idx, pos = _positions(known)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, idx.size - 1)
    w = (pos - lo).reshape((-1,) + (1,) * (values.ndim - 1))
    return ((1.0 - w) * values[idx[lo]] + w * values[idx[hi]]).astype(values.dtype, copy=False)


def fill_rotations(rotvec: np.ndarray, known: np.ndarray) -> np.ndarray:
    """(T, 3) axis-angle track with unknown frames slerped between their tracked neighbours."""
    if known.all():
        return rotvec.copy()
    idx, pos = _positions(known)
    return slerp_track(rotvec[idx], pos).astype(rotvec.dtype, copy=False)


MAX_BRIDGED_SECONDS = 0.1  # 1 frame at 15 fps, 2 at 25, 3 at 29.97 or 30: shorter than a blink's closing


def bridged_confidence(confidence: np.ndarray, dropped: list[int], fps: float) -> np.ndarray:
    """``confidence`` (T,) with each run of dropped frames (missing from the file) of at most MAX_BRIDGED_SECONDS
    (rounded to whole frames) between two frames carrying the lower of those two frames' confidence instead of 0 — for
    the reference video's weight in a take (``core.motion.fusion``), not for measuring: nothing was seen there.

    A variable-frame-rate file (phones skip frames when the light is low, about one in four) has no picture there:
    the interpolation between its neighbours is all a player shows too. At confidence 0 each skipped frame faded the
    reference video out and back in (``core.motion.fusion.video_weight``): on a 30 fps file that skips one frame in
    four, the video's share of the take stayed under a third and averaged a tenth. Longer gaps, and frames where the
    face was lost, stay at 0."""
    out = np.asarray(confidence).copy()
    frames = np.asarray(sorted(dropped), np.int64)
    if frames.size == 0:
        return out
    breaks = np.flatnonzero(np.diff(frames) > 1)
    for run in np.split(frames, breaks + 1):
        before, after = int(run[0]) - 1, int(run[-1]) + 1
        if run.size <= round(MAX_BRIDGED_SECONDS * fps) and before >= 0 and after < out.size:
            out[run] = min(out[before], out[after])
    return out
