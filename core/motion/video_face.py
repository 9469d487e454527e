"""What a video face model gives and how it is called: :class:`VideoFace` (the video's face on the default head)
and the :class:`VideoFaceModel` protocol. Kept apart from the models themselves so the learned model
(``core.motion.video_model``) and the baseline and factory (``core.motion.face_models``) both import it and
neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

VIDEO_MODEL_WEIGHTS = "video_model.safetensors"  # what core.motion.video_model.load_face_model reads


@dataclass(eq=False)
class VideoFace:
    """The video's face on the default head, one row per frame of the video (at the video's ``fps``)."""

    fps: float
    units: np.ndarray  # (T, 52) the default head's ARKit units, 0..1, columns named by ``unit_names``
    head_rotation: np.ndarray  # (T, 3) axis-angle, head → camera (= AnimationClip.global_rotation)
    confidence: np.ndarray  # (T,) 0..1, 0 where the tracker measured nothing (lost face, dropped frame; fusion bridges short drops)
    unit_names: tuple[str, ...]  # the default head's expression names (the 52 ARKit units)
    model_id: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.units.shape[0])


class VideoFaceModel(Protocol):
    """Turns a tracked video into the default head's ARKit units, head rotation and per-frame confidence."""

    model_id: str  # recorded in a take's provenance
    reads_face_crops: bool  # the tracker cuts its face crops only for a model that reads them

    def predict(self, track) -> VideoFace:  # track: core.video.track.VideoTrack
        ...
