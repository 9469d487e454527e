"""The video path: reference video → per-frame MediaPipe points, head pose, optical flow, blinks, confidence.

No bpy. OpenCV, MediaPipe and PyAV (the ``video`` extra) are imported inside the functions that need them,
so ``import lattice_talk.core.video`` works without them and a missing package is reported as a
:class:`~.errors.VideoError` with the install command. The entry point is :func:`.track.track_video`.

decode.py     frames + timestamps (dropped-frame detection) with OpenCV; the audio track with PyAV
landmarks.py  MediaPipe face mesh (478 points with iris, the model inside the wheel) per frame
canonical.py  MediaPipe's canonical face model (vendored, metres) and the stable points for pose
head_pose.py  similarity (Umeyama) alignment to the canonical frame; smoothing; interpolation of gaps
flow.py       OpenCV DIS optical flow inside the face box, sampled at the points
eyes.py       eye closure per eye (lid distance / eye width, normalised per video) and blink events
track.py      the orchestrator: track_video(...) → VideoTrack
"""

from .errors import NoFaceError, VideoError

__all__ = ["NoFaceError", "VideoError"]
