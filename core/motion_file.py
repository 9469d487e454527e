"""MotionTrack: facial motion as MediaPipe points over time, with optional phonemes and audio.

The head-agnostic motion space of DESIGN.md: per frame, the positions (metres) of MediaPipe face-mesh
points in a canonical head frame (+Y up, face along +Z), without rigid head motion. Synthetic corpora,
video tracking and predictions are all stored this way, and the metrics compare two tracks.
Offsets relative to neutral, normalised by the inter-ocular distance, are derived on demand.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .audio import SPEECH_RATE
from .phonemes import PhonemeEvent
from .errors import LatticeTalkError
from .mediapipe_points import EYE_OUTER_CORNERS
from .npz_files import save_npz_atomic

MOTION_FILE_FORMAT = "lattice_talk.motion/1"


@dataclass
class MotionTrack:
    fps: float
    points: np.ndarray  # (T, P, 3) float32, metres, canonical head frame
    point_ids: np.ndarray  # (P,) MediaPipe indices of the columns of ``points``
    neutral: np.ndarray | None = None  # (P, 3) the speaker's rest face (for offsets)
    phonemes: list[PhonemeEvent] = field(default_factory=list)
    audio: np.ndarray | None = None  # (N,) float32 mono
    sample_rate: int = SPEECH_RATE
    meta: dict[str, Any] = field(default_factory=dict)  # voice, engine, text, seed, …
    head_rotation: np.ndarray | None = None  # (T, 3) axis-angle rigid head motion, kept out of ``points``

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, np.float32)
        self.point_ids = np.asarray(self.point_ids, np.int64)
        if self.points.ndim != 3 or self.points.shape[2] != 3 or self.points.shape[1] != len(self.point_ids):
            raise LatticeTalkError(f"motion points must be (T, {len(self.point_ids)}, 3), got {self.points.shape}")
        if not self.fps > 0:
            raise LatticeTalkError(f"motion fps must be positive, got {self.fps}")

    @property
    def n_frames(self) -> int:
        return int(self.points.shape[0])

    def column(self, mediapipe_id: int) -> int:
        hits = np.flatnonzero(self.point_ids == mediapipe_id)
        if not len(hits):
            raise LatticeTalkError(f"MediaPipe point {mediapipe_id} is not in this motion track")
        return int(hits[0])

    def select(self, mediapipe_ids) -> np.ndarray:
        """(T, len(ids), 3) for the given MediaPipe points."""
        return self.points[:, [self.column(i) for i in mediapipe_ids]]

    def face_scale(self) -> float:
        """Inter-ocular (outer canthi) distance of the neutral face, metres."""
        ref = self.neutral if self.neutral is not None else self.points[0]
        a, b = (ref[self.column(i)] for i in EYE_OUTER_CORNERS)
        return float(np.linalg.norm(a - b))

    def normalised_offsets(self) -> np.ndarray:
        """(T, P, 3) offsets from neutral divided by the inter-ocular distance: transferable across heads."""
        if self.neutral is None:
            raise LatticeTalkError("this motion track has no neutral face, so offsets are undefined")
        return (self.points - self.neutral[None]) / self.face_scale()

    # ---------------------------------------------------------------- storage
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        arrays: dict[str, np.ndarray] = {"points": self.points.astype(np.float32), "point_ids": self.point_ids}
        if self.neutral is not None:
            arrays["neutral"] = np.asarray(self.neutral, np.float32)
        if self.audio is not None:
            arrays["audio"] = np.asarray(self.audio, np.float32)
        if self.head_rotation is not None:
            arrays["head_rotation"] = np.asarray(self.head_rotation, np.float32)
        arrays["phoneme_times"] = np.array([(p.start, p.end) for p in self.phonemes], np.float64).reshape(-1, 2)
        arrays["phoneme_labels"] = np.array([p.phoneme for p in self.phonemes], dtype="<U4")
        header = {"format": MOTION_FILE_FORMAT, "fps": self.fps, "sample_rate": self.sample_rate, "meta": self.meta}
        arrays["header"] = np.array(json.dumps(header))
        return save_npz_atomic(path, **arrays)


def load_motion(path: str | Path) -> MotionTrack:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        header = json.loads(str(arrays["header"]))
        if header.get("format") != MOTION_FILE_FORMAT:
            raise LatticeTalkError(f"{path}: not a LatticeTalk motion file (format {header.get('format')!r})")
        phonemes = [PhonemeEvent(str(label), float(s), float(e))
                    for label, (s, e) in zip(arrays["phoneme_labels"], arrays["phoneme_times"])]
        return MotionTrack(fps=float(header["fps"]), points=arrays["points"], point_ids=arrays["point_ids"],
                           neutral=arrays.get("neutral"), phonemes=phonemes, audio=arrays.get("audio"),
                           sample_rate=int(header.get("sample_rate", SPEECH_RATE)), meta=header.get("meta", {}),
                           head_rotation=arrays.get("head_rotation"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise LatticeTalkError(f"{path}: not a readable motion file ({exc})") from exc
