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
