"""Ground-truth videos: a planned clip on the default head, filmed by a perspective camera, 640×480.

Rendering is Workbench (rasterised, ~0.2–0.35 s a frame on 2 CPU cores; Cycles CPU needs ~8 s a frame
for a clean image). MediaPipe's face mesh finds the Workbench head reliably once it has skin colour,
white eyes with an iris and pupil, and light from a studio preset (see docs/ARCHITECTURE.md).

Frames are written by Blender as PNG, then seeded per-frame sensor noise is added and the video is
encoded with OpenCV (MPEG-4, the ``video`` extra): the noise is added per pixel after rendering, which
Blender's own FFMPEG output cannot do (both bpy wheels, 4.2 and 5.0, do have FFMPEG output).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from ..core.clip import AnimationClip
from ..core.data.video_clips import SKIN_RGB, RenderConditions
from ..core.errors import LatticeTalkError
from ..core.head_model import HeadModel
from ..core.heads import create
from .head_builder import HeadObjects, build_head
from .materials import IRIS_COLOURS, PUPIL_RGBA, SCLERA_RGBA, skin_material
from .character import write_take_on_target

HEAD_NAME = "LatticeTalk Video Head"
CAMERA_NAME = "LatticeTalk Video Camera"
TAKE = "ground truth"
FACE_BELOW_EYES_M = 0.03  # the camera aims between the eyes and the mouth
SENSOR_WIDTH_MM = 36.0
IRIS_COS, PUPIL_COS = 0.95, 0.985  # eyeball faces within ~18° / ~10° of the gaze axis

# Named lightings → Workbench studio light, its turn about the vertical (deg), shadows and exposure offset.
WORKBENCH_LIGHTINGS: dict[str, dict] = {
    "studio": {"studio_light": "studio.sl", "rotate": 0.0, "shadow": None, "exposure": 0.0},
    "key_left": {"studio_light": "studio.sl", "rotate": -75.0, "shadow": (-0.7, -0.4, 0.6), "exposure": 0.0},
    "key_right": {"studio_light": "studio.sl", "rotate": 75.0, "shadow": (0.7, -0.4, 0.6), "exposure": 0.0},
    "outdoor": {"studio_light": "outdoor.sl", "rotate": 30.0, "shadow": (0.3, -0.5, 0.8), "exposure": 0.0},
    "soft": {"studio_light": "basic.sl", "rotate": 0.0, "shadow": None, "exposure": 0.0},
    "dim": {"studio_light": "studio.sl", "rotate": 20.0, "shadow": None, "exposure": -0.9},
    "bright": {"studio_light": "paint.sl", "rotate": -20.0, "shadow": None, "exposure": 0.7},
    "top": {"studio_light": "rim.sl", "rotate": 0.0, "shadow": (0.0, -0.3, 0.95), "exposure": 0.3},
}


@dataclass
class FacePaint:
    """Per face corner (the mesh's loops): which eye part it is on (0 skin, 1 sclera, 2 iris, 3 pupil) and how
    much eyebrow and lip colour it takes (0–1). MediaPipe places brow and lip points on what it sees; an
    untextured head shows brows only as shading, which moves with the light, not with the brows."""

    eye_part: np.ndarray  # (L,) int
    brow: np.ndarray  # (L,) float
    lips: np.ndarray  # (L,) float


@dataclass
class VideoScene:
    """The reusable scene: the head and the camera (lights are Workbench settings)."""

    head: HeadModel
    objects: HeadObjects
    camera: bpy.types.Object
    eye_midpoint_world: np.ndarray
    paint: FacePaint


def _alive(obj) -> bool:
    try:
        return obj is not None and obj.name in bpy.context.scene.objects
    except ReferenceError:
        return False


_cache: VideoScene | None = None


def video_scene(head_source: str = "default") -> VideoScene:
    """The video scene in the current Blender session, built once (an empty session is made for it)."""
    global _cache
    if _cache is not None and _alive(_cache.objects.mesh) and _alive(_cache.camera):
        return _cache
    head = create(head_source)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    objects = build_head(head, name=HEAD_NAME, source=head_source, with_parts=False)
    eye_part = assign_eye_materials(objects.mesh, head)
    paint = _face_paint(objects.mesh, head, eye_part)
    cam = bpy.data.objects.new(CAMERA_NAME, bpy.data.cameras.new(CAMERA_NAME))
    scene.collection.objects.link(cam)
    scene.camera = cam
    eyes = head.j_regressor[3:5] @ head.v_template  # head frame (x, y up, z out) → world (x, −z, y)
    mid = eyes.mean(axis=0)
    _cache = VideoScene(head, objects, cam, np.array([mid[0], -mid[2], mid[1]], dtype=np.float64), paint)
    return _cache


def assign_eye_materials(obj: bpy.types.Object, head: HeadModel) -> np.ndarray:
    """Skin everywhere, sclera/iris/pupil on the eyeballs (by angle from each eye joint's gaze axis); returns
    each face's material index (0 skin, 1 sclera, 2 iris, 3 pupil). The video corpus and the preview use it."""
    mesh = obj.data
    mesh.materials.clear()
    for name, rgba in (("LatticeTalk Skin", None), ("LatticeTalk Sclera", SCLERA_RGBA),
                       ("LatticeTalk Iris", (*IRIS_COLOURS[0], 1.0)), ("LatticeTalk Pupil", PUPIL_RGBA)):
        mat = skin_material(name) if rgba is None else skin_material(name, rgba)
        if rgba is not None:
            mat.diffuse_color = rgba  # the Material view; renders take their colours from the paint attribute
        mat.roughness, mat.metallic = 0.55, 0.0  # Workbench's specular uses these whatever the colour source
        mesh.materials.append(mat)
    index = np.zeros(len(head.faces), np.int32)
    for region, joint in (("eye_L", 3), ("eye_R", 4)):
        verts = head.regions.get(region)
        if verts is None or not len(verts):
            continue
        on_eye = np.isin(head.faces, verts).all(axis=1)
        centre = head.j_regressor[joint] @ head.v_template
        d = head.v_template[head.faces[on_eye]].mean(axis=1) - centre
        cos = d[:, 2] / np.linalg.norm(d, axis=1)
        index[on_eye] = np.where(cos > PUPIL_COS, 3, np.where(cos > IRIS_COS, 2, 1))
    mesh.polygons.foreach_set("material_index", index)  # build_head makes one polygon per head face
    mesh.update()
    return index


BROW_FALLOFF_M, LIP_FALLOFF_M = 0.004, 0.0015  # soft edges: the mesh's edges are ~6 mm long
PAINT_ATTRIBUTE = "LatticeTalk Paint"


def _polygon_weight(xy: np.ndarray, polygon: np.ndarray, falloff: float) -> np.ndarray:
    """1 inside the 2-D ``polygon``, fading to 0 over ``falloff`` metres outside it."""
    from matplotlib.path import Path as PolygonPath

    a, b = polygon, np.roll(polygon, -1, axis=0)
    ab = b - a
    t = np.clip(np.einsum("psk,sk->ps", xy[:, None] - a[None], ab) / np.einsum("sk,sk->s", ab, ab), 0.0, 1.0)
    distance = np.linalg.norm(xy[:, None] - (a[None] + t[..., None] * ab[None]), axis=-1).min(axis=1)
    inside = PolygonPath(polygon).contains_points(xy)
    return np.where(inside, 1.0, np.clip(1.0 - distance / falloff, 0.0, 1.0))


def _face_paint(obj: bpy.types.Object, head: HeadModel, face_part: np.ndarray) -> FacePaint:
    """Eyebrows and lips drawn from the head's own MediaPipe landmark embedding at rest, seen from the front,
    on the skin facing the camera within 1.5 cm of the landmarks' depth; stored per face corner."""
    from ..core.landmark_rig import LandmarkRig
    from ..core.mediapipe_points import BROWS, LIPS_OUTER

    rig = LandmarkRig(head, point_ids=BROWS + LIPS_OUTER)
    rest = rig.points(np.zeros((1, head.n_expression), np.float32), np.zeros((1, len(head.parents), 3), np.float32))[0]
    v = head.v_template
    normals = np.zeros_like(v)
    tri = v[head.faces]
    np.add.at(normals, head.faces.ravel(), np.repeat(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), 3, axis=0))
    facing = normals[:, 2] / np.maximum(np.linalg.norm(normals, axis=1), 1e-12) > 0.2
    weights = []
    for polygon, falloff in ((rest[:10], BROW_FALLOFF_M), (rest[10:20], BROW_FALLOFF_M), (rest[20:], LIP_FALLOFF_M)):
        near = facing & (np.abs(v[:, 2] - polygon[:, 2].mean()) < 0.015)
        weights.append(np.where(near, _polygon_weight(v[:, :2], polygon[:, :2], falloff), 0.0))
    loops = np.empty(len(obj.data.loops), np.int32)
    obj.data.loops.foreach_get("vertex_index", loops)
    loop_face = np.repeat(np.arange(len(obj.data.polygons)), 3)  # build_head: triangles, loops in face order
    on_skin = face_part[loop_face] == 0
    brow = np.maximum(weights[0], weights[1])[loops] * on_skin
    return FacePaint(face_part[loop_face], brow, weights[2][loops] * on_skin)


def _paint_colours(paint: FacePaint, conditions: RenderConditions, iris: tuple) -> np.ndarray:
    """(L, 4) linear RGBA per face corner for these conditions. Lip colour is relative to the skin (``lip_rgb``
    is the lips of the default skin tone), so darker skin gets darker lips."""
    skin = np.asarray(conditions.skin_rgb)
    lips = skin * np.asarray(conditions.lip_rgb) / np.asarray(SKIN_RGB)
    rgb = skin[None] + (lips - skin)[None] * paint.lips[:, None]
    rgb += (np.asarray(conditions.brow_rgb)[None] - rgb) * paint.brow[:, None]
    for part, colour in ((1, SCLERA_RGBA[:3]), (2, iris), (3, PUPIL_RGBA[:3])):
        rgb[paint.eye_part == part] = colour
    return np.concatenate([np.clip(rgb, 0.0, 1.0), np.ones((len(rgb), 1))], axis=1).astype(np.float32)


def _apply_paint(obj: bpy.types.Object, colours: np.ndarray) -> None:
    """Write the corner colours into the mesh's paint attribute (made on first use) and make it the one shown."""
    mesh = obj.data
    attribute = mesh.color_attributes.get(PAINT_ATTRIBUTE) or mesh.color_attributes.new(PAINT_ATTRIBUTE, "FLOAT_COLOR", "CORNER")
    attribute.data.foreach_set("color", colours.ravel())
    mesh.color_attributes.active_color = attribute
    mesh.color_attributes.render_color_index = mesh.color_attributes.active_color_index
    mesh.update()


def apply_conditions(vs: VideoScene, conditions: RenderConditions) -> None:
    """Camera, lighting, colours and output size for one render."""
    scene = bpy.context.scene
    render = scene.render
    render.engine = "BLENDER_WORKBENCH"
    render.resolution_x, render.resolution_y, render.resolution_percentage = conditions.width, conditions.height, 100
    render.fps, render.fps_base = round(conditions.fps), round(conditions.fps) / conditions.fps
    render.film_transparent = False
    scene.display.render_aa = "FXAA"
    scene.view_settings.view_transform = "Standard"

    cam = vs.camera
    cam.data.type = "PERSP"
    cam.data.lens = conditions.lens_mm
    cam.data.sensor_fit = "HORIZONTAL"
    cam.data.sensor_width = SENSOR_WIDTH_MM
    cam.data.clip_start, cam.data.clip_end = 0.05, 10.0
    ex, ey, ez = vs.eye_midpoint_world
    ox, oz = conditions.camera_offset
    cam.location = (ex + ox, ey - conditions.camera_distance, ez - FACE_BELOW_EYES_M + oz)
    cam.rotation_euler = (math.pi / 2, 0.0, 0.0)  # looks along +Y, at the face

    preset = WORKBENCH_LIGHTINGS[conditions.lighting]
    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.color_type = "VERTEX"  # the paint attribute: skin, brows, lips and eyes per face corner
    shading.use_world_space_lighting = True
    shading.studio_light = preset["studio_light"]
    shading.studiolight_rotate_z = math.radians(preset["rotate"] + conditions.light_rotation_deg)
    shading.show_specular_highlight = True
    shading.show_shadows = preset["shadow"] is not None
    if preset["shadow"] is not None:
        shading.shadow_intensity = 0.45
        scene.display.light_direction = preset["shadow"]
    scene.view_settings.exposure = preset["exposure"] + conditions.exposure
    world = scene.world or bpy.data.worlds.new("LatticeTalk Video World")
    scene.world = world
    world.color = conditions.background_rgb
    iris = IRIS_COLOURS[conditions.seed % len(IRIS_COLOURS)]
    _apply_paint(vs.objects.mesh, _paint_colours(vs.paint, conditions, iris))


@dataclass
class VideoRenderResult:
    path: Path
    n_frames: int
    render_seconds: float  # Blender's part
    encode_seconds: float  # noise + encoding (0 when Blender encodes)
    encoder: str  # "opencv" or "blender"
    warnings: list[str]


def _opencv_available() -> bool:
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


def render_clip_video(clip: AnimationClip, conditions: RenderConditions, out_mp4: str | Path,
                      head_source: str = "default", encoder: str = "auto") -> VideoRenderResult:
    """Render ``clip`` on the head under ``conditions`` into ``out_mp4`` (written atomically).

    ``encoder``: ``"opencv"`` (PNG frames + sensor noise → MPEG-4), ``"blender"`` (Blender's FFMPEG writer,
    H.264, no sensor noise) or ``"auto"`` (OpenCV when installed)."""
    if encoder == "auto":
        encoder = "opencv" if _opencv_available() else "blender"
    if encoder not in ("opencv", "blender"):
        raise ValueError(f"unknown encoder {encoder!r}; use 'auto', 'opencv' or 'blender'")
    out_mp4 = Path(out_mp4).resolve()
    out_mp4.parent.mkdir(parents=True, exist_ok=True)
    vs = video_scene(head_source)
    scene = bpy.context.scene
    apply_conditions(vs, conditions)
    write_take_on_target(clip, vs.objects, scene, TAKE)  # resampled to the scene's fps; sets the frame range
    expected = scene.frame_end - scene.frame_start + 1
    if encoder == "blender":
        return _render_with_ffmpeg(scene, out_mp4, expected, conditions)
    frames_dir = out_mp4.with_name(f".{out_mp4.stem}.frames")
    shutil.rmtree(frames_dir, ignore_errors=True)
    frames_dir.mkdir()
    try:
        settings = _image_settings(scene, "PNG")
        settings.color_mode = "RGB"
        settings.compression = 15
        scene.render.filepath = str(frames_dir / "f_")
        render_seconds = _render_animation(scene)
        start = time.perf_counter()
        frames = sorted(frames_dir.glob("f_*.png"))
        if len(frames) != expected:
            raise LatticeTalkError(f"{out_mp4.name}: Blender wrote {len(frames)} of {expected} frames")
        encode_frames(frames, out_mp4, conditions.fps, conditions.noise_sigma, conditions.seed)
        return VideoRenderResult(out_mp4, len(frames), render_seconds, time.perf_counter() - start, encoder, [])
    finally:
        shutil.rmtree(frames_dir, ignore_errors=True)


def _image_settings(scene: bpy.types.Scene, file_format: str):
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):  # Blender 5.0 splits images and video
        settings.media_type = "VIDEO" if file_format == "FFMPEG" else "IMAGE"
    settings.file_format = file_format
    return settings


