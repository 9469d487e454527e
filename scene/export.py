"""Hand a take to other tools: glTF 2.0 and FBX through Blender's own exporters, shape-key animation kept.

The exporters sample what the scene shows, so for the export the take is made the only playing one (other takes'
NLA tracks muted) and the frame range is the take's; everything is put back afterwards, whatever happens. The
take's provenance (models, input hashes, settings, seed) rides along where the format has room: glTF scene
``extras`` and an FBX custom property on the mesh, both named ``lattice_talk_provenance``.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import bpy

from ..core.errors import LatticeTalkError
from .head_builder import HeadObjects
from .take_writer import PROVENANCE_PROP, layer_owners, take_tracks, list_takes

SCENE_FORMATS = {"gltf": (".glb", ".gltf"), "fbx": (".fbx",)}
_EXPORTER_ADDONS = {"gltf": "io_scene_gltf2", "fbx": "io_scene_fbx"}


def take_provenance(objects: HeadObjects, take: str) -> dict:
    """The provenance stored on the take's actions (``{}`` for takes written before it was recorded)."""
    for track in take_tracks(objects, take):
        for strip in track.strips:
            if strip.action is not None and PROVENANCE_PROP in strip.action:
                return json.loads(strip.action[PROVENANCE_PROP])
    return {}


def check_export(objects: HeadObjects, take: str, path: Path, fmt: str) -> None:
    """Every reason an export would fail, checked before the scene is touched."""
    if fmt not in SCENE_FORMATS:
        raise LatticeTalkError(f"unknown export format {fmt!r}; use one of {', '.join(SCENE_FORMATS)}")
    if path.suffix.lower() not in SCENE_FORMATS[fmt]:
        raise LatticeTalkError(f"{path}: a {fmt} export needs a file name ending in {' or '.join(SCENE_FORMATS[fmt])}")
    if take not in list_takes(objects):
        known = ", ".join(list_takes(objects)) or "none"
        raise LatticeTalkError(f"{objects.mesh.name} has no take named {take!r} (takes: {known}); pick one of them")
    if not path.parent.is_dir():
        raise LatticeTalkError(f"{path.parent}: folder not found; create it or choose another file name")


@contextmanager
def _only_take_playing(objects: HeadObjects, take: str, scene: bpy.types.Scene):
    """Mute every other take's tracks, select only the take's objects and set the take's frame range; restore all."""
    tracks = [t for owner in layer_owners(objects).values() if owner is not None and owner.animation_data
              for t in owner.animation_data.nla_tracks]
    mutes = {t: t.mute for t in tracks}
    ours = set(take_tracks(objects, take))
    strips = [s for t in ours for s in t.strips]
    view_layer = bpy.context.view_layer
    selection = [o for o in view_layer.objects if o.select_get()]
    active = view_layer.objects.active
    frame_range = (scene.frame_start, scene.frame_end, scene.frame_current)
    try:
        for t in tracks:
            t.mute = t not in ours
        for o in selection:
            o.select_set(False)
        for o in filter(None, (objects.mesh, objects.armature)):
            o.select_set(True)
        view_layer.objects.active = objects.mesh
        scene.frame_start = int(min(s.frame_start for s in strips))
        scene.frame_end = int(max(s.frame_end for s in strips))
        yield
    finally:
        for t, mute in mutes.items():
            t.mute = mute
        for o in view_layer.objects:
            o.select_set(o in selection)
        view_layer.objects.active = active
        scene.frame_start, scene.frame_end, scene.frame_current = frame_range


def export_take(objects: HeadObjects, take: str, path: str | Path, fmt: str, scene: bpy.types.Scene | None = None) -> Path:
    """Write the head or character with take ``take`` as glTF 2.0 (``.glb``/``.gltf``) or FBX, animation baked
    over the take's frames (shape keys as morph targets / blend shapes, bones as skeleton animation)."""
    import addon_utils

    scene = scene or bpy.context.scene
    path = Path(path)
    check_export(objects, take, path, fmt)
    addon_utils.enable(_EXPORTER_ADDONS[fmt], default_set=True)  # the bpy wheel ships them disabled
    provenance = json.dumps(take_provenance(objects, take), sort_keys=True)
    holder = scene if fmt == "gltf" else objects.mesh  # where each exporter picks custom properties up
    with _only_take_playing(objects, take, scene):
        holder[PROVENANCE_PROP] = provenance
        try:
            if fmt == "gltf":
                result = bpy.ops.export_scene.gltf(
                    filepath=str(path), export_format="GLB" if path.suffix.lower() == ".glb" else "GLTF_SEPARATE",
                    use_selection=True, export_extras=True, export_animations=True, export_animation_mode="SCENE",
                    export_morph=True, export_morph_animation=True, export_skins=True, export_force_sampling=True)
            else:
                result = bpy.ops.export_scene.fbx(
                    filepath=str(path), use_selection=True, use_custom_props=True, add_leaf_bones=False,
                    bake_anim=True, bake_anim_use_all_actions=False, bake_anim_use_nla_strips=False,
                    bake_anim_force_startend_keying=True, bake_anim_simplify_factor=0.0)
        finally:
            del holder[PROVENANCE_PROP]
    if result != {"FINISHED"} or not path.is_file():
        raise LatticeTalkError(f"{path}: Blender's {fmt} exporter did not write the file; see the console for its message")
    return path
