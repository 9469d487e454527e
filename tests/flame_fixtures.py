"""Synthetic FLAME files for tests: small random arrays, and the realistic FLAME-format test head, written the way
FLAME's releases store them.

FLAME's ``.pkl`` files are Python 2 pickles whose arrays are chumpy ``Ch`` objects and whose joint
regressor is a scipy CSC matrix. :func:`write_flame_pkl` (from ``tools/flame_test_head.py``) reproduces that
layout without chumpy: it pickles stand-in classes that carry the pickled names ``chumpy.ch.Ch`` and
``scipy.sparse.csc.csc_matrix``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

# The FLAME file writers live with the tool that builds the realistic FLAME-format test head.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from flame_test_head import (  # noqa: E402, F401  (re-exported for the tests)
    ROOT_SENTINEL, build_flame_test_head, fake_pickle_classes, write_embedding_npz, write_flame_npz, write_flame_pkl,
)

N_JOINTS = 5


def make_flame_arrays(seed: int, n_vertices: int = 60, n_faces: int = 100, n_shape: int = 300, n_expr: int = 100) -> dict[str, Any]:
    """Random but well-formed FLAME arrays (head-sized template, valid faces, normalised regressor and weights)."""
    rng = np.random.default_rng(seed)
    v_template = rng.uniform(-0.08, 0.08, (n_vertices, 3))
    faces = np.stack([rng.choice(n_vertices, 3, replace=False) for _ in range(n_faces)]).astype(np.uint32)
    j_regressor = np.zeros((N_JOINTS, n_vertices))
    for joint in range(N_JOINTS):  # a few vertices per joint, weights summing to one
        j_regressor[joint, rng.choice(n_vertices, 4, replace=False)] = rng.dirichlet(np.ones(4))
    return {
        "v_template": v_template,
        "f": faces,
        "shapedirs": rng.normal(0.0, 1e-3, (n_vertices, 3, n_shape + n_expr)),
        "posedirs": rng.normal(0.0, 1e-3, (n_vertices, 3, 36)),
        "J_regressor": j_regressor,
        "weights": rng.dirichlet(np.ones(N_JOINTS), n_vertices),
        "kintree_table": np.array([[ROOT_SENTINEL, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "J": j_regressor @ v_template,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


def make_embedding_arrays(seed: int, n_faces: int, n_points: int = 105) -> dict[str, np.ndarray]:
    """Random MediaPipe landmark embedding in the layout of FLAME's ``mediapipe_landmark_embedding.npz``."""
    rng = np.random.default_rng(seed)
    return {
        "lmk_face_idx": rng.integers(0, n_faces, n_points).astype(np.int64),
        "lmk_b_coords": rng.dirichlet(np.ones(3), n_points),
        "landmark_indices": np.sort(rng.choice(478, n_points, replace=False)).astype(np.int64),
    }
