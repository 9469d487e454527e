"""Speech + a reference video of the speaker → one motion (DESIGN.md, ``core.motion.fusion``).

What comes from where:
- lips, jaw, tongue, cheek puff (``articulation.mouth_unit_mask``): always the audio (the speech decoder);
- the upper face — brows, eyes and blinks, cheek squint, nose — and the head rotation: the video, through a
  :class:`~.face_models.VideoFaceModel`, weighted per frame by the tracker's confidence. Where the video has
  no say (confidence 0: lost or dropped frames, or outside the video) the take has exactly the audio-only
  prediction (``articulation.add_prosody``: brows on pitch accents, random blinks, prosodic head motion);
  the weight never changes faster than from 1 to 0 in FADE_SECONDS, so nothing jumps.

Audio/video offset: the video's mouth opening (inner-lip midpoints, pose-free) is cross-correlated with the
speech's loudness envelope over ±MAX_OFFSET_SECONDS (:func:`estimate_offset`); the video is shifted by the
lag of the best correlation. Mouths open a little before the sound they make, so the envelope is read
MOUTH_LEAD_SECONDS ahead and a clip recorded in sync reads 0. A weak correlation (under
MIN_OFFSET_CORRELATION, e.g. a silent or mumbled video) is not trusted: the offset stays 0.

Length rule: the take always has the audio's length, at the take's fps. After the offset, the video's frames
are resampled onto the take's frame times (linear for units, slerp for rotations; a video at another fps is
resampled the same way). Where the video ends before the audio (or starts after it), the fused channels
cross-fade over FADE_SECONDS back to the audio-only prediction, inside the video's own span; video beyond the
audio is cut. A video with no face, an unreadable one or a still image raises the tracker's error before
anything else happens (the pipeline tracks the video before it runs the speech model).

numpy only (the learned video model, when installed, imports torch itself).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.articulation import mouth_unit_mask
from ..rotations import slerp_track
from .face_models import VideoFace, VideoFaceModel, video_face_model

FADE_SECONDS = 0.3  # video weight 1 → 0 (and back) at most this fast
MAX_OFFSET_SECONDS = 0.5  # the offset search window, either way
MOUTH_LEAD_SECONDS = 0.12  # the mouth opens this much before the sound (the real talking-head clip: 3 frames at 25 fps)
MIN_OFFSET_CORRELATION = 0.15  # under this peak correlation the offset estimate is not trusted (offset 0)
CONFIDENCE_RAMP = (0.2, 0.5)  # tracker confidence → video weight: 0 at or under the first, 1 from the second
VIDEO_PROGRESS_SHARE = 0.6  # of the pipeline's progress bar, spent tracking the video


@dataclass(frozen=True)
class OffsetEstimate:
    frames: int  # at the video's fps; positive: the video is late (its mouth moves after the sound)
    seconds: float
    correlation: float  # Pearson r at the chosen lag
    reliable: bool  # False: correlation too weak, the offset was set to 0


@dataclass(eq=False)
class ReferenceVideo:
    """A tracked reference video and its face on the default head."""

    path: Path
    sha256: str
    track: object  # core.video.track.VideoTrack
    face: VideoFace


def video_mouth_opening(track) -> np.ndarray:
    """(T,) inner-lip midpoint distance on the tracker's pose-free points, mm."""
    from ..metrics import mouth_opening
    from ..motion_file import MotionTrack

    points = track.points_metric
    return mouth_opening(MotionTrack(fps=track.fps, points=points, point_ids=np.arange(points.shape[1])))


def estimate_offset(mouth_mm: np.ndarray, audio: np.ndarray, sample_rate: int, fps: float,
                    max_seconds: float = MAX_OFFSET_SECONDS, lead_seconds: float = MOUTH_LEAD_SECONDS) -> OffsetEstimate:
    """How late the video is against the audio: the lag maximising the correlation of the video's mouth
    opening (at ``fps``) with the audio's RMS envelope read ``lead_seconds`` ahead, within ±``max_seconds``."""
    from ..metrics import audio_envelope, lag_correlations

    mouth = np.asarray(mouth_mm, np.float64)
    ahead = np.asarray(audio, np.float64)[int(round(lead_seconds * sample_rate)):]
    envelope = audio_envelope(ahead, sample_rate, fps, len(mouth))
    lags, corr = lag_correlations(mouth, envelope, int(round(max_seconds * fps)))
    corr = np.nan_to_num(corr, nan=-1.0)
    best = int(np.argmax(corr - 1e-9 * np.abs(lags)))  # ties: the smallest shift
    correlation = float(corr[best])
    if correlation < MIN_OFFSET_CORRELATION:
        return OffsetEstimate(0, 0.0, correlation, False)
    return OffsetEstimate(int(lags[best]), float(lags[best] / fps), correlation, True)


def resample_face(face: VideoFace, n_frames: int, fps: float, offset_seconds: float):
    """The video face at the take's frame times (video time = take time + offset): units (n, U), head rotation
    (n, 3) and confidence (n,) — 0 outside the video and on any take frame that touches a video frame of
    confidence 0."""
    last = face.n_frames - 1
    positions = (np.arange(n_frames) / fps + offset_seconds) * face.fps
    inside = (positions > -1e-6) & (positions < face.n_frames - 1e-6)  # frame k shows from k/fps to (k+1)/fps
    p = np.clip(positions, 0.0, last)
    nearest = np.rint(p).astype(np.int64)
    exact = np.abs(p - nearest) < 1e-6
    p = np.where(exact, nearest, p)
    lo = np.minimum(np.floor(p).astype(np.int64), max(last - 1, 0))
    hi = np.minimum(lo + 1, last)
    t = (p - lo)[:, None]
    units = (1.0 - t) * face.units[lo] + t * face.units[hi]
    rotation = slerp_track(np.asarray(face.head_rotation, np.float64), p)
    conf = np.where(exact, face.confidence[nearest], np.minimum(face.confidence[lo], face.confidence[hi]))
    return units, rotation, np.where(inside, conf, 0.0)


