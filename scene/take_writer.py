"""AnimationClip → a named take on a head: one action per layer, each on its own NLA track.

Shape keys animate the Key datablock and bones animate the armature object, so a take is two actions:
``face`` (expression shape keys, eyelids) on the Key and ``head`` (root/neck/jaw/eye bones) on the
armature. Each sits on an NLA track named ``<take> · <layer>`` that the animator can mute, blend or swap.
The jaw is a bone, so it lives in the ``head`` layer only. Curves are written in bulk
(``keyframe_points.add`` + ``foreach_set``) through the legacy action API (4.2) or slotted actions with
channelbags (4.4+, 5.x).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np

from ..core.arkit_names import EYELID_UNITS
from ..core.character_map import clip_eyelids
from ..core.clip import AnimationClip
from ..core.errors import LatticeTalkError
from ..core.keyreduce import reduce_keys_batch
from ..core.rotations import axis_angle_to_euler_xyz
from ..core.validate import MAX_FRAME
from .head_builder import HeadObjects

TAKE_PROP = "lattice_talk_take"
PROVENANCE_PROP = "lattice_talk_provenance"  # the clip's provenance (models, input hashes, settings, seed) as JSON
SEPARATOR = " · "
FACE, HEAD = "face", "head"
LAYER_ID_TYPES = {FACE: "KEY", HEAD: "OBJECT"}
BONE_CHANNELS = {"global_rotation": "root", "neck": "neck", "jaw": "jaw", "eye_L": "eye_L", "eye_R": "eye_R"}


@dataclass
class Curve:
    data_path: str
    index: int
    values: np.ndarray  # (T,) one value per clip frame
    group: str


@dataclass
class TakeResult:
    name: str
    frame_start: int
    frame_end: int
    curves: int
    keys: int
    unmatched_expressions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    conversion: str | None = None  # what was converted from another head's clip, for the report


def track_name(take: str, layer: str) -> str:
    return f"{take}{SEPARATOR}{layer}"


def scene_fps(scene: bpy.types.Scene) -> float:
    return scene.render.fps / scene.render.fps_base


# ----------------------------------------------------------------------------------- planning


def plan_curves(clip: AnimationClip, shape_key_names: set[str], has_armature: bool) -> tuple[dict[str, list[Curve]], list[str]]:
    """Which F-curves a clip becomes, per layer, and the expression channels the mesh has no key for."""
    face: list[Curve] = []
    unmatched: list[str] = []
    if clip.expression is not None:
        for k, name in enumerate(clip.expression_names):
            if name in shape_key_names:
                face.append(Curve(f'key_blocks["{name}"].value', 0, clip.expression[:, k], "Expressions"))
            else:
                unmatched.append(name)
    covered = {c.data_path for c in face}
    eyelids = clip_eyelids(clip)
    if eyelids is not None:
        for side, name in enumerate(EYELID_UNITS):
            path = f'key_blocks["{name}"].value'
            if name in shape_key_names and path not in covered:
                face.append(Curve(path, 0, eyelids[:, side], "Eyelids"))

    head: list[Curve] = []
    if has_armature:
        for channel, bone in BONE_CHANNELS.items():
            rotvec = getattr(clip, channel)
            if rotvec is not None:
                euler = axis_angle_to_euler_xyz(rotvec)
                head += [Curve(f'pose.bones["{bone}"].rotation_euler', i, euler[:, i], bone) for i in range(3)]
        if clip.global_translation is not None:
            head += [Curve('pose.bones["root"].location', i, clip.global_translation[:, i], "root") for i in range(3)]
    return {FACE: face, HEAD: head}, unmatched


# ----------------------------------------------------------------------------------- writing


def _enum_value(prop_owner: type, prop: str, item: str) -> int:
    return prop_owner.bl_rna.properties[prop].enum_items[item].value


class _LayerAction:
    """A new action for one layer, hiding the 4.2 (``action.fcurves``) vs 4.4+ (slots, channelbags) API."""

    def __init__(self, name: str, take: str, layer: str, provenance: dict):
        self.action = bpy.data.actions.new(name)
        self.action[TAKE_PROP] = take
        self.action[PROVENANCE_PROP] = json.dumps(provenance, sort_keys=True)
        if hasattr(self.action, "slots"):
            slot = self.action.slots.new(id_type=LAYER_ID_TYPES[layer], name=layer)
            strip = self.action.layers.new("Layer").strips.new(type="KEYFRAME")
            self._channelbag = strip.channelbag(slot, ensure=True)
        else:
            self.action.id_root = LAYER_ID_TYPES[layer]
            self._channelbag = None
        self._groups: dict[str, object] = {}

    def new_fcurve(self, curve: Curve) -> bpy.types.FCurve:
        if self._channelbag is None:
            return self.action.fcurves.new(curve.data_path, index=curve.index, action_group=curve.group)
        fcurve = self._channelbag.fcurves.new(curve.data_path, index=curve.index)
        if curve.group not in self._groups:
            self._groups[curve.group] = self._channelbag.groups.new(curve.group)
        fcurve.group = self._groups[curve.group]
        return fcurve


def _write_fcurve(fcurve: bpy.types.FCurve, values: np.ndarray, kept: np.ndarray, frame_start: int, linear: bool) -> int:
    n = len(kept)
    co = np.empty((n, 2), np.float32)
    co[:, 0] = frame_start + kept
    co[:, 1] = values[kept]
    points = fcurve.keyframe_points
    points.add(n)
    points.foreach_set("co", co.ravel())
    # Reduced keys are exact only under straight lines; full per-frame keys stay smooth with Bézier.
    mode = "LINEAR" if linear else "BEZIER"
    points.foreach_set("interpolation", np.full(n, _enum_value(bpy.types.Keyframe, "interpolation", mode), np.int32))
    fcurve.update()
    return n


def remove_take(objects: HeadObjects, take: str, scene: bpy.types.Scene | None = None) -> bool:
    """Delete a take's NLA tracks, their actions and its sound strip; other takes are left alone."""
    removed = False
    for track in take_tracks(objects, take):
        actions = [s.action for s in track.strips if s.action is not None]
        track.id_data.animation_data.nla_tracks.remove(track)
        for action in actions:
            if action.get(TAKE_PROP) == take and action.users == 0:
                bpy.data.actions.remove(action)
        removed = True
    if scene is not None and scene.sequence_editor is not None:
        strips = _sequencer_strips(scene.sequence_editor)
        for strip in [s for s in strips if _strip_take(s) == take]:
            strips.remove(strip)
            removed = True
    return removed


