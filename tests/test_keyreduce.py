"""Key reduction keeps the linear-interpolation error within the tolerance, with far fewer keys."""

from __future__ import annotations

import numpy as np
import pytest

from lattice_talk.core.keyreduce import interpolate_kept, reduce_keys
from lattice_talk.core.rotations import axis_angle_to_euler_xyz
from lattice_talk.core.lbs import rodrigues_np


@pytest.mark.parametrize(("tolerance", "max_share"), [(1e-3, 1.0), (1e-2, 0.35), (5e-2, 0.15)])
def test_reduction_respects_tolerance(tolerance, max_share):
    rng = np.random.default_rng(0)
    t = np.arange(900) / 30.0
    curve = 0.5 * np.sin(2 * np.pi * 0.3 * t) + 0.2 * np.sin(2 * np.pi * 1.1 * t) + rng.normal(0, 1e-4, len(t))
    kept = reduce_keys(curve, tolerance)
    assert kept[0] == 0 and kept[-1] == len(curve) - 1
    assert np.abs(interpolate_kept(curve, kept) - curve).max() <= tolerance
    assert len(kept) <= max_share * len(curve)


def test_reduction_edge_cases():
    assert list(reduce_keys(np.zeros(50), 1e-3)) == [0, 49]  # a flat curve needs two keys
    assert list(reduce_keys(np.array([1.0, 2.0]), 1e-3)) == [0, 1]
    assert len(reduce_keys(np.arange(10.0) ** 2, 0.0)) == 10  # tolerance 0 keeps every frame
    step = np.r_[np.zeros(20), np.ones(20)]
    kept = reduce_keys(step, 1e-3)
    assert np.abs(interpolate_kept(step, kept) - step).max() <= 1e-3


def test_euler_xyz_reproduces_rotation_and_is_continuous():
    rng = np.random.default_rng(2)
    rotvecs = rng.normal(0, 0.6, (40, 3))
    euler = axis_angle_to_euler_xyz(rotvecs)
    cx, cy, cz = (np.cos(euler[:, i]) for i in range(3))
    sx, sy, sz = (np.sin(euler[:, i]) for i in range(3))
    rx = np.stack([np.ones_like(cx), 0 * cx, 0 * cx, 0 * cx, cx, -sx, 0 * cx, sx, cx], -1).reshape(-1, 3, 3)
    ry = np.stack([cy, 0 * cy, sy, 0 * cy, np.ones_like(cy), 0 * cy, -sy, 0 * cy, cy], -1).reshape(-1, 3, 3)
    rz = np.stack([cz, -sz, 0 * cz, sz, cz, 0 * cz, 0 * cz, 0 * cz, np.ones_like(cz)], -1).reshape(-1, 3, 3)
    assert np.allclose(rz @ ry @ rx, rodrigues_np(rotvecs), atol=1e-9)
    # A yaw sweep through 180° stays continuous (no 2π jumps between frames).
    sweep = np.stack([np.zeros(50), np.zeros(50), np.linspace(2.8, 3.5, 50)], -1)
    sweep_rotvec = np.where(sweep[:, 2:] > np.pi, sweep - np.array([0, 0, 2 * np.pi]), sweep)
    assert np.abs(np.diff(axis_angle_to_euler_xyz(sweep_rotvec), axis=0)).max() < 0.1


def test_batch_reduction_matches_curve_by_curve_bound():
    from lattice_talk.core.keyreduce import reduce_keys_batch

    rng = np.random.default_rng(5)
    t = np.arange(600) / 30.0
    curves = np.stack([np.sin(2 * np.pi * f * t + p) for f, p in zip(rng.uniform(0.1, 4, 40), rng.uniform(0, 6, 40))])
    keep = reduce_keys_batch(curves, 0.02)
    for curve, mask in zip(curves, keep):
        kept = np.flatnonzero(mask)
        assert kept[0] == 0 and kept[-1] == len(curve) - 1
        assert np.abs(interpolate_kept(curve, kept) - curve).max() <= 0.02
    assert keep.sum() < curves.size