def video_weight(confidence: np.ndarray, fps: float, fade_seconds: float = FADE_SECONDS) -> np.ndarray:
    """(T,) share of the video per take frame: confidence through CONFIDENCE_RAMP, then the largest curve under
    it whose slope stays within 1 / (fade_seconds·fps) per frame — zeros stay exactly 0, and the fades happen
    on the trusted side, so the take never uses a frame the tracker did not see."""
    low, high = CONFIDENCE_RAMP
    weight = np.clip((np.asarray(confidence, np.float64) - low) / (high - low), 0.0, 1.0)
    step = 1.0 / max(fade_seconds * fps, 1.0)
    for t in range(1, len(weight)):
        weight[t] = min(weight[t], weight[t - 1] + step)
    for t in range(len(weight) - 2, -1, -1):
        weight[t] = min(weight[t], weight[t + 1] + step)
    return weight


def blend_rotations(audio_rotation: np.ndarray, video_rotation: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per frame slerp from the audio's to the video's head rotation by ``weight``; exact at 0 and 1."""
    n = len(weight)
    pairs = np.empty((2 * n, 3))
    pairs[0::2], pairs[1::2] = audio_rotation, video_rotation
    mixed = slerp_track(pairs, 2 * np.arange(n) + weight)
    return np.where(weight[:, None] <= 0.0, audio_rotation, np.where(weight[:, None] >= 1.0, video_rotation, mixed))


def fuse(units: np.ndarray, unit_names: tuple[str, ...], head_rotation: np.ndarray, face: VideoFace, fps: float,
         offset_seconds: float = 0.0, head_motion: float = 1.0, blinks: bool = True):
    """Audio-only ``units`` (T, U) and ``head_rotation`` (T, 3) with the video's upper face and head pose blended
    in → (units, head_rotation, weight (T,)). Mouth units are the audio's untouched; ``head_motion`` scales the
    video's rotation as it scales the audio's; ``blinks=False`` drops the video's eyeBlink units too."""
    n = len(units)
    video_units, video_rotation, confidence = resample_face(face, n, fps, offset_seconds)
    weight = video_weight(confidence, fps)
    fused = np.array(units, copy=True)
    column = {name: k for k, name in enumerate(face.unit_names)}
    for k, name in enumerate(unit_names):
        if mouth_unit_mask((name,))[0] or name not in column:
            continue
        source = np.zeros(n) if not blinks and name.startswith("eyeBlink") else video_units[:, column[name]]
        fused[:, k] = units[:, k] + weight * (source - units[:, k])
    rotation = blend_rotations(np.asarray(head_rotation, np.float64), head_motion * video_rotation, weight)
    return fused.astype(np.float32), rotation.astype(np.float32), weight


# ------------------------------------------------------------------------------------------ the pipeline's hook
def track_reference_video(path: str | os.PathLike[str], progress, should_stop,
                          model: VideoFaceModel | None = None):
    """Track ``path`` and run the video face model on it → (ReferenceVideo, progress for the rest).

    Tracking reports in the first VIDEO_PROGRESS_SHARE of the bar and stops between frames when ``should_stop()``
    (raising ``Cancelled``); the returned progress function maps the caller's later 0..1 onto the remainder.
    The tracker's errors (no face, unreadable file, still image) propagate unchanged."""
    from ..video.track import track_video

    share = VIDEO_PROGRESS_SHARE
    model = model or video_face_model()  # first: a model folder that cannot load fails before the tracking
    track = track_video(path, lambda stage, f: progress(f"video: {stage}", share * f), should_stop,
                        face_crops=getattr(model, "reads_face_crops", True))
    progress("video: face model", share)
    face = model.predict(track)
    with open(path, "rb") as fh:
        sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
    return ReferenceVideo(Path(path), sha256, track, face), lambda stage, f: progress(stage, share + (1.0 - share) * f)


def fuse_reference_video(video: ReferenceVideo, audio: np.ndarray, sample_rate: int, units: np.ndarray,
                         unit_names: tuple[str, ...], head_rotation: np.ndarray, fps: float, settings):
    """Estimate the offset against the take's audio, then :func:`fuse` → (units, head_rotation, provenance)."""
    offset = estimate_offset(video_mouth_opening(video.track), audio, sample_rate, video.face.fps)
    fused, rotation, weight = fuse(units, unit_names, head_rotation, video.face, fps, offset.seconds,
                                   settings.head_motion, settings.blinks)
    track = video.track
    provenance = {
        "file": video.path.name, "sha256": video.sha256, "model": video.face.model_id,
        "offset_seconds": offset.seconds, "offset_frames": offset.frames, "offset_fps": video.face.fps,
        "offset_correlation": round(offset.correlation, 4), "offset_reliable": offset.reliable,
        "fused_share": round(float(weight.mean()), 4), "video_fps": float(track.fps), "video_frames": track.n_frames,
        "lost_frames": len(track.lost_frames), "dropped_frames": len(track.dropped_frames), "warnings": list(track.warnings),
    }
    return fused, rotation, provenance