def _strip_take(strip) -> str:
    """The take a sound strip belongs to: the full name stored on it (strip names are cut short); older strips
    carry none and are matched by their name."""
    take = strip.get(TAKE_PROP)
    return take if isinstance(take, str) else strip.name


def track_take(track) -> str | None:
    """The take an NLA track belongs to: the full name stored on its action (track names are cut at 63 bytes,
    and a take may be named like another plus a suffix); a track without one, by its exact name."""
    for strip in track.strips:
        if strip.action is not None and isinstance(strip.action.get(TAKE_PROP), str):
            return strip.action[TAKE_PROP]
    take, separator, layer = track.name.rpartition(SEPARATOR)
    return take if separator and layer in LAYER_ID_TYPES else None


def take_tracks(objects: HeadObjects, take: str) -> list:
    tracks = []
    for owner in layer_owners(objects).values():
        anim = owner.animation_data if owner is not None else None
        tracks += [t for t in (anim.nla_tracks if anim else []) if track_take(t) == take]
    return tracks


def set_take_mute(objects: HeadObjects, take: str, mute: bool) -> bool:
    tracks = take_tracks(objects, take)
    for track in tracks:
        track.mute = mute
    return bool(tracks)


def take_is_muted(objects: HeadObjects, take: str) -> bool:
    tracks = take_tracks(objects, take)
    return bool(tracks) and all(t.mute for t in tracks)


def list_takes(objects: HeadObjects) -> list[str]:
    """Take names on this head, top NLA track first."""
    names: list[str] = []
    for owner in layer_owners(objects).values():
        anim = owner.animation_data if owner is not None else None
        for track in reversed(list(anim.nla_tracks) if anim else []):
            take = track_take(track)
            if take and take not in names:
                names.append(take)
    return names


