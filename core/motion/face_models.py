"""The reference video's face as the default head's parameters: ``VideoFaceModel.predict(track) → VideoFace``.

Two implementations share the :class:`VideoFaceModel` protocol: the learned mesh-convolution model
(``core.motion.video_model``, used when its weights are installed in ``vendor_models/video/``) and the
non-learned baseline here, :class:`RetargetFaceModel`. :func:`video_face_model` picks one. numpy only:
the learned model imports torch itself, when it is chosen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..arkit_names import EYELID_UNITS
from ..motion_file import MotionTrack
from .video_face import VIDEO_MODEL_WEIGHTS, VideoFace, VideoFaceModel

VIDEO_MODEL_DIR = Path(__file__).resolve().parents[2] / "vendor_models" / "video"
LEARNED_VIDEO_MODEL_DIR = VIDEO_MODEL_DIR / "meshconv"  # the shipped learned model, opt-in (its MODEL_CARD.md says why)
NEUTRAL_CLOSED_PERCENTILE = 20.0  # frames whose lip gap is at most this percentile count as "mouth closed"
NEUTRAL_MIN_FRAMES = 5


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
    ARKit units by ``core.retarget`` (all 478 points, no lip-contact term: the lips come from the audio);
    eyeBlink units from the tracker's eye closure; head rotation and confidence from the tracker."""

    model_id = "retarget-baseline/1"
    reads_face_crops = False

    def __init__(self):
        self._retargeter = None

    def predict(self, track) -> VideoFace:
        from ..heads import create
        from ..retarget import Retargeter

        if self._retargeter is None:
            self._retargeter = Retargeter(create("default"), lip_contact_weight=0.0)
        points = np.asarray(track.points_metric, np.float32)
        confidence = np.asarray(track.confidence, np.float32)
        motion = MotionTrack(fps=track.fps, points=points, point_ids=np.arange(points.shape[1]),
                             neutral=neutral_face(points, confidence > 0))
        result = self._retargeter.retarget(motion)
        names = tuple(result.expression_names)
        units = np.clip(result.expression, 0.0, 1.0).astype(np.float32)
        for column, unit in enumerate(EYELID_UNITS):  # (left, right) of the subject, as the tracker's columns
            units[:, names.index(unit)] = np.clip(track.eye_closure[:, column], 0.0, 1.0)
        return VideoFace(fps=float(track.fps), units=units, head_rotation=np.asarray(track.head_rotation, np.float32),
                         confidence=confidence, unit_names=names, model_id=self.model_id,
                         meta={"retarget_residual_mm": float(np.mean(result.residual_mm))})
