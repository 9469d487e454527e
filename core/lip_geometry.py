"""The lips measured on MediaPipe-numbered points: the inner-lip pairs, their gap in millimetres and when lips count
as closed. Retargeting's lip-contact term, the video face models' rest face and the metrics all measure the same
gap."""

from __future__ import annotations

import numpy as np

from .mediapipe_points import EYE_OUTER_CORNERS, LOWER_LIP_INNER_MID, UPPER_LIP_INNER_MID
from .motion_file import MotionTrack

MM = 1000.0  # metres → millimetres
INNER_LIP_PAIRS = ((82, 87), (UPPER_LIP_INNER_MID, LOWER_LIP_INNER_MID), (312, 317))  # (upper, lower)
CLOSURE_THRESHOLD_MM = 1.0
# The mouth opening any face can be compared by: the inner-lip gap over the eye-corner distance (no scale needed)
OPENING_POINTS = (UPPER_LIP_INNER_MID, LOWER_LIP_INNER_MID, *EYE_OUTER_CORNERS)


def lip_gap(track: MotionTrack) -> np.ndarray:
    """(T,) minimum over the inner-lip pairs 82–87, 13–14, 312–317 (those the track has; 13–14 required), mm."""
    for required in (UPPER_LIP_INNER_MID, LOWER_LIP_INNER_MID):
        track.column(required)  # a clear message when the midpoints are missing
    pairs = [pair for pair in INNER_LIP_PAIRS if all(np.any(track.point_ids == i) for i in pair)]
    pts = track.select([i for pair in pairs for i in pair]).astype(np.float64).reshape(track.n_frames, len(pairs), 2, 3)
    return np.linalg.norm(pts[:, :, 0] - pts[:, :, 1], axis=-1).min(axis=1) * MM


def opening_ratio(points: np.ndarray) -> np.ndarray:
    """(T, 4, 3) points in OPENING_POINTS order → (T,) inner-lip gap over eye-corner distance."""
    points = np.asarray(points, np.float64)
    gap = np.linalg.norm(points[:, 0] - points[:, 1], axis=-1)
    eyes = np.linalg.norm(points[:, 2] - points[:, 3], axis=-1)
    return gap / np.maximum(eyes, 1e-9)
