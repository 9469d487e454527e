"""Head pose: similarity (Umeyama) alignment of each frame's skull-fixed points to the canonical face, the
pose removed from all 478 points, and smoothing of the pose track.

Camera frame: +X image right, +Y image up, +Z toward the camera (MediaPipe's ``x·W, -y·H, -z·W`` in
pixels). ``rotation`` R maps the canonical head frame (+X the subject's left, +Y up, +Z out of the face)
into the camera frame, so a face looking straight into the camera has R = I and R is the head's global
rotation in the project's convention (``AnimationClip.global_rotation``, axis-angle): a positive rotation
about +Y turns the face toward the subject's left (image right), about +X tips the nose down, about +Z
tilts the head toward the subject's right shoulder (image left)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .canonical import POSE_POINTS, canonical_points


@dataclass
class PoseFit:
    rotation: np.ndarray  # (T, 3, 3) canonical head frame → camera frame
    scale: np.ndarray  # (T,) pixels per metre
    offset: np.ndarray  # (T, 3) pixels: camera-frame position of the canonical origin (z is MediaPipe's relative depth)
    residual: np.ndarray  # (T,) metres: RMS misfit of the pose points after alignment


def camera_pixels(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """(..., 3) MediaPipe image-normalised points → camera-frame pixels (+X right, +Y up, +Z toward camera)."""
    return np.asarray(points, np.float64) * np.array([width, -height, -width], np.float64)


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares similarity dst ≈ s·R·src + t (Umeyama 1991) for one (K, 3) ``src`` and a batch of
    (..., K, 3) ``dst``: returns s (...,), R (..., 3, 3) proper rotations, t (..., 3)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=-2)
    xs, xd = src - mu_s, dst - mu_d[..., None, :]
    cov = np.einsum("...ki,kj->...ij", xd, xs) / src.shape[0]
    u, sigma, vt = np.linalg.svd(cov)
    d = np.ones(sigma.shape)
    d[..., 2] = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    d[..., 2][d[..., 2] == 0] = 1.0
    rotation = u @ (d[..., :, None] * vt)
    scale = np.sum(sigma * d, axis=-1) / np.mean(np.sum(xs * xs, axis=-1))
    offset = mu_d - scale[..., None] * np.einsum("...ij,j->...i", rotation, mu_s)
    return scale, rotation, offset


def fit_pose(points: np.ndarray, width: int, height: int) -> PoseFit:
    """Align the canonical face to each frame of (T, 478, 3) image-normalised points."""
    ids = list(POSE_POINTS)
    canon = canonical_points()[ids]
    dst = camera_pixels(points[:, ids], width, height)
    scale, rotation, offset = umeyama(canon, dst)
    fitted = scale[:, None, None] * np.einsum("tij,kj->tki", rotation, canon) + offset[:, None]
    residual = np.sqrt(np.mean(np.sum((fitted - dst) ** 2, axis=-1), axis=-1)) / scale
    return PoseFit(rotation, scale, offset, residual)


def remove_pose(points: np.ndarray, fit: PoseFit, width: int, height: int) -> np.ndarray:
    """(T, P, 3) image-normalised points → metres in the canonical head frame, each frame's pose removed."""
    cam = camera_pixels(points, width, height) - fit.offset[:, None]
    return np.einsum("tji,tpj->tpi", fit.rotation, cam) / fit.scale[:, None, None]


def head_translation(fit: PoseFit, width: int, height: int, focal_px: float | None = None) -> np.ndarray:
    """(T, 3) metres: the canonical origin in a camera-centred frame (camera at 0 looking down −Z).

    x and y follow from the image position and the face's pixel scale; depth from the scale with a
    nominal focal length (default: the longer image side, ≈ 53° field of view) — its changes are right,
    its absolute value only as right as that guess."""
    focal = float(focal_px or max(width, height))
    centre = np.array([width / 2.0, -height / 2.0])
    xy = (fit.offset[:, :2] - centre) / fit.scale[:, None]
    return np.concatenate([xy, -focal / fit.scale[:, None]], axis=1)


def smooth(track: np.ndarray, fps: float, window_seconds: float = 0.2, order: int = 2) -> np.ndarray:
    """Zero-phase Savitzky–Golay smoothing along time of a (T, ...) track: a degree-``order`` polynomial
    fitted to an odd window of ~``window_seconds`` around each frame (at the ends, to the first/last
    window, like scipy's ``mode="interp"``). Tracks shorter than the window, and ``window_seconds`` ≤ 0, return
    the track unchanged.
    numpy only: ``scipy.signal`` alone takes ~0.8 s to import."""
    half = max(int(round(window_seconds * fps)) // 2, order // 2 + 1)
    window = 2 * half + 1
    track = np.asarray(track, np.float64)
    if window_seconds <= 0 or track.shape[0] < window:
        return track.copy()
    design = np.vander(np.arange(-half, half + 1, dtype=np.float64), order + 1, increasing=True)  # (window, order+1)
    fit = np.linalg.pinv(design)  # polynomial coefficients from a window of samples
    out = np.empty_like(track)
    windows = np.lib.stride_tricks.sliding_window_view(track, window, axis=0)  # (T - window + 1, ..., window)
    out[half:-half] = windows @ fit[0]
    out[:half] = np.tensordot(design[:half] @ fit, track[:window], axes=(1, 0))
    out[-half:] = np.tensordot(design[half + 1 :] @ fit, track[-window:], axes=(1, 0))
    return out
