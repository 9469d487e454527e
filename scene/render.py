"""Preview renders of a head: a front camera, soft lights, Cycles on the CPU (materials: scene.materials)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

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
