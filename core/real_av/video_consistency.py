"""How well a take made with a reference video follows the real speaker in it: motion against motion.

For each manifest clip, ``generate`` runs on the clip's sound with the clip's video (once per video face model) and
without it (the audio-only floor). The take's default head is posed per frame (expression units and jaw; the head
rotation is the take's own) and read at the MediaPipe points; the real face is the tracker's pose-free points and
head rotation. Features, each normalised by its own face (divided by the eye-corner distance where it is a length)
and then by its own median, so only motion is compared:
- head pose: yaw, pitch, roll (Euler angles of the head rotation about the canonical Y, X, Z axes), degrees;
- brows, left and right: the mean height of the brow points over the eye corners;
- eyelids, left and right: the lid opening over the eye width (``core.video.eyes.openness``);
per feature Pearson r and the amplitude ratio (the take's standard deviation over the real one) on the frames the
tracker saw, and blinks (``core.video.eyes.blinks`` on both faces) matched within ±BLINK_TOLERANCE_FRAMES for
precision and recall. The take's frame at time t is compared with the video's frame at t + the sound's start + the
clip's own offset: the lips' bilabial releases, or a file of the same recording (:mod:`.own_offset`, no model), say
where a file's picture runs ahead of or behind its own sound, and a take is made on the sound's clock, so a speaker's
blink belongs to the take where the sound heard with it is; where neither says anything, the offset is 0.

The baseline's head pose is the rigid fit of the same tracked points, so its pose r shows the pose passes through,
not that it is true; its brows come from the same points too."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import LatticeTalkError
from ..mediapipe_points import BROW_HEIGHTS
from .manifest import RealClip, check_folder

BLINK_TOLERANCE_FRAMES = 2
AUDIO_ONLY = "audio only"
POSE_FEATURES = ("yaw", "pitch", "roll")
FACE_FEATURES = ("brow L", "brow R", "lid L", "lid R")
FEATURES = POSE_FEATURES + FACE_FEATURES


def face_features(points: np.ndarray, head_rotation: np.ndarray) -> dict[str, np.ndarray]:
    """(T, 478, 3) pose-free points (+Y up) and (T, 3) axis-angle head rotation → each feature (T,), not yet
    median-normalised."""
    from ..rotations import axis_angle_to_euler_xyz
    from ..video.eyes import openness

    euler = np.degrees(axis_angle_to_euler_xyz(head_rotation))
    eyes = np.linalg.norm(points[:, 33] - points[:, 263], axis=-1)
    lids = openness(points)

    def brow(brow_points, corners):
        return (points[:, list(brow_points), 1].mean(1) - points[:, list(corners), 1].mean(1)) / eyes

    return {"yaw": euler[:, 1], "pitch": euler[:, 0], "roll": euler[:, 2],
            "brow L": brow(*BROW_HEIGHTS["left"]), "brow R": brow(*BROW_HEIGHTS["right"]),
            "lid L": lids[:, 0], "lid R": lids[:, 1]}


def compare_features(take: dict[str, np.ndarray], real: dict[str, np.ndarray], valid: np.ndarray) -> dict:
    """Per feature: r and amplitude ratio over the ``valid`` frames, each side minus its own median."""
    row = {}
    for name in FEATURES:
        a, b = take[name][valid], real[name][valid]
        a, b = a - np.median(a), b - np.median(b)
        flat = a.std() < 1e-12 or b.std() < 1e-12
        row[name] = {"r": 0.0 if flat else float(np.corrcoef(a, b)[0, 1]),
                     "amplitude": float(a.std() / max(b.std(), 1e-12))}
    return row


def match_blinks(take_peaks: list[int], real_peaks: list[int], tolerance: int = BLINK_TOLERANCE_FRAMES) -> int:
    """How many take blinks pair one-to-one with a real blink within ``tolerance`` frames (greedy, nearest first)."""
    pairs = sorted((abs(a - b), i, j) for i, a in enumerate(take_peaks) for j, b in enumerate(real_peaks)
                   if abs(a - b) <= tolerance)
    used_take, used_real = set(), set()
    for _, i, j in pairs:
        if i not in used_take and j not in used_real:
            used_take.add(i), used_real.add(j)
    return len(used_take)


class HeadFace:
    """The default head's 478 MediaPipe points for a take's expression units and jaw."""

    def __init__(self):
        from ..heads import create
        from ..landmark_rig import LandmarkRig

        head = create("default")
        self._rig, self._names = LandmarkRig(head, point_ids=tuple(range(478))), head.expression_names

    def points(self, clip) -> np.ndarray:
        column = {name: k for k, name in enumerate(clip.expression_names)}
        expression = np.zeros((clip.n_frames, len(self._names)), np.float32)
        for k, name in enumerate(self._names):
            if name in column:
                expression[:, k] = clip.expression[:, column[name]]
        pose = np.zeros((clip.n_frames, 5, 3), np.float32)
        if clip.jaw is not None:
            pose[:, 2] = clip.jaw
        return self._rig.points(expression, pose).astype(np.float64)


def _on_video_frames(signal: np.ndarray, fps: float, n_frames: int, audio_start: float) -> np.ndarray:
    return np.interp(np.arange(n_frames) / fps, np.arange(len(signal)) / fps + audio_start, signal)


def evaluate_video_consistency(clips: list[RealClip], folder: str | Path, video_models: dict[str, str | Path | None],
                               cache_dir: str | Path | None = None,
                               progress: Callable[[str], None] = lambda s: None,
                               manifest: list[RealClip] | None = None) -> dict:
    """{"clips": {model: per-clip rows}, "summary": {model: mean r / amplitude per feature, blink P/R}}.
    ``video_models``: name → video model folder (None: the installed default); the audio-only take is always added.
    ``manifest``: every clip of the manifest, where a clip's same-recording twin is looked up (default: ``clips``)."""
    from ..heads import create
    from ..jobs import run_sync
    from ..motion.face_models import VIDEO_MODEL_WEIGHTS
    from ..pipeline import GenerateRequest, GenerateSettings
    from ..speech.pipeline import SpeechPipeline
    from ..video.eyes import blinks, closure
    from ..video.track import track_video
    from .lip_release import clip_release_sync
    from .own_offset import own_offset

    check_folder(clips, folder)
    folder = Path(folder)
    for name, model in video_models.items():
        if model is not None and not (Path(model) / VIDEO_MODEL_WEIGHTS).is_file():
            raise LatticeTalkError(f"{model}: no {VIDEO_MODEL_WEIGHTS} there; give a video model folder "
                                   "(e.g. vendor_models/video/meshconv)")
    pipeline, head, head_face = SpeechPipeline(), create("default"), HeadFace()
    rows: dict[str, list[dict]] = {name: [] for name in (*video_models, AUDIO_ONLY)}
    for k, clip in enumerate(clips):
        progress(f"{clip.name} ({k + 1}/{len(clips)})")
        video = folder / clip.video
        track = track_video(video, face_crops=False, min_face_fraction=0.3)
        releases = clip_release_sync(clip, folder, cache_dir, track)
        own = own_offset(clip, releases, manifest or clips, folder, cache_dir)
        audio_start = (0.0 if clip.audio else track.audio_offset) + own.offset / track.fps  # to a fraction, as takes place it
        real = face_features(track.points_metric.astype(np.float64), track.head_rotation.astype(np.float64))
        valid = track.confidence > 0.5
        real_blinks = [b.peak for b in track.blinks]
        settings = GenerateSettings(fps=track.fps)
        for name, model in (*video_models.items(), (AUDIO_ONLY, None)):
            with_video = name != AUDIO_ONLY
            request = GenerateRequest(audio_path=folder / (clip.audio or clip.video), head=head, settings=settings,
                                      video_path=video if with_video else None,
                                      video_model=Path(model) if model is not None else None)
            take = run_sync(pipeline, request)
            points = head_face.points(take)
            take_features = face_features(points, take.global_rotation.astype(np.float64))
            take_features = {f: _on_video_frames(s, track.fps, track.n_frames, audio_start) for f, s in take_features.items()}
            head_closure = closure(points)
            take_blinks = [int(round(b.peak + audio_start * track.fps)) for b in blinks(head_closure, track.fps)]
            row = {"clip": clip.name, "frames": track.n_frames, "own_offset_frames": round(own.offset, 3),
                   "own_offset_source": own.source,
                   **compare_features(take_features, real, valid),
                   "real_blinks": len(real_blinks), "take_blinks": len(take_blinks),
                   "matched_blinks": match_blinks(take_blinks, real_blinks)}
            if with_video:
                info = take.provenance["video"]
                row.update(model=info["model"], offset_frames=info["offset_frames"], fused_share=info["fused_share"])
            rows[name].append(row)
    return {"clips": rows, "summary": {name: summarize_consistency(r) for name, r in rows.items()}}


