"""Speech + a reference video of the speaker → one motion (DESIGN.md, ``core.motion.fusion``).

What comes from where:
- lips, jaw, tongue, cheek puff (``core.mouth.mouth_unit_mask``): always the audio (the speech decoder);
- the upper face — brows, eyes and blinks, cheek squint, nose — and the head rotation: the video, through a
  :class:`~.face_models.VideoFaceModel`, weighted per frame by the tracker's confidence. Where the video has
  no say (confidence 0: lost faces, dropped frames beyond a short gap, or outside the video) the take has exactly the audio-only
  prediction (``core.prosody.add_prosody``: brows on pitch accents, random blinks, prosodic head motion);
  the weight never changes faster than from 1 to 0 in FADE_SECONDS, so nothing jumps. The video is placed
  (:func:`place_reference_video`) before the audio-only blinks are drawn, so none is drawn where the video has any
  say, its fades included: half a blink would show through a fade.

Audio/video offset (:func:`estimate_offset`): the video's mouth opening (inner-lip midpoints over the eye-corner
distance, pose-free) is cross-correlated over ±MAX_OFFSET_SECONDS with two curves of the speech model — its
predicted mouth opening and its onsets (the frame-to-frame change of both openings). The predicted opening is the
mouth-opening head's (``core.speech.opening``: trained on real talking faces over the phonetic encoder's states; on
dev clips of new speakers it follows the real lips at r 0.65 where the decoder's mouth did at 0.42) where the model
folder has one, else the decoder's mouth on the default head, before fusion. The evidence is their mean correlation
per lag. The video is shifted only when that evidence is unambiguous: its peak is significant for the clip's length (Fisher z × √(n − 3) ≥ OFFSET_MIN_SIGNIFICANCE, n the
seen frames counted once per OFFSET_SMOOTH_SECONDS, over which the curves are smooth — 3 frames at 25 fps, 6 at 50, so
a video's frame rate does not change the verdict; every pairing of a video with another clip's sound on the dev clips
stays under 3.7, though two GRID sentences of one speaker reached 4.7), no lag OFFSET_SMOOTH_SECONDS or more away
reaches OFFSET_SECOND_PEAK_RATIO of the peak, both curves peak within OFFSET_AGREE_SECONDS of it, and it is not at
the window's edge (the true peak may lie beyond). Otherwise the estimate declines and the offset stays 0: a wrong
shift makes every video-driven channel lag the speaker, which is worse than none. The loudness envelope is no longer
evidence: on real speakers it peaked 2–3 frames from both the speech model's curves and the lips' own bilabial
releases, and dragged clear cases under the bar. A given offset (``generate --video-offset``, the sidebar's
*Offset*) replaces the estimate, for a video recorded apart from its sound or one the estimate declines; the estimate
is still made and recorded beside it.

Length rule: the take always has the audio's length, at the take's fps. After the offset, the video's frames
are resampled onto the take's frame times (linear for units, slerp for rotations; a video at another fps is
resampled the same way). Take frames up to EDGE_HOLD_SECONDS outside the video (a sound a frame longer than its
video, or a one-frame offset) hold the video's first or last frame. Beyond that, where the video ends before the
audio (or starts after it), the fused channels cross-fade over FADE_SECONDS back to the audio-only prediction,
inside the video's own span; video beyond the audio is cut. A video with no face, an unreadable one or a still image raises the tracker's error before
anything else happens (the pipeline tracks the video before it runs the speech model).

numpy only (the learned video model, when installed, imports torch itself).
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import LatticeTalkError
from ..mouth import mouth_unit_mask
from ..rotations import slerp_track
from ..video.gaps import bridged_confidence
from .face_models import video_face_model
from .video_face import VideoFace, VideoFaceModel

FADE_SECONDS = 0.3  # video weight 1 → 0 (and back) at most this fast
EDGE_HOLD_SECONDS = 0.08  # 2 frames at 25 fps: a one-frame offset made GRID clip lrwp9a fade its last 0.3 s to the
# audio-only head motion, several times the speaker's own (its roll r 1.00 → −0.02 in `video eval-real`)
MAX_OFFSET_SECONDS = 0.5  # the offset search window, either way (±12 frames at 25 fps; its edges are not trusted)
OFFSET_MIN_SIGNIFICANCE = 4.0  # Fisher z of the evidence's peak × √(n − 3), at least (dev: true pairings 4.2-10,
# GRID s1 sentences 5-9; a video against another clip's sound at most 3.6)
OFFSET_SMOOTH_SECONDS = 0.12  # the curves are smooth over this (3 frames at 25 fps): one independent value per it,
# and nearer lags belong to the peak itself
OFFSET_SECOND_PEAK_RATIO = 0.7  # a lag OFFSET_SMOOTH_SECONDS+ away reaching this share of the peak: declined (GRID s1's
# 3 s sentences, whose syllables repeat, reach 0.62)
OFFSET_AGREE_SECONDS = 0.04  # each evidence curve's own peak within this of the chosen lag (a frame at 25 fps)
CONFIDENCE_RAMP = (0.2, 0.5)  # tracker confidence → video weight: 0 at or under the first, 1 from the second
VIDEO_PROGRESS_SHARE = 0.6  # of the pipeline's progress bar, spent tracking the video


@dataclass(frozen=True)
class OffsetEstimate:
    frames: int  # at the video's fps; positive: the video is late (its mouth moves after the sound); 0 when declined
    # (and not given)
    seconds: float  # the offset to a fraction of a frame (what the take uses)
    correlation: float  # the evidence (mean r of its curves) at the best lag
    reliable: bool  # False: the evidence was weak or ambiguous, and the offset is 0 unless given
    best_frames: int = 0  # the best lag whether trusted or not
    second_peak: float = -1.0  # the evidence's highest value OFFSET_SMOOTH_SECONDS+ from the best lag
    agreeing: int = 0  # evidence curves peaking within OFFSET_AGREE_SECONDS of the best lag
    significance: float = 0.0  # Fisher z of the peak × √(n − 3), n the seen frames per OFFSET_SMOOTH_SECONDS
    curves: tuple[str, ...] = ()  # the names of the evidence curves
    given: bool = False  # frames and seconds are the user's (--video-offset); the rest is still the estimate's


@dataclass(eq=False)
class ReferenceVideo:
    """A tracked reference video and its face on the default head."""

    path: Path
    sha256: str
    track: object  # core.video.track.VideoTrack
    face: VideoFace


def video_mouth_opening(track) -> np.ndarray:
    """(T,) inner-lip midpoint distance over the eye outer-corner distance, on the tracker's pose-free points."""
    from ..lip_geometry import OPENING_POINTS, opening_ratio

    return opening_ratio(track.points_metric[:, list(OPENING_POINTS)])


