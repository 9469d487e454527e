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
    def __init__(self, head: HeadModel, betas: np.ndarray | None = None, point_ids: tuple[int, ...] | None = None):
        """``point_ids`` (MediaPipe indices) keeps only those points, e.g. the lips for a training loss."""
        if head.landmarks is None:
            raise HeadModelError(f"{head.head_id}: no MediaPipe landmark embedding")
        emb = head.landmarks
        rows = np.arange(len(emb.mediapipe_index))
        if point_ids is not None:
            position = {int(p): i for i, p in enumerate(emb.mediapipe_index)}
            missing = [p for p in point_ids if p not in position]
            if missing:
                raise HeadModelError(f"{head.head_id}: the landmark embedding lacks MediaPipe points {missing}")
            rows = np.array([position[p] for p in point_ids])
        betas = np.zeros(head.n_shape, np.float32) if betas is None else np.asarray(betas, np.float32)
        self.mediapipe_index = emb.mediapipe_index[rows]
        triangles = head.faces[emb.face_index[rows]]
        self._vertices, local = np.unique(triangles, return_inverse=True)
        self._triangles = local.reshape(-1, 3)
        self._barycentric = emb.barycentric[rows].astype(np.float32)
        v_identity = head.v_template + np.einsum("vcs,s->vc", head.shapedirs, betas)
        self._rest_joints = (head.j_regressor @ v_identity).astype(np.float32)
        sub = self._vertices
        self._v = v_identity[sub].astype(np.float32)
        self._exprdirs = head.exprdirs[sub]
        self._posedirs = head.posedirs[sub]
        self._weights = head.lbs_weights[sub]
        self._parents = head.parents
        self.n_expression = head.n_expression
        self._torch: dict | None = None  # tensors for points_torch, made on first use

    def points(self, expression: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """(B, E) expression and (B, 5, 3) axis-angle pose → (B, L, 3) landmark positions."""
        batch = expression.shape[0]
        result = lbs_np(self._v, np.zeros((len(self._v), 3, 0), np.float32), self._exprdirs, self._posedirs, None,
                        self._parents, self._weights, np.zeros((batch, 0), np.float32), expression, pose,
                        rest_joints=self._rest_joints)
        return barycentric_points(result.vertices, self._triangles, np.arange(len(self._triangles)), self._barycentric)

    def points_torch(self, expression: "torch.Tensor", pose: "torch.Tensor") -> "torch.Tensor":
        """Differentiable :meth:`points` (float32 tensors), for losses measured on the face itself."""
        import torch

        from .lbs import lbs_torch

        if self._torch is None:
            self._torch = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in (
                ("v", self._v), ("exprdirs", self._exprdirs), ("posedirs", self._posedirs), ("weights", self._weights),
                ("rest_joints", self._rest_joints), ("triangles", self._triangles), ("barycentric", self._barycentric))}
        t = self._torch
        batch = expression.shape[0]
        result = lbs_torch(t["v"], torch.zeros(len(self._v), 3, 0), t["exprdirs"], t["posedirs"], None,
                           torch.from_numpy(self._parents), t["weights"], torch.zeros(batch, 0), expression, pose,
                           rest_joints=t["rest_joints"])
        return barycentric_points(result.vertices, t["triangles"], torch.arange(len(self._triangles)), t["barycentric"])
