"""The reference video's face as the default head's parameters: ``VideoFaceModel.predict(track) → VideoFace``.

Two implementations share the :class:`VideoFaceModel` protocol: the learned mesh-convolution model
(``core.motion.video_model``, used when its weights are installed in ``vendor_models/video/``) and the
non-learned baseline here, :class:`RetargetFaceModel`. :func:`video_face_model` picks one. numpy only:
the learned model imports torch itself, when it is chosen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..mediapipe_points import NOSE_BRIDGE, UPPER_FACE
from ..motion_file import MotionTrack
from ..mouth import mouth_unit_mask
from .video_face import VIDEO_MODEL_WEIGHTS, VideoFace, VideoFaceModel

VIDEO_MODEL_DIR = Path(__file__).resolve().parents[2] / "vendor_models" / "video"
LEARNED_VIDEO_MODEL_DIR = VIDEO_MODEL_DIR / "meshconv"  # the shipped learned model, opt-in (its MODEL_CARD.md says why)
NEUTRAL_CLOSED_PERCENTILE = 20.0  # frames whose lip gap is at most this percentile count as "mouth closed"
NEUTRAL_MIN_FRAMES = 5
# The baseline's fit, chosen on the real-video dev split (`video eval-real --split dev`, 11 clips, 97 blinks; the test
# split was read once, after): the upper face only — the take's lips and jaw are the audio's, and fitting the mouth's
# points with the mouth's units pulled the shared cheek/eye units off the brows and lids (brow r 0.76/0.84 → 0.86/0.92);
# eyeBlink solved from the lid points like every other unit, not set from the tracker's eye closure (lid r
# 0.86/0.82 → 0.97/0.97, blinks P/R 0.77/0.75 → 0.99/0.93: the closure curve and the solved eyeWide/eyeSquint fought);
# depth at 0.3 (MediaPipe's monocular depth is its noisiest coordinate); the brow heights as rows of their own at
# weight 10 (brow travel 0.72/0.77 → 0.96/0.98 of the speaker's, r 0.97/0.97; 3 → 0.85/0.91, 30 → no better).
BASELINE_POINTS = tuple(sorted(set(UPPER_FACE + NOSE_BRIDGE)))
BASELINE_DEPTH_WEIGHT = 0.3
BASELINE_BROW_WEIGHT = 10.0


def video_face_model(model_dir: str | Path | None = None, device: str = "cpu") -> VideoFaceModel:
    """The learned mesh-convolution model (on the torch ``device``) when its weights
    (``<model_dir>/video_model.safetensors``, default ``vendor_models/video/``) are installed, otherwise the
    non-learned :class:`RetargetFaceModel`."""
    model_dir = Path(model_dir) if model_dir is not None else VIDEO_MODEL_DIR
    if (model_dir / VIDEO_MODEL_WEIGHTS).is_file():
        from .video_model import load_face_model  # torch; the learned model implements VideoFaceModel

        return load_face_model(model_dir, device)
    return RetargetFaceModel()


def neutral_face(points: np.ndarray, reliable: np.ndarray) -> np.ndarray:
    """(478, 3) the speaker's rest face: per point, the median over the reliably tracked frames whose mouth
    is closed (lip gap within the lowest NEUTRAL_CLOSED_PERCENTILE % of the video's).

    Why: a talking head has no neutral frame; mouth-closed frames are the nearest to rest for the lips and
    jaw, and the median over them gives the brows and lids their usual state in this video. So the baseline
    measures brows and eyes *relative to how this speaker usually looks* — a speaker who frowns throughout
    reads as neutral."""
    from ..lip_geometry import lip_gap

    frames = np.flatnonzero(reliable) if reliable.sum() >= NEUTRAL_MIN_FRAMES else np.arange(len(points))
    gap = lip_gap(MotionTrack(fps=1.0, points=points[frames], point_ids=np.arange(points.shape[1])))
    closed = frames[gap <= np.percentile(gap, NEUTRAL_CLOSED_PERCENTILE)]
    if len(closed) < NEUTRAL_MIN_FRAMES:
        closed = frames[np.argsort(gap)[:NEUTRAL_MIN_FRAMES]]
    return np.median(points[closed], axis=0).astype(np.float32)


class RetargetFaceModel:
    """The non-learned baseline: the tracker's pose-free points relative to :func:`neutral_face`, normalised by
    the inter-ocular distance and scaled to the default head, solved for the default head's box-constrained
    upper-face ARKit units (brows, eyes and blinks, cheek squint, nose) by ``core.retarget`` on the upper face's
    points (BASELINE_POINTS, brow heights kept; the lips and jaw come from the audio, so mouth units stay 0);
    head rotation and confidence from the tracker."""

    model_id = "retarget-baseline/2"
    reads_face_crops = False

    def __init__(self):
        self._retargeter = None

    def predict(self, track) -> VideoFace:
        from ..heads import create
        from ..retarget import Retargeter

        if self._retargeter is None:
            head = create("default")
            upper_face = [n for n, mouth in zip(head.expression_names, mouth_unit_mask(head.expression_names)) if not mouth]
            self._retargeter = Retargeter(head, points=BASELINE_POINTS, lip_contact_weight=0.0, units=upper_face,
                                          depth_weight=BASELINE_DEPTH_WEIGHT, brow_weight=BASELINE_BROW_WEIGHT)
        points = np.asarray(track.points_metric, np.float32)
        confidence = np.asarray(track.confidence, np.float32)
        motion = MotionTrack(fps=track.fps, points=points, point_ids=np.arange(points.shape[1]),
                             neutral=neutral_face(points, confidence > 0))
        result = self._retargeter.retarget(motion)
        names = tuple(result.expression_names)
        units = np.clip(result.expression, 0.0, 1.0).astype(np.float32)
        return VideoFace(fps=float(track.fps), units=units, head_rotation=np.asarray(track.head_rotation, np.float32),
                         confidence=confidence, unit_names=names, model_id=self.model_id,
                         meta={"retarget_residual_mm": float(np.mean(result.residual_mm))})
