"""How a take's ARKit units drive a user's character, and the presets that remember it.

A :class:`CharacterMap` gives each of the 52 units a shape key (or nothing), a scale and an ignore flag, plus
the bones that carry the jaw and the head pose. Maps are saved as JSON presets (``lattice_talk.character_map/1``)
in a presets folder and loaded by name. :func:`character_curves` turns a clip into per-target value arrays;
the Blender side only keys them.

Bones. Clip rotations are axis-angles in the head's frame (FLAME: +Y up, face along +Z). A character is assumed
upright in Blender's world (+Z up) facing −Y, as Blender's front view expects, so the head frame maps to the world
by a quarter turn about X (:data:`HEAD_TO_WORLD`). A pose bone's rotation acts in its rest frame ``B`` (world
orientation of the bone at rest), so a world rotation ``R`` becomes ``Bᵀ R B`` — for an axis-angle that is just the
axis ``Bᵀ v``. This holds for any bone orientation and roll, so no per-rig axis setting is needed.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .arkit_names import ARKIT_NAMES, EYELID_UNITS, JAW_OPEN, match_arkit_names
from .clip import AnimationClip
from .errors import LatticeTalkError
from .rotations import axis_angle_to_euler_xyz, axis_angle_to_quat, quat_multiply, quat_to_axis_angle
from .validate import number, read_json

PRESET_FORMAT = "lattice_talk.character_map/1"
PRESETS_ENV = "LATTICE_TALK_PRESETS"  # overrides the user presets folder (CI, shared studio folders)
MAX_PRESET_BYTES = 1 << 20  # 52 units with their targets fit in a few KB
MAX_SCALE = 100.0  # a unit scaled further drives any shape key far past its sculpted range
# Jaw angle (rad about the head's +X) whose motion the default head's jawOpen unit reproduces: 0.40 rad fits the
# sculpt to 0.09 mm mean error over the 1,636 vertices it moves (tests/test_character_map.py re-measures it).
JAW_OPEN_ANGLE = 0.40
HEAD_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # +Y up, +Z face → +Z up, −Y face
BONE_ROTATION_MODES = ("QUATERNION", "XYZ")  # what character bones may use; others ask the user to switch
_PRESET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.()-]{0,63}")


class CharacterMapError(LatticeTalkError):
    """A character map or preset is malformed, or does not fit the character it is used on."""


@dataclass
class ChannelMap:
    """Where one unit goes: a shape key (``""``: nowhere), scaled by ``scale``, or nowhere when ``ignore``."""

    channel: str
    target: str = ""
    scale: float = 1.0
    ignore: bool = False


@dataclass
class CharacterMap:
    """Every ARKit unit's :class:`ChannelMap` (in :data:`ARKIT_NAMES` order) and the character's bones."""

    channels: list[ChannelMap] = field(default_factory=lambda: [ChannelMap(c) for c in ARKIT_NAMES])
    jaw_bone: str = ""  # "": the jaw opens the jawOpen shape key instead
    head_bone: str = ""  # "": no head pose

    def channel(self, name: str) -> ChannelMap:
        return next(c for c in self.channels if c.channel == name)

    def unmatched(self) -> list[str]:
        """Units that would drive nothing: neither mapped nor ignored."""
        return [c.channel for c in self.channels if not c.ignore and not c.target]

    def jaw_to_shape_key(self) -> bool:
        """The jaw goes to a jaw bone when the map names one, else into the jawOpen key."""
        return not self.jaw_bone

    def validate(self, shape_keys: list[str] | None = None, bones: list[str] | None = None, where: str = "") -> None:
        """Raise :class:`CharacterMapError` for a broken map, or targets ``shape_keys``/``bones`` lack."""
        where = f"{where}: " if where else ""
        names = [c.channel for c in self.channels]
        if sorted(names) != sorted(ARKIT_NAMES):
            odd = sorted(set(names) ^ set(ARKIT_NAMES)) or sorted({n for n in names if names.count(n) > 1})
            raise CharacterMapError(f"{where}the map must list each of the 52 ARKit units once; check {', '.join(odd[:6])}")
        seen: dict[str, str] = {}
        for c in self.channels:
            if not np.isfinite(c.scale):
                raise CharacterMapError(f"{where}channel {c.channel}: scale must be a finite number, got {c.scale!r}")
            if c.ignore or not c.target:
                continue
            if c.target in seen:
                raise CharacterMapError(f"{where}channels {seen[c.target]} and {c.channel} both drive shape key "
                                        f"'{c.target}'; map one of them elsewhere or ignore it")
            seen[c.target] = c.channel
            if shape_keys is not None and c.target not in shape_keys:
                raise CharacterMapError(f"{where}channel {c.channel}: the mesh has no shape key '{c.target}'; "
                                        "pick one of its keys or clear the target")
        for role, bone in (("jaw", self.jaw_bone), ("head", self.head_bone)):
            if bone and bones is not None and bone not in bones:
                raise CharacterMapError(f"{where}{role} bone '{bone}' is not in the armature; pick one of its bones "
                                        "or clear the field")

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        return {"format": PRESET_FORMAT, "jaw_bone": self.jaw_bone, "head_bone": self.head_bone,
                "channels": {c.channel: {"target": c.target, "scale": c.scale, "ignore": c.ignore} for c in self.channels}}

    @classmethod
    def from_json(cls, data: Any, where: str = "character map") -> CharacterMap:
        if not isinstance(data, dict) or data.get("format") != PRESET_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise CharacterMapError(f"{where}: not a LatticeTalk character map (format {found!r}, expected "
                                    f"{PRESET_FORMAT!r}); save the mapping again")
        channels = data.get("channels")
        if not isinstance(channels, dict):
            raise CharacterMapError(f"{where}: \"channels\" must be an object of unit → {{target, scale, ignore}}")
        unknown = sorted(set(channels) - set(ARKIT_NAMES))
        if unknown:
            raise CharacterMapError(f"{where}: unknown units {', '.join(unknown[:6])}; use ARKit names such as jawOpen")
        result = cls(jaw_bone=_text(data.get("jaw_bone", ""), "jaw_bone", where),
                     head_bone=_text(data.get("head_bone", ""), "head_bone", where))
        for c in result.channels:
            entry = channels.get(c.channel, {})
            if not isinstance(entry, dict):
                raise CharacterMapError(f"{where}: channel {c.channel} must be an object with target, scale, ignore")
            c.target = _text(entry.get("target", ""), f"{c.channel}.target", where)
            ignore = entry.get("ignore", False)
            if not isinstance(ignore, bool):
                raise CharacterMapError(f"{where}: {c.channel}.ignore must be true or false, got {ignore!r}")
            c.scale = number(entry.get("scale", 1.0), f"{where}: {c.channel}.scale", -MAX_SCALE, MAX_SCALE,
                             "give a scale such as 1.0, or save the mapping again", CharacterMapError)
            c.ignore = ignore
        result.validate(where=where)
        return result


def _text(value: Any, what: str, where: str) -> str:
    if not isinstance(value, str):
        raise CharacterMapError(f"{where}: {what} must be a string, got {value!r}")
    return value


def auto_map(shape_keys: list[str], bones: list[str] = ()) -> CharacterMap:
    """A map from names alone: units to shape keys by :func:`match_arkit_names`; the jaw to the jawOpen key, or
    without one to a bone called ``jaw``; the head pose to a bone called ``head`` (else ``neck``) — any case, with
    prefixes such as ``DEF-`` or ``mixamorig:``."""
    match = match_arkit_names(shape_keys)
    # "Whichever the rig has": an ARKit rig's sculpted jawOpen key is made for these takes, so it wins over a bone.
    jaw_bone = "" if JAW_OPEN in match.targets else _find_bone(bones, ("jaw",))
    result = CharacterMap(jaw_bone=jaw_bone, head_bone=_find_bone(bones, ("head", "neck")))
    for c in result.channels:
        c.target = match.targets.get(c.channel, "")
    return result


def _find_bone(bones, words: tuple[str, ...]) -> str:
    for word in words:  # the first word wins: a head bone before a neck bone
        for bone in bones:
            if re.fullmatch(rf"(?:[a-z0-9]+[-_.:])*{word}(?:[-_.](?:\d+|x)|\d+)?", bone.casefold()):
                return bone
    return ""


# ------------------------------------------------------------------ presets

def user_presets_dir() -> Path:
    """Where presets are saved: ``$LATTICE_TALK_PRESETS``, else ``~/.lattice_talk/character_maps``. Blender passes
    its own extension user folder instead."""
    return Path(os.environ.get(PRESETS_ENV) or Path.home() / ".lattice_talk" / "character_maps")


def _preset_path(name: str, folder: Path) -> Path:
    if not isinstance(name, str) or not _PRESET_NAME.fullmatch(name):
        raise CharacterMapError(f"preset name {name!r}: use 1–64 letters, digits, spaces, '_', '-', '.' or '()', "
                                "starting with a letter or digit")
    return Path(folder) / f"{name}.json"


def save_preset(mapping: CharacterMap, name: str, folder: Path | None = None) -> Path:
    """Write ``mapping`` as preset ``name`` (replacing one of that name)."""
    mapping.validate(where=f"preset {name!r}")
    path = _preset_path(name, folder or user_presets_dir())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(mapping.to_json(), indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise CharacterMapError(f"{path}: cannot save the preset ({exc}); check the folder is writable") from exc
    return path


def load_preset(name: str, folder: Path | None = None) -> CharacterMap:
    path = _preset_path(name, folder or user_presets_dir())
    if not path.is_file():
        known = ", ".join(list_presets(path.parent)) or "none yet"
        raise CharacterMapError(f"{path}: no preset named {name!r} (saved presets: {known}); save one first")
    data = read_json(path, "character map preset", MAX_PRESET_BYTES, "fix or delete the file", CharacterMapError)
    return CharacterMap.from_json(data, where=str(path))


def list_presets(folder: Path | None = None) -> list[str]:
    folder = Path(folder or user_presets_dir())
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


# ------------------------------------------------------------------ clip → character values

def clip_eyelids(clip: AnimationClip) -> np.ndarray | None:
    """(T, 2) left, right closure: the clip's eyelids, with blinks closing them further; None when it has neither."""
    eyelids = clip.eyelids
    if clip.blink is not None:
        blink = np.repeat(clip.blink[:, None], 2, axis=1)
        eyelids = blink if eyelids is None else np.maximum(eyelids, blink)
    return eyelids