@functools.lru_cache(maxsize=1)
def _opening_rig():
    from ..heads import create
    from ..landmark_rig import LandmarkRig
    from ..lip_geometry import OPENING_POINTS

    head = create("default")
    return LandmarkRig(head, point_ids=OPENING_POINTS), head.expression_names


def predicted_mouth_opening(units: np.ndarray, unit_names: tuple[str, ...], jaw: np.ndarray) -> np.ndarray:
    """(T,) the default head's mouth opening, measured as :func:`video_mouth_opening` measures the video, for the
    speech model's units (T, U) on the default head and jaw opening (T,) radians."""
    from ..lip_geometry import opening_ratio

    rig, head_names = _opening_rig()
    column = {name: k for k, name in enumerate(unit_names)}
    expression = np.zeros((len(units), len(head_names)), np.float32)
    for k, name in enumerate(head_names):
        if name in column:
            expression[:, k] = units[:, column[name]]
    pose = np.zeros((len(units), 5, 3), np.float32)
    pose[:, 2, 0] = jaw
    return opening_ratio(rig.points(expression, pose))


def _lag_curve(video: np.ndarray, audio: np.ndarray, valid: np.ndarray, max_lag: int) -> np.ndarray:
    """Pearson r of ``video[t]`` against ``audio[t − lag]`` for lag −max_lag…max_lag over the valid video frames both
    cover (−1 where fewer than half the frames overlap or a side is flat)."""
    n = min(len(video), len(audio))
    curve = np.full(2 * max_lag + 1, -1.0)
    for i, lag in enumerate(range(-max_lag, max_lag + 1)):
        t = np.arange(max(0, lag), min(n, n + lag))
        t = t[valid[t]]
        if len(t) < n // 2:
            continue
        a, b = video[t], audio[t - lag]
        if a.std() > 1e-12 and b.std() > 1e-12:
            curve[i] = float(np.corrcoef(a, b)[0, 1])
    return curve