def _render_animation(scene: bpy.types.Scene) -> float:
    start = time.perf_counter()
    with _quiet_stdout():  # Blender prints a few lines per frame
        bpy.ops.render.render(animation=True, scene=scene.name)
    return time.perf_counter() - start


def _render_with_ffmpeg(scene: bpy.types.Scene, out_mp4: Path, n_frames: int, conditions: RenderConditions) -> VideoRenderResult:
    if not bpy.app.build_options.codec_ffmpeg:
        raise LatticeTalkError("this Blender build has no FFMPEG output; install OpenCV (the 'video' extra) to encode videos")
    _image_settings(scene, "FFMPEG")
    ffmpeg = scene.render.ffmpeg
    ffmpeg.format, ffmpeg.codec, ffmpeg.audio_codec = "MPEG4", "H264", "NONE"
    ffmpeg.constant_rate_factor = "HIGH"
    tmp = out_mp4.with_name(f".{out_mp4.stem}.tmp{out_mp4.suffix}")
    scene.render.filepath = str(tmp)
    try:
        seconds = _render_animation(scene)
        tmp.replace(out_mp4)
    finally:
        tmp.unlink(missing_ok=True)
    warnings = [f"{out_mp4.name}: Blender's encoder adds no sensor noise (noise_sigma {conditions.noise_sigma:g} ignored)"] \
        if conditions.noise_sigma > 0 else []
    return VideoRenderResult(out_mp4, n_frames, seconds, 0.0, "blender", warnings)