def summarize_consistency(rows: list[dict]) -> dict:
    summary = {f: {"r": float(np.mean([r[f]["r"] for r in rows])), "amplitude": float(np.mean([r[f]["amplitude"] for r in rows]))}
               for f in FEATURES}
    real, take, matched = (sum(r[k] for r in rows) for k in ("real_blinks", "take_blinks", "matched_blinks"))
    summary["blinks"] = {"real": real, "take": take, "matched": matched,
                         "precision": matched / take if take else 0.0, "recall": matched / real if real else 0.0}
    summary["clips"] = len(rows)
    return summary


def format_consistency(summary: dict) -> str:
    head = f"{'take':<22}" + "".join(f"{f:>13}" for f in FEATURES) + f"{'blinks P / R':>18}"
    lines = [head, f"{'':<22}" + "".join(f"{'r / amp':>13}" for _ in FEATURES), "-" * len(head)]
    for name, s in summary.items():
        b = s["blinks"]
        lines.append(f"{name:<22}" + "".join(f"{s[f]['r']:>7.2f} /{s[f]['amplitude']:>4.2f}" for f in FEATURES)
                     + f"{b['precision']:>9.2f} / {b['recall']:.2f} ({b['matched']}/{b['take']}/{b['real']})")
    return "\n".join(lines)

