"""A head's MediaPipe points for given expressions and joint rotations, without posing the whole mesh.

Only the vertices of the triangles the landmark embedding uses are skinned (about a quarter of the
default head), with the rest joints precomputed from the full identity mesh: the same numbers as
``HeadModel.forward`` + ``landmark_points``, several times faster — what corpus generation and
retargeting evaluate thousands of times."""

from __future__ import annotations

import numpy as np

from .errors import HeadModelError
from .head_model import HeadModel
from .lbs import barycentric_points, lbs_np


class LandmarkRig:
    def __init__(self, head: HeadModel, betas: np.ndarray | None = None):
        if head.landmarks is None:
            raise HeadModelError(f"{head.head_id}: no MediaPipe landmark embedding")
        emb = head.landmarks
        betas = np.zeros(head.n_shape, np.float32) if betas is None else np.asarray(betas, np.float32)
        self.mediapipe_index = emb.mediapipe_index
        triangles = head.faces[emb.face_index]
        self._vertices, local = np.unique(triangles, return_inverse=True)
        self._triangles = local.reshape(-1, 3)
        self._barycentric = emb.barycentric.astype(np.float32)
        v_identity = head.v_template + np.einsum("vcs,s->vc", head.shapedirs, betas)
        self._rest_joints = (head.j_regressor @ v_identity).astype(np.float32)
        sub = self._vertices
        self._v = v_identity[sub].astype(np.float32)
        self._exprdirs = head.exprdirs[sub]
        self._posedirs = head.posedirs[sub]
        self._weights = head.lbs_weights[sub]
        self._parents = head.parents
        self.n_expression = head.n_expression

    def points(self, expression: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """(B, E) expression and (B, 5, 3) axis-angle pose → (B, L, 3) landmark positions."""
        batch = expression.shape[0]
        result = lbs_np(self._v, np.zeros((len(self._v), 3, 0), np.float32), self._exprdirs, self._posedirs, None,
                        self._parents, self._weights, np.zeros((batch, 0), np.float32), expression, pose,
                        rest_joints=self._rest_joints)
        return barycentric_points(result.vertices, self._triangles, np.arange(len(self._triangles)), self._barycentric)
