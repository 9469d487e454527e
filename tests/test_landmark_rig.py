"""The landmark-only rig gives the same points as posing the whole mesh."""

from __future__ import annotations

import numpy as np

from lattice_talk.core.heads import create
from lattice_talk.core.landmark_rig import LandmarkRig


def test_landmark_rig_matches_full_forward():
    head = create("default")
    rng = np.random.default_rng(0)
    betas = rng.uniform(0, 0.5, head.n_shape).astype(np.float32)
    expression = rng.uniform(0, 1, (4, head.n_expression)).astype(np.float32)
    pose = rng.normal(0, 0.2, (4, 5, 3)).astype(np.float32)
    full = head.landmark_points(head.forward(betas=np.repeat(betas[None], 4, 0), expression=expression, pose=pose).vertices)
    fast = LandmarkRig(head, betas).points(expression, pose)
    assert fast.shape == (4, 478, 3)
    assert np.abs(full - fast).max() < 1e-6
