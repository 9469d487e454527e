"""Blender properties: the sidebar's settings (saved with the scene) and the running job's progress
(on the window manager: live state, never saved)."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, FloatProperty, IntProperty, PointerProperty, StringProperty


class LatticeTalkSettings(bpy.types.PropertyGroup):
    audio_path: StringProperty(name="Audio", subtype="FILE_PATH", description="Speech: wav, flac, ogg or mp3")
    video_path: StringProperty(name="Reference video", subtype="FILE_PATH",
                               description="Optional video of the speaker for expressions and head pose")
    take_name: StringProperty(name="Take", default="Take", description="Generating again with the same name replaces the take")
    start_frame: IntProperty(name="Start frame", default=1, description="Frame where the take and its sound start")
    intensity: FloatProperty(name="Intensity", default=1.0, min=0.0, max=3.0, soft_max=2.0,
                             description="Scale of the face motion (0 = neutral face)")
    head_motion: FloatProperty(name="Head motion", default=1.0, min=0.0, max=3.0, soft_max=2.0,
                               description="Scale of the head and neck motion")
    blinks: BoolProperty(name="Blinks", default=True)
    reduce_keys: BoolProperty(name="Reduce keys", default=False,
                              description="Fewer keys, easier to edit by hand (linear interpolation within the tolerance)")
    key_tolerance: FloatProperty(name="Tolerance", default=0.01, min=0.0001, max=0.5, precision=4,
                                 description="Largest change key reduction may make to any curve")
    seed: IntProperty(name="Seed", default=0, min=0)


class LatticeTalkProgress(bpy.types.PropertyGroup):
    running: BoolProperty(default=False)
    fraction: FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    stage: StringProperty(default="")
    eta_seconds: FloatProperty(default=-1.0)
    cancel_requested: BoolProperty(default=False, description="Set by the Cancel button, read by the running operator")


CLASSES = (LatticeTalkSettings, LatticeTalkProgress)


def attach() -> None:
    bpy.types.Scene.lattice_talk = PointerProperty(type=LatticeTalkSettings)
    bpy.types.WindowManager.lattice_talk_progress = PointerProperty(type=LatticeTalkProgress)


def detach() -> None:
    del bpy.types.WindowManager.lattice_talk_progress
    del bpy.types.Scene.lattice_talk