def _onsets(signal: np.ndarray) -> np.ndarray:
    """Frame-to-frame change after a 3-frame smoothing: where a mouth opens and closes."""
    smooth = np.convolve(signal, np.array([0.25, 0.5, 0.25]), mode="same")
    return np.diff(smooth, prepend=smooth[:1])


def estimate_offset(video_opening: np.ndarray, predicted_opening: np.ndarray, fps: float,
                    valid: np.ndarray | None = None, max_seconds: float = MAX_OFFSET_SECONDS) -> OffsetEstimate:
    """How late the video is against the audio (module docstring). ``video_opening`` (T,) is the video's mouth
    opening at ``fps``, ``valid`` (T,) the frames whose face was seen; ``predicted_opening`` the speech model's for
    the audio, already at ``fps`` from the audio's first sample."""
    video = np.asarray(video_opening, np.float64)
    valid = np.isfinite(video) if valid is None else np.asarray(valid, bool) & np.isfinite(video)
    video = np.where(valid, video, 0.0)
    predicted = np.asarray(predicted_opening, np.float64)
    max_lag = int(round(max_seconds * fps))
    onset_valid = valid & np.r_[False, valid[:-1]]
    curves = {
        "predicted mouth": _lag_curve(video, predicted, valid, max_lag),
        "mouth onsets": _lag_curve(_onsets(video), _onsets(predicted), onset_valid, max_lag),
    }
    lags = np.arange(-max_lag, max_lag + 1)
    # 1. the evidence per lag and its best lag (ties: the smallest shift)
    evidence = np.mean(list(curves.values()), axis=0)
    best = int(np.argmax(evidence - 1e-9 * np.abs(lags)))
    peak = float(evidence[best])
    # 2. how sure: the peak's significance for the frames it rests on, the next peak, the curves' agreement
    smooth = max(OFFSET_SMOOTH_SECONDS * fps, 1.0)  # frames per independent value
    independent = valid[:min(len(video), len(predicted))].sum() / smooth
    significance = float(np.arctanh(np.clip(peak, -0.999, 0.999)) * np.sqrt(max(independent - 3.0, 0.0)))
    far = np.abs(lags - lags[best]) >= max(2, int(np.ceil(smooth - 1e-9)))  # the peak's neighbours are its own
    second = float(evidence[far].max()) if far.any() else -1.0
    near = max(round(OFFSET_AGREE_SECONDS * fps), 1)
    agreeing = sum(abs(int(lags[int(np.argmax(c))]) - int(lags[best])) <= near for c in curves.values())
    # 3. trusted, or declined (offset 0)
    reliable = (significance >= OFFSET_MIN_SIGNIFICANCE and second < OFFSET_SECOND_PEAK_RATIO * peak
                and agreeing == len(curves) and abs(int(lags[best])) < max_lag)
    declined = OffsetEstimate(0, 0.0, peak, False, int(lags[best]), second, agreeing, round(significance, 3),
                              tuple(curves))
    if not reliable:
        return declined
    # 4. the peak to a fraction of a frame (the parabola through it and its neighbours): a blink lasts 3-4 frames,
    #    so half a frame shows (dev: within 0.25 frames of the lips' own release offsets on 4 of 5 clips)
    before, after = evidence[best - 1], evidence[best + 1]
    bend = before - 2.0 * peak + after
    fraction = float(np.clip(0.5 * (before - after) / bend, -0.5, 0.5)) if bend < 0 else 0.0
    return replace(declined, frames=int(lags[best]), seconds=(lags[best] + fraction) / fps, reliable=True)


def resample_face(face: VideoFace, n_frames: int, fps: float, offset_seconds: float):
    """The video face at the take's frame times (video time = take time + offset): units (n, U), head rotation
    (n, 3) and confidence (n,) — 0 outside the video (beyond EDGE_HOLD_SECONDS, within which the edge frame holds)
    and on any take frame that touches a video frame of confidence 0."""
    last = face.n_frames - 1
    positions = (np.arange(n_frames) / fps + offset_seconds) * face.fps
    hold = EDGE_HOLD_SECONDS * face.fps
    inside = (positions > -hold - 1e-6) & (positions < face.n_frames + hold - 1e-6)  # frame k shows from k/fps to (k+1)/fps
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
    # The video's weight bridges frames a variable-frame-rate file skipped (core.video.gaps.bridged_confidence); the
    # offset evidence and every measure read only the frames the tracker saw (track.confidence).
    face = replace(face, confidence=bridged_confidence(face.confidence, track.dropped_frames, track.fps))
    with open(path, "rb") as fh:
        sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
    return ReferenceVideo(Path(path), sha256, track, face), lambda stage, f: progress(stage, share + (1.0 - share) * f)


