"""Takes on the user's own character: any mesh with ARKit-style shape keys, optionally with its armature.

A character is a :class:`HeadObjects` whose mesh carries no LatticeTalk head id. Its take is written by
``take_writer.write_take`` with :func:`character_planner`, so actions, NLA tracks, sound and replacement work as
on the default head. The mapping (unit → shape key, scale, ignore; jaw and head bones) lives on the mesh object
(``Object.lattice_talk_character``, see ``props.py``); an empty mapping means "match by name".
"""

from __future__ import annotations

import os
from pathlib import Path

import bpy
import numpy as np

from ..core.character_map import PRESETS_ENV, CharacterMap, ChannelMap, auto_map, character_curves, user_presets_dir
from .head_builder import HEAD_ID_PROP, HeadObjects, find_head, scene_head
from .mesh_objects import PART_PROP
from .take_writer import FACE, HEAD, Curve, Planner, TakeResult, write_take

ROTATION_PATHS = {"QUATERNION": "rotation_quaternion", "XYZ": "rotation_euler"}
_ROOT_PACKAGE = (__package__ or "").rpartition(".")[0]  # "lattice_talk" or "bl_ext.<repo>.lattice_talk"


def presets_folder() -> Path:
    """Where mapping presets live: ``$LATTICE_TALK_PRESETS``, else the extension's user folder (kept across
    updates), else core's default when the add-on is not loaded as an extension."""
    if not os.environ.get(PRESETS_ENV):
        try:
            path = bpy.utils.extension_path_user(_ROOT_PACKAGE, path="character_maps", create=True)
        except ValueError:  # "The package does not name an extension"
            path = ""
        if path:
            return Path(path)
    return user_presets_dir()


def find_character(obj: bpy.types.Object | None) -> HeadObjects | None:
    """The character ``obj`` belongs to: a mesh with shape keys that is no LatticeTalk head (its armature: the one
    its mapping names, else its parent or Armature modifier's), or such a mesh under a selected armature."""
    if obj is None:
        return None
    if obj.type == "ARMATURE":
        obj = next((c for c in obj.children if _is_character_mesh(c)), None)
    if obj is None or not _is_character_mesh(obj):
        return None
    return HeadObjects(mesh=obj, armature=character_armature(obj))


def _is_character_mesh(obj: bpy.types.Object) -> bool:
    # A head's eyeball or teeth has shape keys too, but it follows its head's keys, not a take.
    return obj.type == "MESH" and HEAD_ID_PROP not in obj and PART_PROP not in obj and obj.data.shape_keys is not None


def character_armature(mesh: bpy.types.Object) -> bpy.types.Object | None:
    chosen = mesh.lattice_talk_character.armature if hasattr(mesh, "lattice_talk_character") else None
    if chosen is not None:
        return chosen
    if mesh.parent is not None and mesh.parent.type == "ARMATURE":
        return mesh.parent
    return next((m.object for m in mesh.modifiers if m.type == "ARMATURE" and m.object is not None), None)


def shape_key_names(mesh: bpy.types.Object) -> list[str]:
    """The mesh's shape keys a take may drive: all but the reference (Basis) key."""
    keys = mesh.data.shape_keys
    return [k.name for k in keys.key_blocks if k != keys.reference_key] if keys is not None else []


def bone_names(armature: bpy.types.Object | None) -> list[str]:
    return [b.name for b in armature.data.bones] if armature is not None else []


def character_map(objects: HeadObjects) -> CharacterMap:
    """The mapping stored on the mesh, or a fresh match by name when none is stored."""
    settings = objects.mesh.lattice_talk_character if hasattr(objects.mesh, "lattice_talk_character") else None
    if settings is None or not len(settings.channels):
        return auto_map(shape_key_names(objects.mesh), bone_names(objects.armature))
    stored = {item.channel: item for item in settings.channels}
    mapping = CharacterMap(jaw_bone=settings.jaw_bone, head_bone=settings.head_bone)
    mapping.channels = [ChannelMap(c.channel, stored[c.channel].target, stored[c.channel].scale, stored[c.channel].ignore)
                        if c.channel in stored else c for c in mapping.channels]
    return mapping


