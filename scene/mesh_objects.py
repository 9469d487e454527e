"""Blender objects from arrays: a triangle mesh, and skinning one to the head's rig the way core LBS deforms it.
The building blocks the head and its parts share."""

from __future__ import annotations

import bpy
import numpy as np

from ..core.head_model import JOINT_NAMES

PART_PROP = "lattice_talk_part"  # on each of the head's part objects (scene.parts): its name in core.head_parts


def new_mesh(name: str, vertices: np.ndarray, faces: np.ndarray) -> bpy.types.Mesh:
    """A smooth-shaded triangle mesh, one polygon per row of ``faces`` in order."""
    mesh = bpy.data.meshes.new(name)
    n_faces = len(faces)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", vertices.astype(np.float32).ravel())
    mesh.loops.add(n_faces * 3)
    mesh.loops.foreach_set("vertex_index", faces.astype(np.int32).ravel())
    mesh.polygons.add(n_faces)
    mesh.polygons.foreach_set("loop_start", np.arange(0, n_faces * 3, 3, dtype=np.int32))
    mesh.polygons.foreach_set("loop_total", np.full(n_faces, 3, dtype=np.int32))
    mesh.polygons.foreach_set("use_smooth", np.ones(n_faces, dtype=bool))
    mesh.update(calc_edges=True)
    mesh.validate()
    return mesh


def skin_to_rig(obj: bpy.types.Object, arm: bpy.types.Object, lbs_weights: np.ndarray) -> None:
    """One vertex group per joint from ``lbs_weights`` (V, J) and an Armature modifier: ``obj`` deforms as core LBS."""
    for j, name in enumerate(JOINT_NAMES):
        group = obj.vertex_groups.new(name=name)
        weights = lbs_weights[:, j]
        for value in np.unique(weights[weights > 0]):
            group.add(np.flatnonzero(weights == value).tolist(), float(value), "REPLACE")
    modifier = obj.modifiers.new("LatticeTalk rig", "ARMATURE")
    modifier.object = arm
    modifier.use_vertex_groups = True
    modifier.use_deform_preserve_volume = False  # LBS, as in the core model
    obj.parent = arm
    obj.rotation_euler = (0.0, 0.0, 0.0)  # inherits the turn from the armature
