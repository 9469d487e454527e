"""Track a reference video: ``track_video(path, progress, should_stop) → VideoTrack``.

One pass over the frames (decoded on a reader thread): MediaPipe face mesh, then DIS optical flow from
the previous frame inside the face box, sampled at the previous frame's points; a grey crop of the face (the
learned model's image cue). Then, over the whole
video: frames placed on the regular frame grid (dropped frames found from the time stamps), head pose
fitted per frame, lost and dropped frames interpolated, pose smoothed, eyes and blinks, confidence.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from ..pipeline import Cancelled, ProgressFn, StopFn
from ..rotations import matrix_to_rotvec
from . import eyes, gaps, head_pose
from .decode import analysis_size, check_video_path, frame_grid, open_video, read_audio_track, read_frames
from .errors import MissingDependencyError, NoFaceError, VideoError
from .face_crop import CROP_SIZE, crop_box, face_crop
from .flow import FaceFlow
from .landmarks import N_POINTS, FaceMesh

CHECK_EVERY = 8  # frames between progress reports / stop checks
# Confidence scales (see _confidence). On the real talking-head clip the skull points misfit the canonical
# face by 2-3.3 mm (mostly the person's own proportions) and the mesh's motion disagrees with the optical
# flow by 0.6 % (median) to 1.9 % (worst) of the inter-ocular distance: such frames score 0.85-0.95.
FIT_SIGMA = 0.01  # metres
FLOW_SIGMA = 0.05  # fraction of the inter-ocular distance


@dataclass(eq=False)
class VideoTrack:
    """What the video tracker measured, one row per frame of the video's regular frame grid.

    Frames are at ``fps`` from the first decoded frame; frames that were dropped in the file or where
    no face was found are interpolated from their neighbours, listed in ``dropped_frames`` /
    ``lost_frames``, and have confidence 0: nothing was measured there (fusion bridges short drops for
    the video's weight, :func:`~.gaps.bridged_confidence`)."""

    source: str
    fps: float
    width: int  # pixels of the original video
    height: int
    points: np.ndarray  # (T, 478, 3) float32 MediaPipe image-normalised: x, y in 0..1 of width/height, z in widths
    points_metric: np.ndarray  # (T, 478, 3) float32 metres, canonical head frame (+X subject's left, +Y up, +Z out of the face), pose removed
    head_rotation: np.ndarray  # (T, 3) float32 axis-angle, canonical head frame → camera frame (= AnimationClip.global_rotation), smoothed
    head_translation: np.ndarray  # (T, 3) float32 metres, head origin in camera frame (camera at 0 looking down −Z; depth from a nominal focal length), smoothed
    flow: np.ndarray  # (T, 478, 2) float32 image-normalised displacement of each point from frame t−1 to t (optical flow; row 0 is 0)
    face_crops: np.ndarray | None  # (T, S, S) uint8 grey face crop (face_crop.CROP_SIZE); a lost face's last box, dropped frames repeat the previous; None: not cut
    eye_closure: np.ndarray  # (T, 2) float32 0 open .. 1 closed, columns (left, right) of the subject
    blinks: list[eyes.Blink]
    confidence: np.ndarray  # (T,) float32 0..1; 0 on interpolated frames
    lost_frames: list[int]  # frames decoded without a face found: interpolated
    dropped_frames: list[int]  # frames missing from the file (time-stamp gaps): interpolated
    audio: np.ndarray | None = None  # (N,) float32 mono at ``sample_rate``; None when the video has no sound
    sample_rate: int | None = None
    audio_offset: float = 0.0  # seconds: audio stream start − video stream start (container metadata)
    warnings: list[str] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return int(self.points.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps

    @property
    def times(self) -> np.ndarray:
        return np.arange(self.n_frames) / self.fps

    def to_motion(self):
        """The pose-free points as a :class:`~lattice_talk.core.motion_file.MotionTrack` (all 478 points,
        head rotation kept apart, the video's sound as audio). No neutral: pick one downstream."""
        from ..motion_file import MotionTrack

        return MotionTrack(
            fps=self.fps, points=self.points_metric, point_ids=np.arange(N_POINTS), audio=self.audio,
            sample_rate=self.sample_rate or 16000, head_rotation=self.head_rotation,
            meta={"source": os.path.basename(self.source), "tracker": "mediapipe-0.10.21-face-mesh",
                  "lost_frames": self.lost_frames, "dropped_frames": self.dropped_frames},
        )


def track_video(
    path: str | os.PathLike[str],
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    *,
    max_size: int = 640,
    flow_preset: str = "ultrafast",
    with_audio: bool = True,
    min_face_fraction: float = 0.5,
    mirror_pass: bool = True,
    face_crops: bool = True,
    timings: dict[str, float] | None = None,
) -> VideoTrack:
    """Track the face in a video file.

    ``max_size`` caps the longer side of the frames analysed (points stay image-normalised, so the result
    does not depend on it except through accuracy). ``progress(stage, fraction)`` is called every few
    frames and ``should_stop()`` checked with it; when it returns True, :class:`~..pipeline.Cancelled` is
    raised. Raises :class:`VideoError` for a missing, empty, unreadable or still-image file or one with
    fewer than 2 frames, and :class:`NoFaceError` when a face is found in fewer than
    ``min_face_fraction`` of the frames. ``mirror_pass`` also reads each frame mirrored and averages the two
    readings (see :mod:`.landmarks`; off: ~40 % faster, expressions read less well). ``face_crops`` cuts the
    face crops (:mod:`.face_crop`) only a learned model reads (off: ``VideoTrack.face_crops`` is None). ``timings``, when given, receives seconds spent per stage."""

    report = progress or (lambda stage, fraction: None)
    stop = should_stop or (lambda: False)
    clock = _Clock(timings)
    check_video_path(path)  # cheap rejections first, before MediaPipe starts
    stamps: list[float] = []
    found: list[np.ndarray | None] = []
    moved: list[np.ndarray] = []  # flow in pixels of the analysis size
    crops: list[np.ndarray] = []
    report("tracking the face", 0.0)
    with FaceMesh(mirror_pass) as mesh:
        flow = FaceFlow(flow_preset)
        cap, info = open_video(path)
        width, height = analysis_size(info.width, info.height, max_size)
        expected = max(info.declared_frames, 1)
        frames = read_frames(cap, max_size)
        try:
            prev_gray, anchor, box = None, None, None
            for i, frame in enumerate(clock.each("decode", frames)):
                if i % CHECK_EVERY == 0:
                    if stop():
                        raise Cancelled()
                    report("tracking the face", 0.95 * min(i / expected, 1.0))
                with clock("landmarks"):
                    pts = mesh(frame.rgb)
                with clock("flow"):
                    shift = (flow(prev_gray, frame.gray, anchor) if prev_gray is not None and anchor is not None
                             else np.zeros((N_POINTS, 2), np.float32))
                if face_crops:
                    with clock("crop"):
                        box = crop_box(pts, width, height) if pts is not None else box
                        crops.append(face_crop(frame.gray, box) if box is not None
                                     else np.zeros((CROP_SIZE, CROP_SIZE), np.uint8))
                # Sample the next flow at this frame's points; through a lost face, carry them along the flow.
                anchor = pts[:, :2] * (width, height) if pts is not None else (None if anchor is None else anchor + shift)
                stamps.append(frame.timestamp)
                found.append(pts)
                moved.append(shift)
                prev_gray = frame.gray
        finally:
            frames.close()
            cap.release()  # also when the reader never started

    present = _face_presence(info, found, min_face_fraction)
    report("head pose and eyes", 0.95)
    with clock("post"):
        track = _assemble(info, width, height, stamps, found, moved, crops, present)
    if info.declared_frames and len(found) < 0.9 * info.declared_frames:
        track.warnings.append(f"{info.path.name}: decoding stopped after {len(found)} of the {info.declared_frames} "
                              "frames the file declares; it may be truncated")
    if with_audio:
        with clock("audio"):
            _attach_audio(track, info.path)
    report("done", 1.0)
    return track


def _face_presence(info, found: list[np.ndarray | None], min_face_fraction: float) -> np.ndarray:
    """Which frames have a face; raises :class:`VideoError` for a still or an undecodable file and
    :class:`NoFaceError` when too few frames have one."""
    if len(found) == 1 and info.declared_frames <= 1:  # a valid file, but a still: no motion to read
        raise VideoError(f"{info.path}: the video holds a single frame, a still picture with no motion to follow; "
                         "give a video of the speaker talking (at least two frames)")
    if len(found) < 2:
        raise VideoError(
            f"{info.path}: only {len(found)} frame(s) could be decoded; the file is damaged or not a video — "
            f"re-export it, e.g. `ffmpeg -i {info.path.name} -c:v libx264 {info.path.stem}_fixed.mp4`"
        )
    present = np.array([p is not None for p in found])
    if present.mean() < min_face_fraction:
        raise NoFaceError(
            f"{info.path}: a face was found in {int(present.sum())} of {len(found)} frames "
            f"(at least {min_face_fraction:.0%} needed); use a video where the speaker's face is visible, "
            "frontal-ish and well lit"
        )
    return present


def _assemble(info, width, height, stamps, found, moved, crops, present) -> VideoTrack:
    fps, slots, dropped = frame_grid(np.asarray(stamps, np.float64), info.fps)
    n = int(slots[-1]) + 1
    known = np.zeros(n, bool)
    known[slots[present]] = True
    raw = np.zeros((n, N_POINTS, 3), np.float32)
    raw[slots[present]] = np.stack([p for p in found if p is not None])

    # Flow across a gap of k grid steps is shared evenly by the k frames it spans.
    flow_px = np.zeros((n, N_POINTS, 2), np.float32)
    for j in range(1, len(slots)):
        gap = int(slots[j] - slots[j - 1])
        flow_px[slots[j - 1] + 1 : slots[j] + 1] = moved[j] / gap
    # A dropped frame shows the last decoded picture.
    face_crops = np.stack(crops)[np.searchsorted(slots, np.arange(n), side="right") - 1] if crops else None

    fit = head_pose.fit_pose(raw[known], width, height)
    metric = np.zeros_like(raw)
    metric[known] = head_pose.remove_pose(raw[known], fit, width, height)
    rotvec = np.zeros((n, 3))
    rotvec[known] = matrix_to_rotvec(fit.rotation)
    translation = np.zeros((n, 3))
    translation[known] = head_pose.head_translation(fit, width, height)
    residual = np.zeros(n)
    residual[known] = fit.residual

    points = gaps.fill_linear(raw, known)
    metric = gaps.fill_linear(metric, known)
    rotvec = head_pose.smooth(gaps.fill_rotations(rotvec, known), fps)
    translation = head_pose.smooth(gaps.fill_linear(translation, known), fps)
    closure = eyes.closure(metric, known)
    lost = sorted(int(s) for s in slots[~present])
    track = VideoTrack(
        source=str(info.path), fps=float(fps), width=info.width, height=info.height,
        points=points, points_metric=metric.astype(np.float32), head_rotation=rotvec.astype(np.float32),
        head_translation=translation.astype(np.float32), flow=flow_px / np.array([width, height], np.float32),
        face_crops=face_crops,
        eye_closure=closure, blinks=eyes.blinks(closure, fps),
        confidence=_confidence(raw, flow_px, residual, known, width, height),
        lost_frames=lost, dropped_frames=[int(d) for d in dropped],
    )
    for what, frames in (("without a face found", lost), ("dropped in the file", dropped)):
        if frames:
            track.warnings.append(f"{info.path.name}: {len(frames)} frame(s) {what} were interpolated: {_ranges(frames)}")
    return track


def _confidence(raw, flow_px, residual, known, width, height) -> np.ndarray:
    """Per frame 0..1: the rigid fit of the skull points (a mesh that lost the face fits badly) times the
    agreement of the mesh's motion with the optical flow (a mesh that slips disagrees with the pixels),
    each a Gaussian of the error: ``exp(-(residual/FIT_SIGMA)²)·exp(-(disagreement/FLOW_SIGMA)²)``."""
    from ..mediapipe_points import EYE_OUTER_CORNERS

    px = raw[..., :2] * np.array([width, height], np.float32)
    iod = np.linalg.norm(px[:, EYE_OUTER_CORNERS[0]] - px[:, EYE_OUTER_CORNERS[1]], axis=-1)
    step = np.zeros(len(raw))
    both = known[1:] & known[:-1]
    disagree = np.median(np.linalg.norm(flow_px[1:] - (px[1:] - px[:-1]), axis=-1), axis=-1)
    step[1:][both] = disagree[both] / np.maximum(iod[1:][both], 1.0)
    confidence = np.exp(-((residual / FIT_SIGMA) ** 2) - (step / FLOW_SIGMA) ** 2)
    return np.where(known, confidence, 0.0).astype(np.float32)


def _attach_audio(track: VideoTrack, path) -> None:
    try:
        sound = read_audio_track(path)
    except MissingDependencyError:
        raise
    except VideoError as exc:  # the picture is fine; a broken sound track should not cost the tracking
        track.warnings.append(str(exc))
        return
    if sound is not None and sound.samples.size:
        track.audio, track.sample_rate, track.audio_offset = sound.samples, sound.sample_rate, sound.offset


def _ranges(frames: list[int]) -> str:
    """[3, 4, 5, 9] → '3–5, 9'."""
    out, start = [], frames[0]
    for a, b in zip(frames, frames[1:] + [math.inf]):
        if b != a + 1:
            out.append(f"{start}–{a}" if a != start else f"{a}")
            start = b
    return ", ".join(out)


class _Clock:
    """Optional per-stage wall time, for the benchmark; free when no dict is given."""

    def __init__(self, timings: dict[str, float] | None):
        self.timings = timings

    def add(self, stage: str, seconds: float) -> None:
        if self.timings is not None:
            self.timings[stage] = self.timings.get(stage, 0.0) + seconds

    @contextlib.contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        yield
        self.add(stage, time.perf_counter() - t0)

    def each(self, stage: str, iterable):
        """Iterate, charging the time spent waiting for each item (decoding not hidden by the reader thread) to ``stage``."""
        iterator = iter(iterable)
        while True:
            t0 = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                return
            self.add(stage, time.perf_counter() - t0)
            yield item
