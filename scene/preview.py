"""A labelled-by-order contact sheet of a head's expressions, rendered in Cycles (CPU)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import bpy
import numpy as np

from ..core.clip import AnimationClip
from ..core.head_model import HeadModel
from .head_builder import HeadObjects, build_head
from .parts import assign_head_materials
from .render import FrontView, render_still, setup_front_render

# Neutral + six expressions that exercise lips, jaw, eyes and brows (ARKit unit names of the default head).
PREVIEW_EXPRESSIONS: tuple[tuple[str, dict[str, float]], ...] = (
    ("neutral", {}),
    ("jawOpen", {"jawOpen": 1.0}),
    ("mouthFunnel", {"mouthFunnel": 1.0, "jawOpen": 0.15}),
    ("smile", {"mouthSmileLeft": 0.9, "mouthSmileRight": 0.9, "cheekSquintLeft": 0.4, "cheekSquintRight": 0.4}),
    ("blink", {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}),
    ("browInnerUp", {"browInnerUp": 1.0}),
    ("mouthPress", {"mouthPressLeft": 1.0, "mouthPressRight": 1.0, "mouthClose": 0.3}),
)


def front_view(head: HeadModel, resolution: int) -> FrontView:
    """Frame the head from a margin over the skull down to the neck, whose open cut end stays out of the picture."""
    height = head.v_template[:, 1]
    top, bottom = float(height.max()), float(height.min())
    high, low = top + 0.06 * (top - bottom), bottom + 0.1 * (top - bottom)
    return FrontView(centre=(0.0, 0.0, (high + low) / 2), size=high - low, resolution=resolution)


def set_expression(objects: HeadObjects, values: dict[str, float]) -> None:
    for key in objects.mesh.data.shape_keys.key_blocks[1:]:
        key.value = values.get(key.name, 0.0)


def render_expression_sheet(head: HeadModel, out_png: Path, resolution: int = 320, samples: int = 16,
                            blend_path: Path | None = None) -> Path:
    """Build ``head`` in a fresh scene, render each preview expression and tile them in one row.

    Also saves the scene (head at neutral) to ``blend_path`` when given."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    objects = build_head(head)
    subdivision = objects.mesh.modifiers.new("Subdivision", "SUBSURF")
    subdivision.levels, subdivision.render_levels = 0, 1  # viewport stays fast for playback
    assign_head_materials(objects.mesh, head)
    setup_front_render(scene, front_view(head, resolution), samples=samples, denoise=True)
    wanted = [(label, vals) for label, vals in PREVIEW_EXPRESSIONS if all(k in head.expression_names for k in vals)]
    tiles = []
    out_png = Path(out_png)
    for label, values in wanted:
        set_expression(objects, values)
        tile_path = render_still(scene, out_png.with_name(f"{out_png.stem}_{label}.png"))
        tiles.append(_read_png(tile_path))
    set_expression(objects, {})
    _write_png(np.concatenate(tiles, axis=1), out_png)
    if blend_path is not None:
        Path(blend_path).parent.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=str(Path(blend_path).resolve()))
    return out_png


def render_clip_frames(head: HeadModel, shots: list[tuple[AnimationClip, int]], out_png: Path, columns: int,
                       resolution: int = 256, samples: int = 16) -> Path:
    """Render chosen frames of clips on ``head`` (shape keys + jaw/eye bones) into one grid image."""
    from ..core.rotations import axis_angle_to_euler_xyz

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    objects = build_head(head)
    subdivision = objects.mesh.modifiers.new("Subdivision", "SUBSURF")
    subdivision.levels, subdivision.render_levels = 0, 1
    assign_head_materials(objects.mesh, head)
    setup_front_render(scene, front_view(head, resolution), samples=samples, denoise=True)
    out_png = Path(out_png)
    tiles = []
    with tempfile.TemporaryDirectory(prefix="lt_tiles_") as tile_dir:  # only the sheet is the output
        for k, (clip, frame) in enumerate(shots):
            set_expression(objects, dict(zip(clip.expression_names, clip.expression[frame].tolist())))
            for bone, channel in (("jaw", clip.jaw), ("eye_L", clip.eye_L), ("eye_R", clip.eye_R)):
                if channel is not None:
                    objects.armature.pose.bones[bone].rotation_euler = axis_angle_to_euler_xyz(channel[frame:frame + 1])[0].tolist()
            tiles.append(_read_png(render_still(scene, Path(tile_dir) / f"{k}.png")))
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[r:r + columns], axis=1) for r in range(0, len(tiles), columns)]
    _write_png(np.concatenate(rows[::-1], axis=0), out_png)  # Blender images store the bottom row first
    return out_png


def _read_png(path: Path) -> np.ndarray:
    image = bpy.data.images.load(str(path))
    pixels = np.empty(image.size[0] * image.size[1] * 4, np.float32)
    image.pixels.foreach_get(pixels)
    array = pixels.reshape(image.size[1], image.size[0], 4)
    bpy.data.images.remove(image)
    return array


def _write_png(array: np.ndarray, path: Path) -> None:
    height, width = array.shape[:2]
    image = bpy.data.images.new("LatticeTalk sheet", width=width, height=height, alpha=True)
    image.pixels.foreach_set(array.ravel())
    image.filepath_raw = str(path)
    image.file_format = "PNG"
    image.save()
    bpy.data.images.remove(image)
