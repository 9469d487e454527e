"""Key reduction: the fewest keys whose straight-line interpolation stays within a tolerance.

Per-frame keys from a model are exact but hard to edit by hand. Ramer–Douglas–Peucker on each curve keeps
a key wherever dropping it would move the linearly interpolated curve by more than ``tolerance``; the
take writer then keys those frames with LINEAR interpolation, so the bound holds exactly in Blender."""

from __future__ import annotations

import numpy as np


def reduce_keys(values: np.ndarray, tolerance: float) -> np.ndarray:
    """Indices of the frames to keep for a (T,) curve; always includes the first and last frame."""
    n = len(values)
    if n <= 2 or tolerance <= 0:
        return np.arange(n)
    keep = np.zeros(n, bool)
    keep[[0, n - 1]] = True
    stack = [(0, n - 1)]
    frames = np.arange(n, dtype=np.float64)
    while stack:
        lo, hi = stack.pop()
        if hi - lo < 2:
            continue
        inner = frames[lo + 1:hi]
        line = values[lo] + (values[hi] - values[lo]) * (inner - lo) / (hi - lo)
        error = np.abs(values[lo + 1:hi] - line)
        worst = int(np.argmax(error))
        if error[worst] > tolerance:
            split = lo + 1 + worst
            keep[split] = True
            stack.extend(((lo, split), (split, hi)))
    return np.flatnonzero(keep)


def interpolate_kept(values: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The curve Blender shows for ``kept`` keys with linear interpolation (for checks and benchmarks)."""
    return np.interp(np.arange(len(values)), kept, values[kept])
