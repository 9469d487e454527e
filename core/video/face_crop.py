"""The face as pixels: a square grey crop around the tracked face, for the learned model's image cue.

The key points carry the head pose only as well as MediaPipe places them (relit renders of the same motion
read ~2° apart); the pixels of the face carry it again, independently. The crop is axis-aligned (roll and
the face's place in the frame stay visible), centred on the 468 face points' box and ``MARGIN`` times its
longer side, sampled to ``CROP_SIZE`` pixels with a Gaussian pre-blur so a large face does not alias.

A left–right mirrored frame gives exactly the horizontally flipped crop (the box and the sampling grid are
symmetric), which is what the learned model's mirror average relies on.
"""

from __future__ import annotations

import numpy as np

from ..mediapipe_points import N_FACE_POINTS
from .decode import import_cv2

CROP_SIZE = 96  # pixels
MARGIN = 1.25  # crop side / longer side of the face points' box


def crop_box(points: np.ndarray, width: int, height: int) -> tuple[float, float, float]:
    """(centre x, centre y, side) in pixels (pixel centres at integers) for (478, ≥2) image-normalised points."""
    xy = np.asarray(points, np.float64)[:N_FACE_POINTS, :2] * (width, height)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    centre = (lo + hi) / 2 - 0.5
    return float(centre[0]), float(centre[1]), float(MARGIN * max(hi - lo))


def face_crop(gray: np.ndarray, box: tuple[float, float, float], size: int = CROP_SIZE) -> np.ndarray:
    """(size, size) uint8: the box of a grey frame, bilinear after a Gaussian blur matched to the downscale;
    outside the frame is black."""
    cv2 = import_cv2()
    cx, cy, side = box
    step = side / size  # frame pixels per crop pixel
    half = side / 2 + 3 * step  # the blur's reach around the box
    x0, y0 = max(int(np.floor(cx - half)), 0), max(int(np.floor(cy - half)), 0)
    x1, y1 = min(int(np.ceil(cx + half)) + 1, gray.shape[1]), min(int(np.ceil(cy + half)) + 1, gray.shape[0])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((size, size), np.uint8)
    region = gray[y0:y1, x0:x1]
    if step > 1.0:
        region = cv2.GaussianBlur(region, (0, 0), sigmaX=0.5 * np.sqrt(step * step - 1.0), borderType=cv2.BORDER_REPLICATE)
    # crop pixel u (centre) ← frame x = cx + (u − (size − 1)/2)·step, in the region's coordinates
    origin = (size - 1) / 2
    warp = np.array([[step, 0.0, cx - x0 - origin * step], [0.0, step, cy - y0 - origin * step]], np.float64)
    return cv2.warpAffine(region, warp, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
