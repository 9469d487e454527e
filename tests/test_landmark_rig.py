"""The landmark-only rig gives the same points as posing the whole mesh."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_point_subset_and_differentiable_points_agree_with_the_full_rig():
    import torch

    from lattice_talk.core.errors import HeadModelError
    from lattice_talk.core.mediapipe_points import LIPS

    head = create("default")
    rng = np.random.default_rng(1)
    expression = rng.uniform(0, 1, (3, head.n_expression)).astype(np.float32)
    pose = np.zeros((3, 5, 3), np.float32)
    pose[:, 2, 0] = rng.uniform(0, 0.4, 3)  # jaw
    full = LandmarkRig(head).points(expression, pose)
    lips = LandmarkRig(head, point_ids=LIPS)
    assert list(lips.mediapipe_index) == list(LIPS)
    assert np.abs(lips.points(expression, pose) - full[:, list(LIPS)]).max() < 1e-7
    e = torch.from_numpy(expression).requires_grad_()
    points = lips.points_torch(e, torch.from_numpy(pose))
    assert np.abs(points.detach().numpy() - full[:, list(LIPS)]).max() < 1e-6
    points[:, :, 1].sum().backward()  # lowering the lips must be reachable through the expression units
    assert torch.count_nonzero(e.grad) > 0
    with pytest.raises(HeadModelError, match="lacks MediaPipe points"):
        LandmarkRig(head, point_ids=(0, 999))