@contextlib.contextmanager
def _quiet_stdout():
    """Silence the process's stdout (C level, where Blender writes) for the duration."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def encode_frames(frames: list[Path], out_mp4: Path, fps: float, noise_sigma: float, seed: int) -> Path:
    """PNG frames → MPEG-4 video, with seeded Gaussian sensor noise (8-bit levels); atomic rename."""
    try:
        import cv2
    except ImportError as exc:
        raise LatticeTalkError("encoding ground-truth videos needs OpenCV: pip install the 'video' extra") from exc
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x401CE]))
    first = cv2.imread(str(frames[0]))
    height, width = first.shape[:2]
    tmp = out_mp4.with_name(f".{out_mp4.stem}.tmp{out_mp4.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        raise LatticeTalkError(f"{out_mp4}: OpenCV cannot open an MPEG-4 writer")
    try:
        for path in frames:
            image = cv2.imread(str(path)).astype(np.float32)
            if noise_sigma > 0:
                image += rng.normal(0.0, noise_sigma, image.shape).astype(np.float32)
            writer.write(np.clip(image + 0.5, 0, 255).astype(np.uint8))
    finally:
        writer.release()
    tmp.replace(out_mp4)
    return out_mp4


def render_video_corpus(out: str | Path, count: int, seed: int = 0, n_frames: int = 60, heldout_share: float = 0.2,
                        relit_share: float = 0.25, progress=None) -> dict:
    """Render corpus entries 0..count-1 into ``out``: per entry ``vNNNNN.mp4`` + its ground truth
    ``vNNNNN.npz`` (and ``vNNNNN_relit.mp4`` under another lighting for some), plus ``manifest.json``.

    Resumable: a video that exists is finished (videos are renamed into place last) and is skipped; the
    manifest is rebuilt from the deterministic plans after every video. ``progress(n_done, entry, seconds)``."""
    import json

    from ..core.data.video_clips import MANIFEST, manifest_entry, manifest_header, plan_corpus_entry

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = create("default").expression_names
    header = manifest_header(seed, n_frames, heldout_share, relit_share)
    encoder = "opencv" if _opencv_available() else "blender"
    header["renderer"] = {"engine": "BLENDER_WORKBENCH", "blender": bpy.app.version_string,
                          "encoder": {"opencv": "OpenCV mp4v, sensor noise added", "blender": "Blender FFMPEG H.264, no sensor noise"}[encoder]}
    entries: list[dict] = []
    stats = {"rendered": 0, "skipped": 0, "render_seconds": 0.0, "frames_rendered": 0}
    for index in range(count):
        for plan in plan_corpus_entry(seed, index, n_frames, heldout_share, relit_share, names=names):
            entry = manifest_entry(plan)
            video = out / entry["video"]
            seconds = 0.0
            if video.is_file():
                stats["skipped"] += 1
            else:
                clip_path = out / entry["clip"]
                if not clip_path.is_file():
                    plan.clip.save(clip_path)
                result = render_clip_video(plan.clip, plan.conditions, video, encoder=encoder)
                seconds = result.render_seconds + result.encode_seconds
                stats["rendered"] += 1
                stats["render_seconds"] += seconds
                stats["frames_rendered"] += result.n_frames
            entries.append(entry)
            _write_json(out / MANIFEST, {**header, "clips": entries})
            if progress is not None:
                progress(len(entries), entry, seconds)
    return {**stats, "videos": len(entries), "manifest": str(out / MANIFEST)}


def _write_json(path: Path, data: dict) -> None:
    import json

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
