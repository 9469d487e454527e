"""Whole-scene steps for the CLI and batch jobs: a fresh scene with a head, open/save .blend, preview video."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import bpy

from ..core.errors import LatticeTalkError
from ..core.head_model import HeadModel
from ..core.heads import DEFAULT_HEAD
from ..core.rerun import RUN_KEY
from ..core.validate import input_file
from .head_builder import HEAD_ID_PROP, HeadObjects, build_head, find_head, scene_head
from .preview import front_view
from .parts import assign_head_materials
from .render import setup_front_render

PREVIEW_RESOLUTION = 384
# Workbench's default 8 anti-aliasing samples cost ~6× the render time at 384² on a 2-core CPU (4 vs 26 fps,
# `bench scene`); H.264 softens the edges anyway.
PREVIEW_ANTIALIASING = "OFF"


def new_head_scene(head: HeadModel, source: str, fps: float) -> HeadObjects:
    """Empty the session and add one head: ``head``, loaded from ``source`` (``"default"`` or a head file)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = _fps_pair(fps)
    return build_head(head, source=source if source == DEFAULT_HEAD else str(Path(source).resolve()))


def open_blend(blend: Path) -> None:
    """Open the user's .blend; a path that is no .blend Blender can read is one clear error."""
    input_file(blend, "scene (.blend)", "give a .blend saved by Blender")
    try:
        bpy.ops.wm.open_mainfile(filepath=str(blend))
    except RuntimeError as exc:  # Blender's report: not a .blend, damaged, from a newer Blender, …
        raise LatticeTalkError(f"{blend}: Blender cannot open it ({str(exc).strip()}); give a .blend saved by Blender "
                               "4.2 or later") from exc


def open_scene_head(blend: Path) -> HeadObjects:
    """Open a .blend and return its one LatticeTalk head."""
    open_blend(blend)
    heads = [obj for obj in bpy.context.scene.objects if HEAD_ID_PROP in obj]
    if len(heads) != 1:
        raise LatticeTalkError(f"{blend}: expected one LatticeTalk head in the scene, found {len(heads)}; add one with Add Head")
    return find_head(heads[0])


def save_blend(path: Path) -> Path:
    """Save the session atomically: a failed save never leaves half a file over an earlier one."""
    path = Path(path).resolve()
    tmp = path.with_name(f".{path.stem}.tmp.blend")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=str(tmp), copy=True)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # RuntimeError: Blender's own report of a failed write (disk full, …)
        tmp.unlink(missing_ok=True)
        raise LatticeTalkError(f"{path}: cannot save the .blend ({str(exc).strip()}); check the folder is writable and "
                               "has space") from exc
    return path


def record_run(run: dict) -> None:
    """Keep the run that made this scene on it (core.rerun), for a later ``generate`` to compare with."""
    bpy.context.scene[RUN_KEY] = json.dumps(run)


def recorded_run(blend: Path) -> dict | None:
    """Open ``blend`` and return the run it records (None: it records none). A file Blender cannot read raises
    RuntimeError."""
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    text = bpy.context.scene.get(RUN_KEY)
    return json.loads(text) if isinstance(text, str) else None


def setup_preview(objects: HeadObjects, out: Path, resolution: int = PREVIEW_RESOLUTION) -> None:
    """The preview's camera framing the head, lights, materials and Workbench settings, writing the scene's
    frame range to ``out`` (an .mp4/.mkv/.mov video with the sound strip, otherwise numbered PNG frames).
    Saved with a .blend, they make F12 render what the preview showed."""
    scene = bpy.context.scene
    head = scene_head(objects)
    setup_front_render(scene, front_view(head, resolution))
    assign_head_materials(objects.mesh, head)
    scene.render.engine = "BLENDER_WORKBENCH"  # seconds per second of animation, headless
    scene.display.render_aa = PREVIEW_ANTIALIASING
    out = Path(out).resolve()
    settings = scene.render.image_settings
    if out.suffix.lower() in (".mp4", ".mkv", ".mov") and bpy.app.build_options.codec_ffmpeg:
        if hasattr(settings, "media_type"):  # Blender 5.0 splits images and video
            settings.media_type = "VIDEO"
        settings.file_format = "FFMPEG"
        scene.render.ffmpeg.format = "MPEG4"
        scene.render.ffmpeg.codec = "H264"
        scene.render.ffmpeg.audio_codec = "AAC" if bpy.app.build_options.audaspace else "NONE"
        scene.render.filepath = str(out)
    else:  # numbered PNG frames next to the requested name (setup_front_render chose PNG)
        scene.render.filepath = str(out.with_suffix("")) + "_"


def render_preview(objects: HeadObjects, out: Path, resolution: int = PREVIEW_RESOLUTION,
                   progress: Callable[[int, int], None] | None = None) -> Path:
    """Workbench front-view video of the scene's frame range (with the sound strip when present), as set up by
    :func:`setup_preview`; ``progress(frames done, frames)`` after each frame."""
    scene = bpy.context.scene
    setup_preview(objects, out, resolution)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = scene.frame_end - scene.frame_start + 1

    def frame_done(rendered_scene, _depsgraph=None) -> None:
        progress(rendered_scene.frame_current - scene.frame_start + 1, frames)

    if progress is not None:
        bpy.app.handlers.render_post.append(frame_done)
    try:
        bpy.ops.render.render(animation=True, scene=scene.name)
    finally:
        if progress is not None:
            bpy.app.handlers.render_post.remove(frame_done)
    return out


def _fps_pair(fps: float) -> tuple[int, float]:
    """Blender stores fps as an integer and a base: 29.97 → (30, 1.001)."""
    rounded = round(fps)
    return rounded, rounded / fps if abs(rounded - fps) > 1e-6 else 1.0
