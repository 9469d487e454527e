"""Dense optical flow (OpenCV DIS) between consecutive frames, inside the face box only, sampled at the
face-mesh points: an independent measure of the face's motion (the mesh is a per-frame regression,
the flow follows the pixels) used for confidence and, downstream, for fine motion."""

from __future__ import annotations

import numpy as np

from .decode import import_cv2

PRESETS = ("ultrafast", "fast", "medium")


class FaceFlow:
    """``flow(prev_gray, gray, points_px)`` → (P, 2) displacement in pixels of the points of ``prev_gray``.

    The box around the points grows by ``margin`` of its size on each side (DIS needs context at the
    border); boxes whose longer side exceeds ``max_side`` pixels are downscaled before the flow."""

    def __init__(self, preset: str = "ultrafast", margin: float = 0.1, max_side: int = 256):
        cv2 = import_cv2()
        if preset not in PRESETS:
            raise ValueError(f"DIS preset must be one of {PRESETS}, got {preset!r}")
        self._cv2 = cv2
        self._dis = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{preset.upper()}"))
        self.margin = margin
        self.max_side = max_side

    def box(self, points_px: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) pixel box around the points plus the margin, clipped to the image."""
        lo, hi = points_px.min(axis=0), points_px.max(axis=0)
        pad = self.margin * (hi - lo)
        x0, y0 = np.floor(np.maximum(lo - pad, 0)).astype(int)
        x1, y1 = np.ceil(np.minimum(hi + pad, [width, height])).astype(int)
        return int(x0), int(y0), int(x1), int(y1)

    def __call__(self, prev_gray: np.ndarray, gray: np.ndarray, points_px: np.ndarray) -> np.ndarray:
        height, width = gray.shape
        x0, y0, x1, y1 = self.box(points_px, width, height)
        if x1 - x0 < 8 or y1 - y0 < 8:  # face (almost) out of the picture
            return np.zeros((len(points_px), 2), np.float32)
        a, b = prev_gray[y0:y1, x0:x1], gray[y0:y1, x0:x1]
        factor = min(1.0, self.max_side / max(a.shape))
        if factor < 1.0:
            size = (max(8, round(a.shape[1] * factor)), max(8, round(a.shape[0] * factor)))
            a = self._cv2.resize(a, size, interpolation=self._cv2.INTER_AREA)
            b = self._cv2.resize(b, size, interpolation=self._cv2.INTER_AREA)
        flow = self._dis.calc(np.ascontiguousarray(a), np.ascontiguousarray(b), None)
        scale = np.array([a.shape[1] / (x1 - x0), a.shape[0] / (y1 - y0)])
        return sample_bilinear(flow, (points_px - [x0, y0]) * scale) / scale.astype(np.float32)


def sample_bilinear(field: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(H, W, C) field at (P, 2) pixel positions (x, y), bilinear, clamped to the border → (P, C)."""
    h, w = field.shape[:2]
    x = np.clip(xy[:, 0], 0, w - 1)
    y = np.clip(xy[:, 1], 0, h - 1)
    x0, y0 = np.minimum(x.astype(np.int64), w - 2 if w > 1 else 0), np.minimum(y.astype(np.int64), h - 2 if h > 1 else 0)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    top = field[y0, x0] * (1 - fx) + field[y0, x1] * fx
    bottom = field[y1, x0] * (1 - fx) + field[y1, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)
