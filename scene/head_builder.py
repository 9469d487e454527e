"""Build a FLAME-schema head in Blender: mesh + expression shape keys + five-bone armature.

The mesh keeps the head's own frame (FLAME: metres, +Y up, face along +Z) in local coordinates and the
object carries the Y-up → Z-up turn, so vertex positions, shape-key offsets and bone rest positions are
the core model's numbers unchanged (as Blender's OBJ importer does for MakeHuman meshes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import bpy
import numpy as np

from ..core.head_model import JOINT_NAMES, HeadModel, LandmarkEmbedding
from ..core.heads import DEFAULT_HEAD
from .mesh_objects import PART_PROP, new_mesh, skin_to_rig

Y_UP_TO_Z_UP = (math.pi / 2, 0.0, 0.0)  # object rotation_euler
BONE_LENGTH = 0.03  # metres; bones point along the head's +Y so their rest roll is simple
HEAD_ID_PROP = "lattice_talk_head_id"
HEAD_SOURCE_PROP = "lattice_talk_head_source"  # what core.heads.create() needs to load this head again
HEAD_BETAS_PROP = "lattice_talk_betas"  # identity shape baked into the rest mesh
# A FLAME head's MediaPipe landmark embedding, stored as data so that a .blend moved elsewhere (or a machine
# without the embedding file) still carries takes onto the head; the default head's ships inside its file.
HEAD_LANDMARKS_PROP = "lattice_talk_landmarks"


@dataclass
class HeadObjects:
    mesh: bpy.types.Object
    armature: bpy.types.Object | None


def _add_shape_keys(obj: bpy.types.Object, head: HeadModel, rest: np.ndarray, betas: np.ndarray | None) -> None:
    obj.shape_key_add(name="Basis", from_mix=False)
    lo, hi = head.expression_range
    for k, name in enumerate(head.expression_names):
        key = obj.shape_key_add(name=name, from_mix=False)
        key.slider_min, key.slider_max = lo, hi
        key.value = 0.0  # shape_key_add leaves new keys at 1.0
        key.data.foreach_set("co", (rest + head.exprdirs[:, :, k]).astype(np.float32).ravel())
    obj.data.shape_keys.name = f"{obj.name} expressions"
    obj.data.shape_keys.use_relative = True


def _add_armature(obj: bpy.types.Object, head: HeadModel, joints: np.ndarray, collection: bpy.types.Collection) -> bpy.types.Object:
    arm_data = bpy.data.armatures.new(f"{obj.name} rig")
    arm = bpy.data.objects.new(f"{obj.name} rig", arm_data)
    collection.objects.link(arm)
    arm.rotation_euler = Y_UP_TO_Z_UP
    # Edit bones need edit mode on an active object; the context override keeps this usable headless.
    view_layer = bpy.context.view_layer
    previous_active = view_layer.objects.active
    view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    for j, name in enumerate(JOINT_NAMES):
        bone = arm_data.edit_bones.new(name)
        bone.head = joints[j].tolist()
        bone.tail = (joints[j] + np.array([0.0, BONE_LENGTH, 0.0])).tolist()
        bone.roll = 0.0
        if head.parents[j] >= 0:
            bone.parent = arm_data.edit_bones[JOINT_NAMES[head.parents[j]]]
    bpy.ops.object.mode_set(mode="OBJECT")
    view_layer.objects.active = previous_active
    for pose_bone in arm.pose.bones:
        pose_bone.rotation_mode = "XYZ"  # Euler curves are what animators edit by hand

    skin_to_rig(obj, arm, head.lbs_weights)
    return arm


# Entries of R - I as polynomials in the bone's local rotation quaternion (w, x, y, z): Blender evaluates
# these as "simple expressions", natively, so the correctives work with Python auto-run disabled.
_R_MINUS_I = (
    ("-2*(y*y+z*z)", "2*(x*y-w*z)", "2*(x*z+w*y)"),
    ("2*(x*y+w*z)", "-2*(x*x+z*z)", "2*(y*z-w*x)"),
    ("2*(x*z-w*y)", "2*(y*z+w*x)", "-2*(x*x+y*y)"),
)
CORRECTIVE_PREFIX = "corrective"


def _add_pose_correctives(obj: bpy.types.Object, arm: bpy.types.Object, head: HeadModel, rest: np.ndarray) -> None:
    """One shape key per non-zero pose-corrective feature, driven by its bone's rotation (FLAME's posedirs)."""
    used = np.flatnonzero(np.abs(head.posedirs).max(axis=(0, 1)) > 0)
    for feature in used:
        joint, entry = 1 + feature // 9, feature % 9
        row, col = divmod(entry, 3)
        bone = JOINT_NAMES[joint]
        key = obj.shape_key_add(name=f"{CORRECTIVE_PREFIX}.{bone}.{row}{col}", from_mix=False)
        key.slider_min, key.slider_max = -2.0, 2.0  # entries of R - I lie in [-2, 2]
        key.data.foreach_set("co", (rest + head.posedirs[:, :, feature]).astype(np.float32).ravel())
        driver = key.driver_add("value").driver
        driver.type = "SCRIPTED"
        for component in "wxyz":
            var = driver.variables.new()
            var.name = component
            var.type = "TRANSFORMS"
            target = var.targets[0]
            target.id = arm
            target.bone_target = bone
            target.transform_type = f"ROT_{component.upper()}"
            target.rotation_mode = "QUATERNION"
            target.transform_space = "LOCAL_SPACE"
        driver.expression = _R_MINUS_I[row][col]


def build_head(head: HeadModel, name: str = "LatticeTalk Head", betas: np.ndarray | None = None,
               collection: bpy.types.Collection | None = None, with_armature: bool = True,
               source: str = "default", with_parts: bool = True) -> HeadObjects:
    """Create the head's objects in ``collection`` (default: the scene's) and return them.

    ``betas`` bakes an identity shape into the rest mesh and joints (as FLAME's shape parameters). With the
    armature and ``with_parts``, the eyeballs, teeth, tongue and neck cap go on the rig (scene.parts); the video
    corpus leaves them out, its renders and the video model trained on them show the face mesh alone."""
    collection = collection or bpy.context.scene.collection
    betas = np.zeros(head.n_shape, np.float32) if betas is None else np.asarray(betas, np.float32)
    rest = head.v_template + np.einsum("vcs,s->vc", head.shapedirs, betas)
    joints = head.j_regressor @ rest
    mesh = new_mesh(name, rest, head.faces)
    obj = bpy.data.objects.new(name, mesh)
    collection.objects.link(obj)
    obj.rotation_euler = Y_UP_TO_Z_UP
    obj[HEAD_ID_PROP] = head.head_id
    obj[HEAD_SOURCE_PROP] = source
    obj[HEAD_BETAS_PROP] = betas.tolist()
    if source != DEFAULT_HEAD and head.landmarks is not None:
        obj[HEAD_LANDMARKS_PROP] = {"face_index": head.landmarks.face_index.tolist(),
                                    "barycentric": head.landmarks.barycentric.ravel().tolist(),
                                    "mediapipe_index": head.landmarks.mediapipe_index.tolist()}
    _add_shape_keys(obj, head, rest, betas)
    arm = _add_armature(obj, head, joints, collection) if with_armature else None
    if arm is not None:
        _add_pose_correctives(obj, arm, head, rest)
        if with_parts:
            from .parts import add_head_parts  # it builds on this module

            add_head_parts(obj, arm, head, collection)
    return HeadObjects(mesh=obj, armature=arm)


def scene_head(objects: HeadObjects) -> HeadModel:
    """The head model a scene head (or a character: the default head) was built from, with the landmark
    embedding stored on it."""
    from ..core.heads import create

    stored = objects.mesh.get(HEAD_LANDMARKS_PROP)
    landmarks = None if stored is None else LandmarkEmbedding(
        face_index=np.array(stored["face_index"], np.int64),
        barycentric=np.array(stored["barycentric"], np.float32).reshape(-1, 3),
        mediapipe_index=np.array(stored["mediapipe_index"], np.int64))
    return create(objects.mesh.get(HEAD_SOURCE_PROP, DEFAULT_HEAD), landmark_embedding=landmarks)


def find_head(obj: bpy.types.Object | None) -> HeadObjects | None:
    """The LatticeTalk head an object belongs to: its mesh (tagged with the head id) or the rig above it."""
    if obj is None:
        return None
    if PART_PROP in obj and obj.parent is not None:  # an eyeball, the teeth, …: the head on the same rig
        obj = obj.parent
    if obj.type == "ARMATURE":
        mesh = next((child for child in obj.children if HEAD_ID_PROP in child), None)
    else:
        mesh = obj if HEAD_ID_PROP in obj else None
    if mesh is None:
        return None
    rig = mesh.parent if mesh.parent is not None and mesh.parent.type == "ARMATURE" else None
    return HeadObjects(mesh=mesh, armature=rig)
