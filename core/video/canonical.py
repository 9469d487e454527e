"""MediaPipe's canonical face model (Apache-2.0), vendored as 468 vertex positions in metres, and the points
that move rigidly with the skull (the ones head pose is fitted to).

Frame: the project's head frame — +X the subject's left, +Y up, +Z out of the face (toward a camera
in front), metres. See vendor_models/face_mesh/README.md for the source."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..mediapipe_points import FOREHEAD, NOSE_BRIDGE
from .errors import VideoError

CANONICAL_PATH = Path(__file__).resolve().parents[2] / "vendor_models" / "face_mesh" / "canonical_face_model.npy"
EYE_CORNERS = (33, 133, 263, 362)  # outer/inner canthi, right then left: skull-fixed, unlike the lids
# Points for the rigid fit: forehead, nose bridge and canthi barely move with expression (the jaw, lips,
# cheeks and brows do). The forehead points sit on the upper face contour, where brows pull least.
POSE_POINTS = tuple(dict.fromkeys(NOSE_BRIDGE + FOREHEAD + EYE_CORNERS))


@lru_cache(maxsize=1)
def canonical_points() -> np.ndarray:
    """(468, 3) float64, metres: the canonical face (read-only)."""
    try:
        points = np.load(CANONICAL_PATH, allow_pickle=False).astype(np.float64)
    except (OSError, ValueError) as exc:
        raise VideoError(f"{CANONICAL_PATH}: the vendored canonical face model is missing or damaged ({exc}); reinstall LatticeTalk") from exc
    if points.shape != (468, 3):
        raise VideoError(f"{CANONICAL_PATH}: expected (468, 3) canonical points, found {points.shape}; reinstall LatticeTalk")
    points.flags.writeable = False
    return points


@lru_cache(maxsize=1)
def point_mirror() -> np.ndarray:
    """(478,) the MediaPipe point each point becomes in the left–right mirror image. The canonical face is
    exactly symmetric (each mirrored point lands on a point); the iris rings run +X, top, −X, bottom."""
    canon = canonical_points()
    nearest = np.linalg.norm((canon * (-1.0, 1.0, 1.0))[:, None] - canon[None], axis=-1).argmin(axis=1)
    iris = {468: 473, 469: 476, 470: 475, 471: 474, 472: 477}
    iris.update({b: a for a, b in iris.items()})
    return np.concatenate([nearest, [iris[i] for i in range(468, 478)]]).astype(np.int64)


def mirror_image_points(points: np.ndarray) -> np.ndarray:
    """Image-normalised MediaPipe points (…, 478, 3) of a left–right mirrored frame, as points of the frame:
    re-labelled so each keeps its meaning, x → 1 − x (y and z keep theirs)."""
    return (points[..., point_mirror(), :] * np.array([-1.0, 1.0, 1.0], np.float32)
            + np.array([1.0, 0.0, 0.0], np.float32)).astype(np.float32)