def arkit_units(clip: AnimationClip, jaw_to_shape_key: bool) -> np.ndarray:
    """(T, 52) the clip's ARKit units in :data:`ARKIT_NAMES` order: its expression columns with ARKit names (any
    spelling), eyelids/blinks closing eyeBlink*, and with ``jaw_to_shape_key`` the jaw bone's opening added to
    jawOpen (:data:`JAW_OPEN_ANGLE` per unit). Raises when the clip carries no ARKit unit at all."""
    units = np.zeros((clip.n_frames, len(ARKIT_NAMES)), np.float32)
    columns = match_arkit_names(list(clip.expression_names)).targets if clip.expression is not None else {}
    if not columns and clip.jaw is None and clip_eyelids(clip) is None:
        raise CharacterMapError(f"the clip of head {clip.head_id!r} has no ARKit units; convert it to the default "
                                "head first (python -m lattice_talk convert --help)")
    for k, name in enumerate(ARKIT_NAMES):
        if name in columns:
            units[:, k] = clip.expression[:, clip.expression_names.index(columns[name])]
    eyelids = clip_eyelids(clip)
    if eyelids is not None:
        for side, name in enumerate(EYELID_UNITS):
            k = ARKIT_NAMES.index(name)
            units[:, k] = np.maximum(units[:, k], eyelids[:, side])
    if jaw_to_shape_key and clip.jaw is not None:
        k = ARKIT_NAMES.index(JAW_OPEN)
        units[:, k] = np.clip(units[:, k] + clip.jaw[:, 0] / JAW_OPEN_ANGLE, 0.0, 1.0)
    return units


