"""The arrays of a tracked video that the face models read, and their left–right mirror image.

Training caches tracks as :class:`TrackArrays` and adds their mirror images (units and pose); the learned model
averages units and pose over a video and its mirror image when predicting (a left–right mirrored video then gives
exactly the mirrored face and pose)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..video.canonical import mirror_image_points, point_mirror

TRACK_ARRAYS = ("points", "points_metric", "head_rotation", "flow", "eye_closure", "confidence")


@dataclass(eq=False)
class TrackArrays:
    """The arrays of a :class:`~core.video.track.VideoTrack` the face models read (same names and shapes)."""

    source: str
    fps: float
    width: int
    height: int
    points: np.ndarray  # (T, 478, 3)
    points_metric: np.ndarray  # (T, 478, 3)
    head_rotation: np.ndarray  # (T, 3)
    flow: np.ndarray  # (T, 478, 2)
    eye_closure: np.ndarray  # (T, 2)
    confidence: np.ndarray  # (T,)
    face_crops: np.ndarray | None = None  # (T, S, S) uint8 grey (core.video.face_crop); None: tracked without

    @property
    def n_frames(self) -> int:
        return int(self.points.shape[0])


def unit_mirror(unit_names: tuple[str, ...]) -> np.ndarray:
    """Column order of the mirrored units: each …Left unit takes its …Right partner and vice versa."""
    index = {n: i for i, n in enumerate(unit_names)}

    def partner(name: str) -> str:
        for a, b in (("Left", "Right"), ("Right", "Left")):
            if name.endswith(a) and name[: -len(a)] + b in index:
                return name[: -len(a)] + b
        return name

    return np.array([index[partner(n)] for n in unit_names])


def mirror_rotation(rotvec: np.ndarray) -> np.ndarray:
    """Axis-angle of M·R·M with M = diag(−1, 1, 1): a mirrored head turns the other way about Y and Z."""
    return np.asarray(rotvec) * np.array([1.0, -1.0, -1.0], np.float32)


def mirror_track(track) -> TrackArrays:
    """The track of the horizontally mirrored video (points re-labelled so each keeps its meaning)."""
    order = point_mirror()
    flip = np.array([-1.0, 1.0, 1.0], np.float32)
    return TrackArrays(track.source + " (mirrored)", track.fps, track.width, track.height, mirror_image_points(track.points),
                       track.points_metric[:, order] * flip, mirror_rotation(track.head_rotation),
                       track.flow[:, order] * flip[:2], track.eye_closure[:, ::-1].copy(), track.confidence,
                       _flipped(getattr(track, "face_crops", None)))


def _flipped(crops: np.ndarray | None) -> np.ndarray | None:
    """The crops of the mirrored video: the crop box is symmetric, so each crop flips left–right. A view, not
    a copy: training keeps every video's mirror image (~450 MB of crops for 1280 entries), readers stack or copy."""
    return None if crops is None else crops[..., ::-1]
