"""Axis-angle ↔ quaternion ↔ matrix and slerp in numpy alone (Blender's Python has numpy but no scipy).

Quaternions are (w, x, y, z), as in Blender's ``mathutils``."""

from __future__ import annotations

import numpy as np


def axis_angle_to_quat(rotvec: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle → (..., 4) unit quaternions."""
    angle = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    # sin(θ/2)/θ, with its limit 1/2 at θ = 0.
    scale = np.where(angle > 1e-12, np.sin(angle / 2) / np.maximum(angle, 1e-12), 0.5)
    return np.concatenate([np.cos(angle / 2), rotvec * scale], axis=-1)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 4) Hamilton product a·b (apply b, then a)."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def quat_to_axis_angle(quat: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions → (..., 3) axis-angle with angle in [0, π]."""
    quat = np.where(quat[..., :1] < 0, -quat, quat)  # w ≥ 0 picks the rotation angle ≤ π
    vec_norm = np.linalg.norm(quat[..., 1:], axis=-1, keepdims=True)
    angle = 2 * np.arctan2(vec_norm, quat[..., :1])
    scale = np.where(vec_norm > 1e-12, angle / np.maximum(vec_norm, 1e-12), 2.0)
    return quat[..., 1:] * scale


def slerp_track(rotvecs: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Sample a (T, 3) axis-angle track at fractional frame ``positions`` (in [0, T-1]) by slerp along
    the short arc between neighbouring frames → (len(positions), 3)."""
    quats = axis_angle_to_quat(rotvecs)
    lo = np.clip(np.floor(positions).astype(np.int64), 0, max(len(quats) - 2, 0))
    hi = np.minimum(lo + 1, len(quats) - 1)
    t = (positions - lo)[:, None]
    q0, q1 = quats[lo], quats[hi]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)  # the short arc
    dot = np.abs(dot).clip(max=1.0)
    theta = np.arccos(dot)
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-8  # (almost) the same rotation: linear blend is exact enough
    w0 = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / np.where(near, 1.0, sin_theta))
    w1 = np.where(near, t, np.sin(t * theta) / np.where(near, 1.0, sin_theta))
    q = w0 * q0 + w1 * q1
    return quat_to_axis_angle(q / np.linalg.norm(q, axis=-1, keepdims=True))


def mean_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle: the rotation halfway between a and b along the short arc (the slerp midpoint)."""
    qa, qb = axis_angle_to_quat(a), axis_angle_to_quat(b)
    qb = np.where(np.sum(qa * qb, axis=-1, keepdims=True) < 0, -qb, qb)
    q = qa + qb
    return quat_to_axis_angle(q / np.linalg.norm(q, axis=-1, keepdims=True))


def axis_angle_to_euler_xyz(rotvec: np.ndarray) -> np.ndarray:
    """(T, 3) axis-angle → (T, 3) Blender 'XYZ' Euler angles (R = Rz·Ry·Rx), continuous over time.

    Bones are keyed as Euler because that is what animators edit in the Graph Editor; each angle track
    is unwrapped so a turn through ±180° does not jump by 2π between frames."""
    from .lbs import rodrigues_np

    r = rodrigues_np(np.asarray(rotvec, dtype=np.float64))
    x = np.arctan2(r[..., 2, 1], r[..., 2, 2])
    y = np.arctan2(-r[..., 2, 0], np.hypot(r[..., 2, 1], r[..., 2, 2]))
    z = np.arctan2(r[..., 1, 0], r[..., 0, 0])
    return np.unwrap(np.stack([x, y, z], axis=-1), axis=0)


def matrix_to_rotvec(rotation: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices → (..., 3) axis-angle (Shepperd's quaternion extraction: each of the
    four candidate rows is 4·q_i·q, the one with the largest q_i is well conditioned)."""
    m = np.asarray(rotation, np.float64)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    d21, d02, d10 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    s01, s02, s12 = m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1]
    diag = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], axis=-1)
    rows = np.stack([
        np.stack([diag[..., 0], d21, d02, d10], axis=-1),
        np.stack([d21, diag[..., 1], s01, s02], axis=-1),
        np.stack([d02, s01, diag[..., 2], s12], axis=-1),
        np.stack([d10, s02, s12, diag[..., 3]], axis=-1),
    ], axis=-2)
    quat = np.take_along_axis(rows, np.argmax(diag, axis=-1)[..., None, None], axis=-2)[..., 0, :]
    return quat_to_axis_angle(quat / np.linalg.norm(quat, axis=-1, keepdims=True))
