"""The head's materials: skin, eyes, teeth and tongue colours, shared by the scene head, its parts and the
video corpus's renders."""

from __future__ import annotations

import bpy
import numpy as np

SKIN_RGBA = (0.8, 0.6, 0.5, 1.0)
EYE_RGBA = (0.9, 0.9, 0.88, 1.0)
TEETH_RGBA, TONGUE_RGBA = (0.9, 0.88, 0.8, 1.0), (0.6, 0.25, 0.25, 1.0)
PUPIL_RGBA = (0.01, 0.01, 0.012, 1.0)
SCLERA_RGBA = (0.85, 0.85, 0.82, 1.0)
IRIS_COLOURS = ((0.18, 0.09, 0.04), (0.08, 0.14, 0.22), (0.14, 0.12, 0.05))


def skin_material(name: str = "LatticeTalk Skin", rgba: tuple = SKIN_RGBA) -> bpy.types.Material:
    mat = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    if bpy.app.version < (5, 0, 0):  # node trees are always on from 5.0
        mat.use_nodes = True
    bsdf = mat.node_tree.nodes.get("Principled BSDF")
    bsdf.inputs["Base Color"].default_value = rgba
    bsdf.inputs["Roughness"].default_value = 0.55
    return mat


def assign_materials(obj: bpy.types.Object, eye_vertices: np.ndarray | None = None) -> None:
    """Skin on the head, a light material on the eyeballs (their faces found from ``eye_vertices``)."""
    mesh = obj.data
    mesh.materials.clear()
    mesh.materials.append(skin_material())
    if eye_vertices is None or not len(eye_vertices):
        return
    mesh.materials.append(skin_material("LatticeTalk Eye", EYE_RGBA))
    corners = np.zeros(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", corners)
    starts = np.zeros(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("loop_start", starts)
    is_eye = np.isin(corners[starts], eye_vertices)
    mesh.polygons.foreach_set("material_index", is_eye.astype(np.int32))
