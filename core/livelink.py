"""Live Link Face CSV: the take format Epic's iPhone app records and Unreal's Live Link Face importer reads.

One header row, then one row per frame::

    Timecode,BlendShapeCount,EyeBlinkLeft,…,TongueOut,HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,…,RightEyeRoll
    00:00:00:00.000,61,0.0,…

``Timecode`` is ``HH:MM:SS:FF.mmm`` (frame ``FF`` within the second, ``.mmm`` its fraction), ``BlendShapeCount``
is 61 (the 52 units plus nine rotations), the units run 0–1 in the app's PascalCase spelling and order, and the
rotations are radians. Our rotations are the head's yaw (about its up axis), pitch (about its left-right axis)
and roll (about its forward axis), R = R_yaw · R_pitch · R_roll in the head frame (+Y up, +Z forward). The
format has no room for metadata, so a take's provenance travels in the .npz/.json clip, not in the CSV.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .arkit_names import ARKIT_NAMES
from .character_map import arkit_units, head_rotation
from .clip import AnimationClip
from .errors import ClipError
from .lbs import rodrigues_np

ROTATION_COLUMNS = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                    "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
CURVE_COLUMNS = tuple(n[0].upper() + n[1:] for n in ARKIT_NAMES) + ROTATION_COLUMNS
LIVELINK_HEADER = ("Timecode", "BlendShapeCount") + CURVE_COLUMNS
BLEND_SHAPE_COUNT = len(CURVE_COLUMNS)  # 61, as the app writes it


def yaw_pitch_roll(rotvec: np.ndarray) -> np.ndarray:
    """(T, 3) axis-angle in the head frame → (T, 3) yaw, pitch, roll with R = R_y(yaw) · R_x(pitch) · R_z(roll)."""
    r = rodrigues_np(np.asarray(rotvec, np.float64))
    yaw = np.arctan2(r[..., 0, 2], r[..., 2, 2])
    pitch = np.arcsin(np.clip(-r[..., 1, 2], -1.0, 1.0))
    roll = np.arctan2(r[..., 1, 0], r[..., 1, 1])
    return np.stack([yaw, pitch, roll], axis=-1)


def timecode(frame: int, fps: float) -> str:
    """``HH:MM:SS:FF.mmm`` of frame ``frame`` from zero at ``fps``."""
    seconds = frame / fps
    whole = math.floor(seconds + 1e-9)
    frames = (seconds - whole) * fps
    hours, rest = divmod(whole, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}:{int(frames + 1e-6):02d}.{round((frames % 1) * 1000) % 1000:03d}"


def livelink_rows(clip: AnimationClip) -> np.ndarray:
    """(T, 61) the CSV's numeric columns: 52 units (the jaw bone folded into JawOpen, eyelids into EyeBlink*),
    then head and eye yaw/pitch/roll (zero where the clip has no such channel)."""
    rows = np.zeros((clip.n_frames, BLEND_SHAPE_COUNT), np.float64)
    rows[:, :len(ARKIT_NAMES)] = arkit_units(clip, jaw_to_shape_key=True)
    for k, rotvec in enumerate((head_rotation(clip), clip.eye_L, clip.eye_R)):
        if rotvec is not None:
            start = len(ARKIT_NAMES) + 3 * k
            rows[:, start:start + 3] = yaw_pitch_roll(rotvec)
    return rows


def write_livelink_csv(clip: AnimationClip, path: str | os.PathLike[str]) -> Path:
    """Write ``clip`` as a Live Link Face CSV at ``path`` (frames at the clip's own rate)."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise ClipError(f"{path}: a Live Link Face take is a .csv file; give a name ending in .csv")
    rows = livelink_rows(clip)
    lines = [",".join(LIVELINK_HEADER)]
    for k, row in enumerate(rows):
        values = ",".join(f"{v:.6g}" for v in row)
        lines.append(f"{timecode(k, clip.fps)},{BLEND_SHAPE_COUNT},{values}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ClipError(f"{path}: cannot write the CSV ({exc}); check the folder is writable") from exc
    return path
