"""The face crop the learned video model reads: where it looks, and its left–right symmetry."""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2", reason="the 'video' extra")

from lattice_talk.core.video.face_crop import CROP_SIZE, MARGIN, crop_box, face_crop  # noqa: E402


def _points_in(x0: float, y0: float, x1: float, y1: float, rng) -> np.ndarray:
    """478 image-normalised points filling the box, its corners included."""
    pts = np.column_stack([rng.uniform(x0, x1, 478), rng.uniform(y0, y1, 478), np.zeros(478)])
    pts[:2, :2] = [[x0, y0], [x1, y1]]
    return pts.astype(np.float32)


def test_the_crop_is_centred_on_the_face_box_at_the_margin():
    width, height = 640, 480
    image = np.zeros((height, width), np.uint8)
    x0, y0, x1, y1 = 200, 100, 400, 300  # a 200 px face, off centre
    image[y0:y1, x0:x1] = 255
    points = _points_in(x0 / width, y0 / height, x1 / width, y1 / height, np.random.default_rng(0))
    cx, cy, side = crop_box(points, width, height)
    assert (cx, cy) == pytest.approx((299.5, 199.5)) and side == pytest.approx(MARGIN * 200)
    crop = face_crop(image, (cx, cy, side))
    assert crop.shape == (CROP_SIZE, CROP_SIZE) and crop.dtype == np.uint8
    bright = np.argwhere(crop > 127)
    assert bright.mean(axis=0) == pytest.approx([(CROP_SIZE - 1) / 2] * 2, abs=0.5)  # the face in the middle
    assert np.ptp(bright[:, 1]) + 1 == pytest.approx(CROP_SIZE / MARGIN, abs=1.5)  # filling 1/MARGIN of it


def test_a_mirrored_frame_gives_the_flipped_crop():
    """The learned model's mirror average flips the crops instead of re-cutting them: exact up to rounding."""
    rng = np.random.default_rng(1)
    width, height = 640, 480
    image = cv2.GaussianBlur(rng.integers(0, 256, (height, width), dtype=np.uint8), (0, 0), 2.0)
    points = _points_in(0.2, 0.15, 0.55, 0.8, rng)
    mirrored_points = points.copy()
    mirrored_points[:, 0] = 1.0 - points[:, 0]
    crop = face_crop(image, crop_box(points, width, height)).astype(int)
    of_mirrored = face_crop(np.ascontiguousarray(image[:, ::-1]), crop_box(mirrored_points, width, height)).astype(int)
    assert np.abs(of_mirrored[:, ::-1] - crop).max() <= 1
    assert np.abs(of_mirrored - crop).mean() > 5  # the image is not symmetric itself


def test_a_face_partly_outside_the_frame_is_black_there():
    width, height = 320, 240
    image = np.full((height, width), 200, np.uint8)
    points = _points_in(0.8, 0.3, 1.0, 0.7, np.random.default_rng(2))  # box reaches the right border
    crop = face_crop(image, crop_box(points, width, height))
    assert crop[:, -5:].max() == 0 and crop[:, :CROP_SIZE // 2].min() > 150
