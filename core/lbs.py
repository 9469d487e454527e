"""Linear blend skinning for FLAME-schema heads, in numpy and in torch.

The two implementations follow the same numbered steps (as in smplx's ``lbs.py``) and agree to 1e-5;
numpy serves Blender-side checks and the CLI without torch, torch serves training and fitting
(batched, differentiable).

One deliberate difference from FLAME's reference code: joints are regressed from the identity-shaped mesh
(template + shape), not after expressions are added. A Blender rig has one rest pose per head, so this is
the only way the add-on's armature and the core model can agree exactly; FLAME's expression-driven joint
shift is well under a millimetre.

Shapes: ``B`` batch, ``V`` vertices, ``J`` joints, ``S`` shape components, ``E`` expression
components, ``P = 9 * (J - 1)`` pose-corrective features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is optional at run time for the numpy path
    import torch


@dataclass
class LBSResult:
    """Posed vertices and joints (world frame of the head) plus the unposed shaped mesh."""

    vertices: Any  # (B, V, 3)
    joints: Any  # (B, J, 3) posed joint locations
    v_shaped: Any  # (B, V, 3) template + shape + expression, before pose


# ----------------------------------------------------------------------------------------- numpy


def rodrigues_np(rotvec: np.ndarray) -> np.ndarray:
    """Axis-angle (..., 3) → rotation matrices (..., 3, 3)."""
    angle = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    axis = rotvec / np.maximum(angle, 1e-12)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zeros = np.zeros_like(x)
    skew = np.stack([zeros, -z, y, z, zeros, -x, -y, x, zeros], axis=-1).reshape(rotvec.shape[:-1] + (3, 3))
    sin = np.sin(angle)[..., None]
    cos = np.cos(angle)[..., None]
    eye = np.eye(3, dtype=rotvec.dtype)
    return eye + sin * skew + (1.0 - cos) * (skew @ skew)


def _chain_transforms_np(rot_mats: np.ndarray, joints: np.ndarray, parents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint world transforms relative to the rest pose: (B, J, 4, 4), and posed joints (B, J, 3)."""
    batch, n_joints = joints.shape[:2]
    rel_joints = joints.copy()
    rel_joints[:, 1:] -= joints[:, parents[1:]]
    local = np.zeros((batch, n_joints, 4, 4), dtype=joints.dtype)
    local[:, :, :3, :3] = rot_mats
    local[:, :, :3, 3] = rel_joints
    local[:, :, 3, 3] = 1.0
    world = [local[:, 0]]
    for j in range(1, n_joints):  # parents come before children (checked by HeadModel)
        world.append(world[parents[j]] @ local[:, j])
    world_t = np.stack(world, axis=1)
    posed_joints = world_t[:, :, :3, 3].copy()
    # Remove the rest-pose joint location so the transform maps rest-space vertices.
    world_t[:, :, :3, 3] -= np.einsum("bjik,bjk->bji", world_t[:, :, :3, :3], joints)
    return world_t, posed_joints


def lbs_np(
    v_template: np.ndarray,
    shapedirs: np.ndarray,
    exprdirs: np.ndarray,
    posedirs: np.ndarray,
    j_regressor: np.ndarray,
    parents: np.ndarray,
    lbs_weights: np.ndarray,
    betas: np.ndarray,
    expression: np.ndarray,
    pose: np.ndarray,
    translation: np.ndarray | None = None,
    rest_joints: np.ndarray | None = None,
) -> LBSResult:
    """FLAME-style LBS. ``pose`` is axis-angle per joint, (B, J, 3); ``betas`` (B, S); ``expression`` (B, E).

    ``rest_joints`` (J, 3), when given, replaces step 2, so a subset of the vertices can be posed on its
    own (the joint regressor needs the whole mesh)."""
    batch = pose.shape[0]
    # 1. Identity and expression blend shapes.
    v_identity = v_template[None] + np.einsum("vcs,bs->bvc", shapedirs, betas)
    v_shaped = v_identity + np.einsum("vce,be->bvc", exprdirs, expression)
    # 2. Joints regressed from the identity shape (see the module docstring).
    if rest_joints is None:
        joints = np.einsum("jv,bvc->bjc", j_regressor, v_identity)
    else:
        joints = np.broadcast_to(rest_joints, (batch,) + rest_joints.shape).astype(v_shaped.dtype)
    # 3. Joint rotations.
    rot_mats = rodrigues_np(pose)
    # 4. Pose-corrective blend shapes from (R - I) of every non-root joint.
    pose_feature = (rot_mats[:, 1:] - np.eye(3, dtype=pose.dtype)).reshape(batch, -1)
    v_posed = v_shaped + np.einsum("vcp,bp->bvc", posedirs, pose_feature)
    # 5. Rigid transforms down the kinematic chain.
    transforms, posed_joints = _chain_transforms_np(rot_mats, joints, parents)
    # 6. Blend the transforms per vertex and apply them.
    blended = np.einsum("vj,bjik->bvik", lbs_weights, transforms)
    vertices = np.einsum("bvik,bvk->bvi", blended[:, :, :3, :3], v_posed) + blended[:, :, :3, 3]
    # 7. Global translation.
    if translation is not None:
        vertices = vertices + translation[:, None]
        posed_joints = posed_joints + translation[:, None]
    return LBSResult(vertices=vertices, joints=posed_joints, v_shaped=v_shaped)


