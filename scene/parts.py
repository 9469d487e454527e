"""The head's eyeballs, teeth, tongue and neck cap (core.head_parts) as objects on its rig.

Rigid parts are children of their bone (eyeballs: eye bones, lower teeth and tongue: jaw, upper teeth: the
head's ``neck`` bone), so posing a bone carries them as an animator expects; the neck cap is skinned like the
neck loop it closes. Each part also has a shape key for every face shape key that moves its helper region,
driven by that key's value (a plain driver, no Python), so expression units such as ``jawOpen``, ``eyeLook*``
or ``tongueOut`` and the pose correctives move the parts as they move the helpers. The helper faces inside the
face mesh are hidden (:func:`assign_face_materials`): the face mesh itself, its vertices and order, is untouched.
"""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix

from ..core.head_model import HeadModel
from ..core.head_parts import HELPER_REGIONS, IRIS, PUPIL, SCLERA, SKIN, TEETH, TONGUE, HeadPart, head_parts
from .materials import IRIS_COLOURS, PUPIL_RGBA, SCLERA_RGBA, TEETH_RGBA, TONGUE_RGBA, skin_material
from .mesh_objects import PART_PROP, new_mesh, skin_to_rig

HIDDEN_MATERIAL = "LatticeTalk Hidden"
HELPERS_GROUP = "LatticeTalk helpers"  # the face mesh's helper vertices, and the Mask modifier that drops them
MOVES_M = 1e-7  # a face key whose offsets on a part stay below this (metres) does not move it
# Warmer than the video corpus's skin (materials.SKIN_RGBA), which Blender's AgX view bleaches to grey in Cycles.
FACE_SKIN_RGBA = (0.8, 0.52, 0.4, 1.0)
# Material name → base colour and roughness; the wet sclera and cornea shine, skin and tongue stay soft.
PART_MATERIALS = {
    SKIN: ("LatticeTalk Skin", FACE_SKIN_RGBA, 0.5),
    SCLERA: ("LatticeTalk Sclera", SCLERA_RGBA, 0.15),
    IRIS: ("LatticeTalk Iris", (*IRIS_COLOURS[0], 1.0), 0.15),
    PUPIL: ("LatticeTalk Pupil", PUPIL_RGBA, 0.1),
    TEETH: ("LatticeTalk Teeth", TEETH_RGBA, 0.3),
    TONGUE: ("LatticeTalk Tongue", TONGUE_RGBA, 0.4),
}
SKIN_SUBSURFACE = 0.15, 0.004  # weight, scale (metres): light scattering a few mm deep, softening the shading


def part_material(kind: str) -> bpy.types.Material:
    """The part's Principled material (Cycles, EEVEE) with the same colour as its Workbench viewport colour."""
    name, rgba, roughness = PART_MATERIALS[kind]
    material = skin_material(name, rgba)
    material.node_tree.nodes["Principled BSDF"].inputs["Roughness"].default_value = roughness
    material.diffuse_color, material.roughness = rgba, roughness
    if kind == SKIN:
        bsdf = material.node_tree.nodes["Principled BSDF"]
        bsdf.inputs["Subsurface Weight"].default_value, bsdf.inputs["Subsurface Scale"].default_value = SKIN_SUBSURFACE
    return material


def hidden_material() -> bpy.types.Material:
    """Fully transparent in every engine: alpha 0 in the Principled BSDF (Cycles; EEVEE's default dithered
    transparency) and in the viewport colour (Workbench, checked on 4.2 and 5.0)."""
    material = skin_material(HIDDEN_MATERIAL, (0.0, 0.0, 0.0, 0.0))
    material.node_tree.nodes["Principled BSDF"].inputs["Alpha"].default_value = 0.0
    material.diffuse_color = (0.0, 0.0, 0.0, 0.0)
    return material


def add_head_parts(face: bpy.types.Object, arm: bpy.types.Object, head: HeadModel,
                   collection: bpy.types.Collection) -> dict[str, bpy.types.Object]:
    """Build the parts of ``head`` for the scene head ``face`` on ``arm``, at its rest shape (the Basis key, which
    has the head's identity shape baked in)."""
    keys = face.data.shape_keys.key_blocks
    basis = _key_positions(keys[0])
    names = [key.name for key in keys[1:]]
    offsets = np.stack([_key_positions(keys[name]) - basis for name in names], axis=-1)  # (V, 3, K)
    objects = {}
    for part in head_parts(head, basis):
        mesh = new_mesh(f"{face.name} {part.name}", part.vertices, part.faces)
        for kind in part.materials:
            mesh.materials.append(part_material(kind))
        mesh.polygons.foreach_set("material_index", part.face_material.astype(np.int32))
        obj = bpy.data.objects.new(mesh.name, mesh)
        collection.objects.link(obj)
        obj[PART_PROP] = part.name
        if part.bone is None:
            skin_to_rig(obj, arm, part.weights(head))
        else:
            _parent_to_bone(obj, arm, part.bone)
        _follow_face_keys(obj, face, part, names, part.offsets(offsets))
        objects[part.name] = obj
    assign_face_materials(face, head)
    return objects