@dataclass(eq=False)
class PlacedVideo:
    """A reference video placed on the take's frames: its offset against the take's audio and its share per frame."""

    video: ReferenceVideo
    offset: OffsetEstimate
    weight: np.ndarray  # (T,) the video's share per take frame (:func:`video_weight`); 0: the audio-only motion
    evidence: str = "decoder mouth"  # whose mouth opening the offset was estimated from


def place_reference_video(video: ReferenceVideo, audio: np.ndarray, sample_rate: int, units: np.ndarray,
                          unit_names: tuple[str, ...], jaw: np.ndarray, fps: float,
                          given_offset: float | None = None, opening: np.ndarray | None = None) -> PlacedVideo:
    """Estimate the offset from the speech model's mouth against the video's — the mouth-opening head's ``opening``
    (T,) where the model has one, else the decoder's ``units`` (T, U) and ``jaw`` (T,), at the take's ``fps`` — or
    take ``given_offset`` (seconds the video is late; the estimate is still made, for the provenance) — and where
    the video will have a say, before the audio-only events are drawn, so that none falls where the video fades in or
    out. A given offset that leaves the video and the sound no common frame is refused."""
    video_fps = video.face.fps
    predicted = predicted_mouth_opening(units, unit_names, jaw) if opening is None else np.asarray(opening, np.float64)
    audio_frames = max(1, int(round(len(audio) / sample_rate * video_fps)))
    predicted = np.interp(np.arange(audio_frames) / video_fps, np.arange(len(predicted)) / fps, predicted)
    offset = estimate_offset(video_mouth_opening(video.track), predicted, video_fps,
                             video.track.confidence > CONFIDENCE_RAMP[0])
    if given_offset is not None:
        offset = replace(offset, frames=int(round(given_offset * video_fps)), seconds=float(given_offset), given=True)
    _, _, confidence = resample_face(video.face, len(units), fps, offset.seconds)
    weight = video_weight(confidence, fps)
    if offset.given and not weight.any():
        raise LatticeTalkError(
            f"{video.path}: at the given offset of {offset.seconds:g} s the video ({video.face.n_frames / video_fps:.2f} s)"
            f" and the sound ({len(units) / fps:.2f} s) share no frame the face was seen on; give the seconds the "
            "video is late against the sound (negative: early) with --video-offset or the sidebar's Offset (s), or "
            "leave the offset to the estimate")
    return PlacedVideo(video, offset, weight, "decoder mouth" if opening is None else "mouth-opening head")


def fuse_reference_video(placed: PlacedVideo, units: np.ndarray, unit_names: tuple[str, ...],
                         head_rotation: np.ndarray, fps: float, settings):
    """:func:`fuse` at the placed offset → (units, head_rotation, provenance)."""
    video, offset = placed.video, placed.offset
    fused, rotation, weight = fuse(units, unit_names, head_rotation, video.face, fps, offset.seconds,
                                   settings.head_motion, settings.blinks)
    track = video.track
    provenance = {
        "file": video.path.name, "sha256": video.sha256, "model": video.face.model_id,
        "offset_seconds": offset.seconds, "offset_frames": offset.frames, "offset_fps": video.face.fps,
        "offset_correlation": round(offset.correlation, 4), "offset_reliable": offset.reliable,
        "offset_best_frames": offset.best_frames, "offset_second_peak": round(offset.second_peak, 4),
        "offset_significance": offset.significance, "offset_given": offset.given,
        "offset_agreeing": f"{offset.agreeing}/{len(offset.curves)}", "offset_evidence": placed.evidence,
        "fused_share": round(float(weight.mean()), 4), "video_fps": float(track.fps), "video_frames": track.n_frames,
        "lost_frames": len(track.lost_frames), "dropped_frames": len(track.dropped_frames), "warnings": list(track.warnings),
    }
    return fused, rotation, provenance