# ----------------------------------------------------------------------------------------- torch


def rodrigues_torch(rotvec: "torch.Tensor") -> "torch.Tensor":
    """Axis-angle (..., 3) → rotation matrices (..., 3, 3); smooth through zero (Taylor terms below 1e-4 rad),
    so losses on poses near rest get finite, exact gradients."""
    import torch

    theta2 = (rotvec * rotvec).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2.clamp_min(1e-12))
    small = theta2 < 1e-8
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)  # sin θ / θ
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-12))  # (1 − cos θ) / θ²
    x, y, z = rotvec.unbind(-1)
    zeros = torch.zeros_like(x)
    k = torch.stack([zeros, -z, y, z, zeros, -x, -y, x, zeros], dim=-1).reshape(*rotvec.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device).expand_as(k)
    return eye + a[..., None] * k + b[..., None] * (k @ k)


def lbs_torch(
    v_template: "torch.Tensor",
    shapedirs: "torch.Tensor",
    exprdirs: "torch.Tensor",
    posedirs: "torch.Tensor",
    j_regressor: "torch.Tensor",
    parents: "torch.Tensor",
    lbs_weights: "torch.Tensor",
    betas: "torch.Tensor",
    expression: "torch.Tensor",
    pose: "torch.Tensor",
    translation: "torch.Tensor | None" = None,
    rest_joints: "torch.Tensor | None" = None,
) -> LBSResult:
    """Batched, differentiable twin of :func:`lbs_np` (same arguments, torch tensors)."""
    import torch
    import torch.nn.functional as F

    batch, n_joints = pose.shape[:2]
    # 1. Identity and expression blend shapes.
    v_identity = v_template + torch.einsum("vcs,bs->bvc", shapedirs, betas)
    v_shaped = v_identity + torch.einsum("vce,be->bvc", exprdirs, expression)
    # 2. Joints regressed from the identity shape (see the module docstring).
    if rest_joints is None:
        joints = torch.einsum("jv,bvc->bjc", j_regressor, v_identity)
    else:
        joints = rest_joints.to(v_shaped.dtype).expand(batch, *rest_joints.shape)
    # 3. Joint rotations.
    rot_mats = rodrigues_torch(pose)
    # 4. Pose correctives.
    eye = torch.eye(3, dtype=pose.dtype, device=pose.device)
    pose_feature = (rot_mats[:, 1:] - eye).reshape(batch, -1)
    v_posed = v_shaped + torch.einsum("vcp,bp->bvc", posedirs, pose_feature)
    # 5. Kinematic chain; parents precede children, so one forward pass suffices.
    rel_joints = joints.clone()
    rel_joints[:, 1:] = joints[:, 1:] - joints[:, parents[1:]]
    local = torch.cat([F.pad(rot_mats, (0, 0, 0, 1)), F.pad(rel_joints[..., None], (0, 0, 0, 1), value=1.0)], dim=-1)
    world = [local[:, 0]]
    for j in range(1, n_joints):
        world.append(world[int(parents[j])] @ local[:, j])
    world_t = torch.stack(world, dim=1)
    posed_joints = world_t[:, :, :3, 3]
    rest_offset = torch.einsum("bjik,bjk->bji", world_t[:, :, :3, :3], joints)
    transforms = torch.cat([world_t[:, :, :3, :3], (posed_joints - rest_offset)[..., None]], dim=-1)
    # 6. Blend and apply.
    blended = torch.einsum("vj,bjik->bvik", lbs_weights, transforms)
    vertices = torch.einsum("bvik,bvk->bvi", blended[..., :3], v_posed) + blended[..., 3]
    # 7. Global translation.
    if translation is not None:
        vertices = vertices + translation[:, None]
        posed_joints = posed_joints + translation[:, None]
    return LBSResult(vertices=vertices, joints=posed_joints, v_shaped=v_shaped)


def barycentric_points(vertices: Any, faces: Any, face_idx: Any, bary: Any) -> Any:
    """Points on a (B, V, 3) mesh given triangle indices (L,) and barycentric weights (L, 3) → (B, L, 3).

    Works for numpy arrays and torch tensors alike (only indexing and broadcasting)."""
    corners = vertices[:, faces[face_idx]]  # (B, L, 3 corners, 3 xyz)
    return (corners * bary[None, :, :, None]).sum(2)
