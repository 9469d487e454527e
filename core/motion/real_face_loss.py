"""A training signal for the video face model from tracked videos of real people, who have no ground-truth units.

Rendered videos of the default head teach the model what each unit looks like, but only on one face; on real
speakers it reads brows and yaw with too little motion (README, *Reference video on real speakers*). Real faces
give no unit targets, so the loss asks what can be checked (each term over the frames the tracker saw):

1. **motion**: the predicted units, posed on the default head (its 468 face points, exact since the landmark rig
   is linear in the units), move as the tracked real points move. Identity is removed by comparing motion, not
   positions: each window's mean over its seen frames is subtracted on both sides, and the real face is scaled to
   the head's eye-corner distance (its own median over the clip). RMSE in millimetres, the upper face's points
   weighted up (``UPPER_FACE_SHARE``).
2. **mirror agreement**: the left–right mirror image of a window gives the mirrored units (RMSE of units).
3. **smoothness**: the units' second difference in time (its mean absolute value, units per frame²): tracker jitter
   is not motion. An absolute value, not a square: a blink is a few large second differences, jitter many small
   ones, and a squared penalty had the model stop blinking (dev blink recall 0.97 → 0.07, lid amplitude 0.48).
4. **pose motion**: the model's pose correction on the tracker's rigid fit stays constant within a window (RMS of
   its change from the window mean, degrees). A real face has no true pose here, but the rigid fit carries the
   head's motion; the renders taught a correction that, on real faces, took motion away (yaw amplitude 0.76 of the
   speaker's). A constant offset is free: the renders' own bias correction is not fought.

The pose itself keeps learning from the renders it is mixed with (:func:`~.video_train.train_video_model`'s
``real_tracks``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .track_arrays import TrackArrays, mirror_track

RELIABLE_CONFIDENCE = 0.5  # tracker confidence above this: a frame the loss reads
# The motion term's share on the upper face's points: of 468 points most are the mouth's and cheeks', whose speech
# motion otherwise outweighs the brows (as in the retarget baseline, whose brows came back when it fitted them alone).
# Chosen on the dev split: shares 73/468 (uniform) → 0.5 → 0.75 gave brows r 0.45 / 0.62 → 0.49 / 0.66 → 0.53 / 0.70.
UPPER_FACE_SHARE = 0.75


@dataclass
class RealLossWeights:
    motion_mm: float = 0.1  # per mm of point-motion RMSE (as the rendered loss weighs its landmark mm)
    mirror_units: float = 1.0  # per unit RMSE between a window and its mirror image
    # The two below were chosen on the dev split of the held-out manifest (`video eval-real --split dev`), after
    # eight epochs of GRID s1 + renders each: smoothness 1.0 → 0.3 took lid amplitude 0.85 / 0.77 → 0.90 / 0.82;
    # pose 0.2 → 1.0 → 3.0 took yaw amplitude 0.72 → 0.75 → 0.79 (GRID's heads hardly turn: a weak lever).
    smooth_units: float = 0.3  # per unit of mean absolute second difference
    pose_motion_deg: float = 3.0  # per degree of the pose correction's change within a window

    def scaled(self, factor: float) -> "RealLossWeights":
        return RealLossWeights(*(factor * w for w in dataclasses.astuple(self)))


@dataclass
class RealFaceArrays:
    """One real video (or its mirror image) as the net reads it, and the points its prediction must move like."""

    vertex: np.ndarray  # (T, 478, 5) track_features
    frame: np.ndarray  # (T, 8)
    crops: np.ndarray | None  # (T, S, S) uint8
    points_mm: np.ndarray  # (T, P, 3) the tracked face points in the landmark basis's order, head-scaled mm
    reliable: np.ndarray  # (T,) 1.0 where the tracker saw the face


def real_face_arrays(track: TrackArrays, mediapipe_index: np.ndarray, head_iod_mm: float) -> RealFaceArrays:
    """``track``'s features and its points ``mediapipe_index`` (the landmark basis's rows), scaled to the head."""
    from .video_model import inter_ocular, track_features

    vertex, frame = track_features(track)
    metric = np.asarray(track.points_metric, np.float32)
    reliable = np.asarray(track.confidence) > RELIABLE_CONFIDENCE
    iod = inter_ocular(metric[reliable] if reliable.sum() >= 3 else metric)
    scale = head_iod_mm / max(float(np.median(iod)), 1e-9)
    points = metric[:, np.asarray(mediapipe_index)] * scale
    return RealFaceArrays(vertex, frame, track.face_crops, points.astype(np.float32), reliable.astype(np.float32))


def real_pairs(tracks: list[TrackArrays], mediapipe_index: np.ndarray,
               head_iod_mm: float) -> list[tuple[RealFaceArrays, RealFaceArrays]]:
    """Each track with its mirror image (same frames), for :func:`real_batch`."""
    return [(real_face_arrays(t, mediapipe_index, head_iod_mm), real_face_arrays(mirror_track(t), mediapipe_index,
                                                                                 head_iod_mm)) for t in tracks]


def real_batch(pairs: list[tuple[RealFaceArrays, RealFaceArrays]], rng: np.random.Generator, size: int, window: int):
    """``size`` random windows, then the same windows mirrored: tensors with 2 × ``size`` rows."""
    import torch

    picks = []
    for i in rng.integers(0, len(pairs), size):
        n = len(pairs[i][0].reliable)
        start = int(rng.integers(0, max(1, n - window + 1)))
        picks.append((i, slice(start, start + window)))
    rows = [pairs[i][side] for side in (0, 1) for i, _ in picks]
    slices = [sl for _ in (0, 1) for _, sl in picks]
    length = min(len(r.reliable[sl]) for r, sl in zip(rows, slices))  # short clips: every window as long as the shortest

    def stack(name: str):
        if any(getattr(r, name) is None for r in rows):  # tracked without face crops
            return None
        arrays = [getattr(r, name)[sl][:length] for r, sl in zip(rows, slices)]
        return torch.from_numpy(np.ascontiguousarray(np.stack(arrays)).astype(
            np.uint8 if name == "crops" else np.float32))

    return {name: stack(name) for name in ("vertex", "frame", "crops", "points_mm", "reliable")}


def upper_face_balance(mediapipe_index: np.ndarray, share: float = UPPER_FACE_SHARE) -> np.ndarray:
    """(P,) weights of the landmark basis's points, summing to 1: ``share`` on the upper face's (brows, forehead,
    eyes, nose bridge: the points the retarget baseline fits), the rest on the others."""
    from .face_models import BASELINE_POINTS

    upper = np.isin(np.asarray(mediapipe_index), BASELINE_POINTS)
    return np.where(upper, share / max(upper.sum(), 1), (1.0 - share) / max((~upper).sum(), 1)).astype(np.float32)


def real_face_loss(net, batch: dict, basis, unit_swap, weights: RealLossWeights = RealLossWeights(),
                   point_weights=None):
    """Total loss and its parts (motion mm, mirror units, smoothness units, pose motion degrees) for one
    :func:`real_batch`."""
    import torch

    units, correction = net(batch["vertex"], batch["frame"], batch["crops"])
    units = units.clamp(0.0, 1.0)  # what the model hands on (LearnedFaceModel clips its units)
    seen = batch["reliable"]  # (2B, T)

    def motion(x: torch.Tensor) -> torch.Tensor:  # each window's mean over its seen frames removed
        weight = seen.reshape(seen.shape + (1,) * (x.dim() - 2))
        return x - (x * weight).sum(1, keepdim=True) / weight.sum(1, keepdim=True).clamp_min(1.0)

    def seen_mean(per_frame: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (per_frame * mask).sum() / mask.sum().clamp_min(1.0)

    def seen_rms(per_frame: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(seen_mean(per_frame, mask) + 1e-8)

    # 1. motion of the posed head's points against the real points' motion
    predicted = torch.einsum("btu,upc->btpc", units, basis)
    squared = ((motion(predicted) - motion(batch["points_mm"])) ** 2).sum(-1)  # (2B, T, P) mm²
    error = squared.mean(-1) if point_weights is None else (squared * point_weights).sum(-1)
    l_motion = seen_rms(error, seen)
    # 2. a window and its mirror image (the second half of the batch) read mirrored units
    half = units.shape[0] // 2
    both = seen[:half] * seen[half:]
    gap = ((units[:half] - units[half:][..., unit_swap]) ** 2).mean(-1)
    l_mirror = seen_rms(gap, both)
    # 3. smoothness: the second difference over frames seen three in a row
    accel = (units[:, 2:] - 2 * units[:, 1:-1] + units[:, :-2]).abs().mean(-1)
    run = seen[:, 2:] * seen[:, 1:-1] * seen[:, :-2]
    l_smooth = seen_mean(accel, run)
    # 4. the pose correction's change within the window (small angles: the rotation vector's length)
    l_pose = torch.rad2deg(seen_rms((motion(correction) ** 2).sum(-1), seen))
    total = (weights.motion_mm * l_motion + weights.mirror_units * l_mirror + weights.smooth_units * l_smooth
             + weights.pose_motion_deg * l_pose)
    return total, {"real_motion_mm": l_motion.item(), "real_mirror_units": l_mirror.item(),
                   "real_smooth_units": l_smooth.item(), "real_pose_motion_deg": l_pose.item()}
