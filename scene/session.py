"""Whole-scene steps for the CLI and batch jobs: a fresh scene with a head, open/save .blend, preview video."""

from __future__ import annotations

import os
from pathlib import Path

import bpy

from ..core.errors import LatticeTalkError
from ..core.head_model import HeadModel
from ..core.heads import DEFAULT_HEAD
from .head_builder import HEAD_ID_PROP, HeadObjects, build_head, find_head, scene_head
from .preview import front_view
from .render import assign_materials, setup_front_render

PREVIEW_RESOLUTION = 384


def new_head_scene(head: HeadModel, source: str, fps: float) -> HeadObjects:
    """Empty the session and add one head: ``head``, loaded from ``source`` (``"default"`` or a head file)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = _fps_pair(fps)
    return build_head(head, source=source if source == DEFAULT_HEAD else str(Path(source).resolve()))


def open_scene_head(blend: Path) -> HeadObjects:
    """Open a .blend and return its one LatticeTalk head."""
    if not blend.is_file():
        raise LatticeTalkError(f"{blend}: scene file not found")
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    heads = [obj for obj in bpy.context.scene.objects if HEAD_ID_PROP in obj]
    if len(heads) != 1:
        raise LatticeTalkError(f"{blend}: expected one LatticeTalk head in the scene, found {len(heads)}; add one with Add Head")
    return find_head(heads[0])


def save_blend(path: Path) -> Path:
    """Save the session atomically: a failed save never leaves half a file over an earlier one."""
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.blend")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp), copy=True)
    os.replace(tmp, path)
    return path


def render_preview(objects: HeadObjects, out: Path, resolution: int = PREVIEW_RESOLUTION) -> Path:
    """Workbench front-view video of the scene's frame range (with the sound strip when present)."""
    scene = bpy.context.scene
    head = scene_head(objects)
    setup_front_render(scene, front_view(head, resolution))
    assign_materials(objects.mesh)
    scene.render.engine = "BLENDER_WORKBENCH"  # seconds per second of animation, headless
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = scene.render.image_settings
    if out.suffix.lower() in (".mp4", ".mkv", ".mov") and bpy.app.build_options.codec_ffmpeg:
        if hasattr(settings, "media_type"):  # Blender 5.0 splits images and video
            settings.media_type = "VIDEO"
        settings.file_format = "FFMPEG"
        scene.render.ffmpeg.format = "MPEG4"
        scene.render.ffmpeg.codec = "H264"
        scene.render.ffmpeg.audio_codec = "AAC" if bpy.app.build_options.audaspace else "NONE"
        scene.render.filepath = str(out)
    else:  # numbered PNG frames next to the requested name
        settings.file_format = "PNG"
        scene.render.filepath = str(out.with_suffix("")) + "_"
    bpy.ops.render.render(animation=True, scene=scene.name)
    return out


def _fps_pair(fps: float) -> tuple[int, float]:
    """Blender stores fps as an integer and a base: 29.97 → (30, 1.001)."""
    rounded = round(fps)
    return rounded, rounded / fps if abs(rounded - fps) > 1e-6 else 1.0