def store_character_map(mesh: bpy.types.Object, mapping: CharacterMap) -> None:
    """Write ``mapping`` into the mesh's mapping properties (what the sidebar's channel list shows)."""
    settings = mesh.lattice_talk_character
    settings.channels.clear()
    for c in mapping.channels:
        item = settings.channels.add()
        item.channel, item.target, item.scale, item.ignore = c.channel, c.target, c.scale, c.ignore
    settings.jaw_bone, settings.head_bone = mapping.jaw_bone, mapping.head_bone


def character_planner(objects: HeadObjects, mapping: CharacterMap) -> Planner:
    """A ``write_take`` planner for a character; checks ``mapping`` against the mesh and armature first, so a
    bad map fails before anything is written."""
    mapping.validate(shape_key_names(objects.mesh), bone_names(objects.armature), where=objects.mesh.name)
    bone_rest = {}
    for bone in filter(None, (mapping.jaw_bone, mapping.head_bone)):
        world = objects.armature.matrix_world.to_3x3() @ objects.armature.data.bones[bone].matrix_local.to_3x3()
        bone_rest[bone] = (np.array(world), objects.armature.pose.bones[bone].rotation_mode)
    escape = bpy.utils.escape_identifier

    def plan(clip):
        curves = character_curves(clip, mapping, bone_rest)
        face = [Curve(f'key_blocks["{escape(name)}"].value', 0, values, "Expressions")
                for name, values in curves.shape_keys.items()]
        head = [Curve(f'pose.bones["{escape(bone)}"].{ROTATION_PATHS[mode]}', i, values[:, i], bone)
                for bone, (mode, values) in curves.bones.items() for i in range(values.shape[1])]
        return {FACE: face, HEAD: head}, curves.unmatched

    return plan


def write_character_take(clip, objects: HeadObjects, scene: bpy.types.Scene, take: str,
                         mapping: CharacterMap | None = None, **kwargs) -> TakeResult:
    """``write_take`` on a character with ``mapping`` (default: the stored one, or a match by name)."""
    planner = character_planner(objects, mapping or character_map(objects))
    return write_take(clip, objects, scene, take, planner=planner, **kwargs)


def find_target(obj: bpy.types.Object | None) -> HeadObjects | None:
    """What a take on ``obj`` animates: a LatticeTalk head, else a character."""
    return find_head(obj) or find_character(obj)


def write_take_on_target(clip, objects: HeadObjects, scene: bpy.types.Scene, take: str, **kwargs) -> TakeResult:
    """The one way a clip becomes a take, whatever the surface (sidebar Generate and Apply Clip, scripts, the
    CLI's generate, apply and export, batches): ``write_take`` on a LatticeTalk head, a clip made for the default
    head converted to it first through the motion space (with the landmark embedding stored on the head), so no
    channel is dropped; :func:`write_character_take` on a character. ``TakeResult.conversion`` says what was
    converted, here or by the pipeline that made the clip."""
    from ..core.head_convert import clip_for_head, conversion_summary

    if HEAD_ID_PROP in objects.mesh:
        clip = clip_for_head(clip, objects.mesh[HEAD_ID_PROP], lambda: scene_head(objects))
        result = write_take(clip, objects, scene, take, **kwargs)
    else:
        result = write_character_take(clip, objects, scene, take, **kwargs)
    result.conversion = conversion_summary(clip)
    return result


def check_take_target(objects: HeadObjects) -> None:
    """Raise now if a take could not be written on ``objects`` (a character's map that does not fit)."""
    if HEAD_ID_PROP not in objects.mesh:
        character_planner(objects, character_map(objects))


def open_scene_target(blend: Path, name: str) -> HeadObjects:
    """Open a .blend and return the head or character that the object ``name`` belongs to."""
    from ..core.errors import LatticeTalkError
    from .session import open_blend

    open_blend(blend)
    target = find_target(bpy.data.objects.get(name))
    if target is None:
        raise LatticeTalkError(f"{blend}: no object {name!r} that is a LatticeTalk head or a mesh with shape keys; "
                               "give the name of your character's mesh")
    return target