def assign_face_materials(face: bpy.types.Object, head: HeadModel) -> None:
    """Skin on the face mesh; its helper faces, shown by the parts, transparent in the viewport and left out of
    renders. Only renders drop them (a Mask modifier), so the evaluated face mesh in the viewport keeps every
    vertex as core LBS has it; in Cycles, a transparent face on a part's faces speckles them."""
    mesh = face.data
    mesh.materials.clear()
    mesh.materials.append(part_material(SKIN))
    mesh.materials.append(hidden_material())
    helpers = [head.regions[name] for name in HELPER_REGIONS if len(head.regions.get(name, ()))]
    hidden = np.isin(head.faces, np.concatenate(helpers)).all(axis=1) if helpers else np.zeros(len(head.faces), bool)
    mesh.polygons.foreach_set("material_index", hidden.astype(np.int32))  # one polygon per head face
    mesh.update()
    if helpers and HELPERS_GROUP not in face.vertex_groups:
        face.vertex_groups.new(name=HELPERS_GROUP).add(np.concatenate(helpers).tolist(), 1.0, "REPLACE")
        mask = face.modifiers.new(HELPERS_GROUP, "MASK")
        mask.vertex_group, mask.invert_vertex_group = HELPERS_GROUP, True
        mask.show_viewport, mask.show_render = False, True


def head_part_objects(arm: bpy.types.Object | None) -> dict[str, bpy.types.Object]:
    """The parts on a head's rig, by name."""
    return {} if arm is None else {child[PART_PROP]: child for child in arm.children if PART_PROP in child}


def _key_positions(key: bpy.types.ShapeKey) -> np.ndarray:
    co = np.empty(len(key.data) * 3, np.float32)
    key.data.foreach_get("co", co)
    return co.reshape(-1, 3).astype(np.float64)


def _parent_to_bone(obj: bpy.types.Object, arm: bpy.types.Object, bone_name: str) -> None:
    """Child of the bone, its rest vertices staying in the head's frame (as the face mesh's under the rig)."""
    obj.parent = arm
    obj.parent_type = "BONE"
    obj.parent_bone = bone_name
    bone = arm.data.bones[bone_name]
    # Blender places a bone's child at the bone's tail; the inverse of the rest bone matrix there cancels it.
    obj.matrix_parent_inverse = (bone.matrix_local @ Matrix.Translation((0.0, bone.length, 0.0))).inverted()


def _follow_face_keys(obj: bpy.types.Object, face: bpy.types.Object, part: HeadPart, names: list[str],
                      offsets: np.ndarray) -> None:
    """A key per face key that moves the part, its value driven by the face key's value."""
    moving = [k for k in range(len(names)) if np.abs(offsets[:, :, k]).max() > MOVES_M]
    if not moving:
        return
    obj.shape_key_add(name="Basis", from_mix=False)
    face_keys = face.data.shape_keys
    for k in moving:
        source = face_keys.key_blocks[names[k]]
        key = obj.shape_key_add(name=names[k], from_mix=False)
        key.slider_min, key.slider_max = source.slider_min, source.slider_max  # a driven value is clamped to them
        key.data.foreach_set("co", (part.vertices + offsets[:, :, k]).astype(np.float32).ravel())
        driver = key.driver_add("value").driver
        driver.type = "AVERAGE"  # of one variable: the face key's value, evaluated natively
        var = driver.variables.new()
        var.type = "SINGLE_PROP"
        var.targets[0].id_type = "KEY"
        var.targets[0].id = face_keys
        var.targets[0].data_path = f'key_blocks["{names[k]}"].value'


def assign_head_materials(obj: bpy.types.Object, head) -> None:
    """Skin on the head's face mesh, its eye, teeth and tongue helpers hidden behind the head's parts (eyeballs with
    iris and pupil, teeth, tongue, neck cap: scene.parts), which a head from an older scene gets here; the
    materials colour Cycles and EEVEE (Principled) and Workbench (viewport colour) alike."""
    arm = obj.parent if obj.parent is not None and obj.parent.type == "ARMATURE" else None
    if arm is not None and not head_part_objects(arm):
        add_head_parts(obj, arm, head, obj.users_collection[0])
    else:
        assign_face_materials(obj, head)