def head_rotation(clip: AnimationClip) -> np.ndarray | None:
    """(T, 3) the head's axis-angle relative to the body: the clip's global rotation, then its neck."""
    parts = [r for r in (clip.global_rotation, clip.neck) if r is not None]
    if not parts:
        return None
    quat = axis_angle_to_quat(parts[0].astype(np.float64))
    for rotvec in parts[1:]:
        quat = quat_multiply(quat, axis_angle_to_quat(rotvec.astype(np.float64)))
    return quat_to_axis_angle(quat).astype(np.float32)


def bone_rotation(rotvec: np.ndarray, bone_rest_world: np.ndarray, mode: str, bone: str = "") -> np.ndarray:
    """A head-frame axis-angle track (T, 3) as the pose rotation of a bone whose rest orientation in the world is
    ``bone_rest_world`` (3×3, scale allowed): (T, 4) quaternions w, x, y, z for ``QUATERNION``, (T, 3) Euler XYZ."""
    if mode not in BONE_ROTATION_MODES:
        raise CharacterMapError(f"bone '{bone}' uses rotation mode {mode}; set it to Quaternion or XYZ Euler "
                                "(Pose Bone › Transform › Mode) so the take can key it")
    u, _, vt = np.linalg.svd(np.asarray(bone_rest_world, np.float64))
    rest = u @ vt  # nearest rotation: drops the armature's scale
    local = rotvec.astype(np.float64) @ (rest.T @ HEAD_TO_WORLD).T  # v ↦ Bᵀ C v, frame by frame
    return (axis_angle_to_quat(local) if mode == "QUATERNION" else axis_angle_to_euler_xyz(local)).astype(np.float32)


@dataclass
class CharacterCurves:
    """Per-frame values for a character: shape keys, and bone rotations (with each bone's rotation mode)."""

    shape_keys: dict[str, np.ndarray]  # key name → (T,)
    bones: dict[str, tuple[str, np.ndarray]]  # bone → (mode, (T, 4) or (T, 3))
    unmatched: list[str]  # units the character does not receive (neither mapped nor ignored), ARKit order


def character_curves(clip: AnimationClip, mapping: CharacterMap,
                     bone_rest: dict[str, tuple[np.ndarray, str]] | None = None) -> CharacterCurves:
    """What ``clip`` does to a character under ``mapping``. ``bone_rest``: bone → (rest orientation in the world
    3×3, rotation mode) for the bones the map names."""
    bone_rest = bone_rest or {}
    units = arkit_units(clip, mapping.jaw_to_shape_key())
    keys = {c.target: units[:, ARKIT_NAMES.index(c.channel)] * np.float32(c.scale)
            for c in mapping.channels if c.target and not c.ignore}
    bones: dict[str, tuple[str, np.ndarray]] = {}
    for bone, rotvec in ((mapping.jaw_bone, clip.jaw), (mapping.head_bone, head_rotation(clip))):
        if bone and rotvec is not None:
            rest, mode = bone_rest[bone]
            bones[bone] = (mode, bone_rotation(rotvec, rest, mode, bone))
    return CharacterCurves(keys, bones, mapping.unmatched())
