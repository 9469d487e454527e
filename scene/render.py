"""Preview renders of a head: a front camera, soft lights and a skin material, Cycles on the CPU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

SKIN_RGBA = (0.8, 0.6, 0.5, 1.0)
EYE_RGBA = (0.9, 0.9, 0.88, 1.0)
TEETH_RGBA, TONGUE_RGBA = (0.9, 0.88, 0.8, 1.0), (0.6, 0.25, 0.25, 1.0)
PUPIL_RGBA = (0.01, 0.01, 0.012, 1.0)
SCLERA_RGBA = (0.85, 0.85, 0.82, 1.0)
IRIS_COLOURS = ((0.18, 0.09, 0.04), (0.08, 0.14, 0.22), (0.14, 0.12, 0.05))
CAMERA_NAME = "LatticeTalk Camera"


@dataclass
class FrontView:
    """An orthographic front camera framing ``centre`` (world, metres) with ``size`` metres across."""

    centre: tuple[float, float, float]
    size: float
    resolution: int

    def pixel_to_world_xz(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised image coordinates (0..1, v down) → world X and Z on the image plane."""
        x = self.centre[0] + (u - 0.5) * self.size
        z = self.centre[2] - (v - 0.5) * self.size
        return x, z


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


def assign_head_materials(obj: bpy.types.Object, head) -> None:
    """Skin on the head's face mesh, its eye, teeth and tongue helpers hidden behind the head's parts (eyeballs with
    iris and pupil, teeth, tongue, neck cap: scene.parts), which a head from an older scene gets here; the
    materials colour Cycles and EEVEE (Principled) and Workbench (viewport colour) alike."""
    from .parts import add_head_parts, assign_face_materials, head_part_objects

    arm = obj.parent if obj.parent is not None and obj.parent.type == "ARMATURE" else None
    if arm is not None and not head_part_objects(arm):
        add_head_parts(obj, arm, head, obj.users_collection[0])
    else:
        assign_face_materials(obj, head)


def setup_front_render(scene: bpy.types.Scene, view: FrontView, samples: int = 16, denoise: bool = False) -> None:
    """Camera, three-point lights and Cycles settings for a deterministic front render."""
    cam_data = bpy.data.cameras.get(CAMERA_NAME) or bpy.data.cameras.new(CAMERA_NAME)
    cam_data.type = "ORTHO"
    cam_data.ortho_scale = view.size
    cam = bpy.data.objects.get(CAMERA_NAME) or bpy.data.objects.new(CAMERA_NAME, cam_data)
    if cam.name not in scene.collection.objects:
        scene.collection.objects.link(cam)
    cx, cy, cz = view.centre
    cam.location = (cx, cy - 1.0, cz)
    cam.rotation_euler = (np.pi / 2, 0.0, 0.0)  # looks along +Y, at the face
    scene.camera = cam
    for name, loc, energy in (("Key", (0.6, -1.0, 0.6), 40.0), ("Fill", (-0.8, -0.8, 0.2), 15.0), ("Rim", (0.0, 1.0, 0.8), 20.0)):
        light_name = f"LatticeTalk {name}"
        if bpy.data.objects.get(light_name):
            continue
        light = bpy.data.lights.new(light_name, "AREA")
        light.energy = energy
        light.size = 0.8
        obj = bpy.data.objects.new(light_name, light)
        obj.location = (cx + loc[0], cy + loc[1], cz + loc[2])
        direction = np.array(view.centre) - np.array(obj.location)
        obj.rotation_euler = direction_to_euler(direction)
        scene.collection.objects.link(obj)
    world = scene.world or bpy.data.worlds.new("LatticeTalk World")
    scene.world = world
    if bpy.app.version < (5, 0, 0):
        world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.05, 0.05, 0.06, 1.0)
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = denoise
    scene.cycles.seed = 0
    scene.render.resolution_x = scene.render.resolution_y = view.resolution
    scene.render.resolution_percentage = 100
    if hasattr(scene.render.image_settings, "media_type"):  # Blender 5.0: a video output refuses image formats
        scene.render.image_settings.media_type = "IMAGE"
    scene.render.image_settings.file_format = "PNG"
    scene.render.film_transparent = False


def direction_to_euler(direction: np.ndarray) -> tuple[float, float, float]:
    """Euler rotation that points an object's -Z (lights, cameras) along ``direction``."""
    from mathutils import Vector

    return tuple(Vector(direction.tolist()).to_track_quat("-Z", "Y").to_euler())


def render_still(scene: bpy.types.Scene, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True, scene=scene.name)
    return path