def layer_owners(objects: HeadObjects) -> dict[str, bpy.types.ID | None]:
    return {FACE: objects.mesh.data.shape_keys, HEAD: objects.armature}


def _sequencer_strips(editor):
    return editor.strips if hasattr(editor, "strips") else editor.sequences  # 5.0 renamed sequences → strips


PENDING_SOUND = "lattice_talk pending sound"


def _add_sound(scene: bpy.types.Scene, path: Path, frame_start: int):
    """Add the take's sound under a temporary name; it is the step most likely to fail (unreadable file),
    so it runs before anything else changes."""
    editor = scene.sequence_editor or scene.sequence_editor_create()
    strips = _sequencer_strips(editor)
    busy = {s.channel for s in strips}
    channel = next(c for c in range(1, 129) if c not in busy)
    return strips.new_sound(PENDING_SOUND, str(path), channel, frame_start)


Planner = Callable[[AnimationClip], "tuple[dict[str, list[Curve]], list[str]]"]


def head_planner(objects: HeadObjects) -> Planner:
    """Curves for a LatticeTalk head: expression units by shape-key name, FLAME's five bones."""
    shape_keys = objects.mesh.data.shape_keys
    names = set(shape_keys.key_blocks.keys()) if shape_keys is not None else set()
    return lambda clip: plan_curves(clip, names, objects.armature is not None)


def write_take(clip: AnimationClip, objects: HeadObjects, scene: bpy.types.Scene, take: str,
               start_frame: int | None = None, key_tolerance: float = 0.0, sound_path: str | Path | None = None,
               set_frame_range: bool = True, planner: Planner | None = None) -> TakeResult:
    """Write ``clip`` as take ``take`` (replacing a take of that name) and return what was written.

    The clip is resampled to the scene's frame rate; it starts at ``start_frame`` (default: the clip's).
    ``planner`` turns the resampled clip into curves per layer (default: :func:`head_planner`); any mesh with
    shape keys and an optional armature can carry a take this way. Each action stores the clip's provenance."""
    fps = scene_fps(scene)
    if abs(clip.fps - fps) > 1e-6:
        clip = clip.resample(fps)
    frame_start = clip.start_frame if start_frame is None else int(start_frame)
    frame_end = frame_start + clip.n_frames - 1
    if frame_start < -MAX_FRAME or frame_end > MAX_FRAME:  # checked before anything in the scene changes
        raise LatticeTalkError(f"take '{take}' would span frames {frame_start}–{frame_end}, beyond Blender's "
                               f"±{MAX_FRAME}; start it earlier (start frame) or shorten the clip")
    plan, unmatched = (planner or head_planner(objects))(clip)

    warnings = []
    sound = None
    if sound_path is not None:
        if bpy.app.build_options.audaspace:
            # Absolute: Blender reads a plain relative path against whatever folder it later runs in.
            sound = _add_sound(scene, Path(sound_path).absolute(), frame_start)
        else:
            warnings.append("this Blender build has no audio support (Audaspace); the take has no sound strip")
    remove_take(objects, take, scene)
    if sound is not None:
        sound.name = take
        sound[TAKE_PROP] = take
        scene.sync_mode = "AUDIO_SYNC"  # playback keeps lips on the sound
    owners = layer_owners(objects)
    n_curves = n_keys = 0
    for layer, curves in plan.items():
        if not curves:
            continue
        name = track_name(take, layer)
        layer_action = _LayerAction(name, take, layer, clip.provenance)
        keep = reduce_keys_batch(np.stack([c.values for c in curves]), key_tolerance)
        for curve, curve_keep in zip(curves, keep):
            n_keys += _write_fcurve(layer_action.new_fcurve(curve), curve.values, np.flatnonzero(curve_keep),
                                    frame_start, linear=key_tolerance > 0)
        n_curves += len(curves)
        owner = owners[layer]
        anim = owner.animation_data or owner.animation_data_create()
        track = anim.nla_tracks.new()
        track.name = name
        strip = track.strips.new(name, frame_start, layer_action.action)
        strip.extrapolation = "NOTHING"  # outside the take, lower tracks and the rest pose show
    if set_frame_range:
        scene.frame_start, scene.frame_end = frame_start, frame_end
    return TakeResult(take, frame_start, frame_end, n_curves, n_keys, unmatched, warnings)
