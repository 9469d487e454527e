"""Clips, audio files and scene snapshots for the tests."""

from __future__ import annotations

import wave

import numpy as np

from lattice_talk.core.clip import AnimationClip
from lattice_talk.core.head_model import HeadModel


def make_clip(head: HeadModel, seconds: float = 2.0, fps: float = 30.0, seed: int = 0, start_frame: int = 1) -> AnimationClip:
    """Smooth, every channel present: expressions in the head's range, small head/jaw/eye rotations."""
    rng = np.random.default_rng(seed)
    n = max(2, int(round(seconds * fps)))
    t = np.arange(n) / fps
    lo, hi = head.expression_range
    phases = rng.uniform(0, 2 * np.pi, head.n_expression)
    freqs = rng.uniform(0.2, 2.0, head.n_expression)
    expression = lo + (hi - lo) * 0.5 * (1 + np.sin(2 * np.pi * freqs * t[:, None] + phases))
    if lo == 0.0:
        expression *= 0.5
    wave = lambda f, a: a * np.sin(2 * np.pi * f * t)  # noqa: E731
    rot = lambda a: np.stack([wave(0.5, a), wave(0.3, a * 0.7), wave(0.2, a * 0.4)], 1)  # noqa: E731
    return AnimationClip(
        fps=fps, start_frame=start_frame, head_id=head.head_id,
        expression=expression.astype(np.float32), expression_names=head.expression_names,
        jaw=np.stack([0.15 * (1 + np.sin(2 * np.pi * 3 * t)), 0 * t, 0 * t], 1).astype(np.float32),
        neck=rot(0.1).astype(np.float32), global_rotation=rot(0.05).astype(np.float32),
        global_translation=(rot(0.01)).astype(np.float32),
        eye_L=rot(0.08).astype(np.float32), eye_R=rot(0.08).astype(np.float32),
        eyelids=np.clip(np.stack([wave(0.3, 1.0), wave(0.3, 1.0)], 1), 0, 1).astype(np.float32),
        provenance={"made_by": "tests"},
    )


def scene_snapshot(bpy) -> dict:
    """Everything a take could touch, as plain data: compare before/after to prove 'nothing changed'."""
    def curves(action):
        if hasattr(action, "layers"):
            return sorted((fc.data_path, fc.array_index, len(fc.keyframe_points))
                          for layer in action.layers for strip in layer.strips
                          for bag in strip.channelbags for fc in bag.fcurves)
        return sorted((fc.data_path, fc.array_index, len(fc.keyframe_points)) for fc in action.fcurves)

    def tracks(id_block):
        anim = getattr(id_block, "animation_data", None)
        return [(t.name, t.mute, [(s.name, s.frame_start, s.frame_end) for s in t.strips]) for t in anim.nla_tracks] if anim else []

    scene = bpy.context.scene
    editor = scene.sequence_editor
    strips = [] if editor is None else (editor.strips if hasattr(editor, "strips") else editor.sequences)
    return {
        "objects": sorted(o.name for o in bpy.data.objects),
        "meshes": sorted(m.name for m in bpy.data.meshes),
        "armatures": sorted(a.name for a in bpy.data.armatures),
        "actions": sorted((a.name, tuple(curves(a))) for a in bpy.data.actions),
        "tracks": sorted((o.name, tuple(map(str, tracks(o)))) for o in list(bpy.data.objects) + list(bpy.data.shape_keys)),
        "strips": sorted((s.name, s.channel, s.frame_start) for s in strips),
        "sounds": sorted(s.name for s in bpy.data.sounds),
        "frame_range": (scene.frame_start, scene.frame_end, scene.frame_current),
        "fps": (scene.render.fps, scene.render.fps_base),
    }


def write_wav(path, samples: np.ndarray | None = None, seconds: float = 1.0, rate: int = 16000, freq: float = 200.0):
    """16-bit mono WAV: ``samples`` (−1..1) or a tone; with the stdlib only, so tests need no audio library."""
    if samples is None:
        t = np.arange(int(seconds * rate)) / rate
        samples = 0.3 * np.sin(2 * np.pi * freq * t)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def evaluated_vertices(bpy, obj) -> np.ndarray:
    """Blender's evaluated (posed, shape-keyed) vertex positions of ``obj`` in object space."""
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    evaluated.to_mesh_clear()
    return co.reshape(-1, 3)
