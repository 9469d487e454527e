"""Blender properties: the sidebar's settings (saved with the scene) and the running job's progress
(on the window manager: live state, never saved)."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, CollectionProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from .core.pipeline import MAX_VIDEO_OFFSET_SECONDS


class LatticeTalkSettings(bpy.types.PropertyGroup):
    audio_path: StringProperty(name="Audio", subtype="FILE_PATH",
                               description="Speech: wav, flac, ogg or mp3, or a video file (its sound track)")
    video_path: StringProperty(name="Reference video", subtype="FILE_PATH",
                               description="Optional video of the speaker: brows, eyes, blinks and head pose come "
                               "from it, the lips from the audio; the take keeps the audio's length")
    video_offset_auto: BoolProperty(name="Auto offset", default=True,
                                    description="Estimate how late the video is against the sound from the lips "
                                    "(0 where the estimate is unsure); off: use Offset")
    video_offset: FloatProperty(name="Offset (s)", default=0.0, min=-MAX_VIDEO_OFFSET_SECONDS,
                                max=MAX_VIDEO_OFFSET_SECONDS, soft_min=-2.0, soft_max=2.0, step=1, precision=3,
                                description="Seconds the reference video is late against the sound (negative: early), "
                                "e.g. a video recorded apart from its sound")
    transcript: StringProperty(name="Transcript", default="",
                               description="Optional: the line's words (English). Forced alignment times the p/b/m "
                               "lip closures; timing and intensity of the rest still come from the audio")
    recognize_words: BoolProperty(name="Recognise words", default=False,
                                  description="Without a transcript: recognise the line's English words to time the "
                                  "p/b/m lip closures (slower: about a third to half of the line's length more)")
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


class LatticeTalkChannel(bpy.types.PropertyGroup):
    """One ARKit unit of a character's mapping (see core.character_map.ChannelMap)."""

    channel: StringProperty(name="Unit", description="ARKit unit the take animates")
    target: StringProperty(name="Shape key", description="Shape key that receives the unit; empty: none")
    scale: FloatProperty(name="Scale", default=1.0, soft_min=0.0, soft_max=2.0, description="Multiplies the unit")
    ignore: BoolProperty(name="Ignore", default=False, description="Leave this unit out of the take")


def _is_armature(_self, obj) -> bool:
    return obj.type == "ARMATURE"


class LatticeTalkCharacter(bpy.types.PropertyGroup):
    """A user character's mapping, stored on its mesh object (empty channels: match by name when a take is written)."""

    armature: PointerProperty(name="Armature", type=bpy.types.Object, poll=_is_armature,
                              description="Rig with the jaw and head bones (default: the mesh's parent or Armature modifier)")
    channels: CollectionProperty(type=LatticeTalkChannel)
    active_channel: IntProperty(default=0)
    jaw_bone: StringProperty(name="Jaw bone", description="Bone that opens the jaw; empty: the jawOpen shape key")
    head_bone: StringProperty(name="Head bone", description="Bone that carries the head pose; empty: no head motion")
    preset_name: StringProperty(name="Preset", default="My character", description="Name to save or load a mapping under")


CLASSES = (LatticeTalkSettings, LatticeTalkProgress, LatticeTalkChannel, LatticeTalkCharacter)


def attach() -> None:
    bpy.types.Scene.lattice_talk = PointerProperty(type=LatticeTalkSettings)
    bpy.types.WindowManager.lattice_talk_progress = PointerProperty(type=LatticeTalkProgress)
    bpy.types.Object.lattice_talk_character = PointerProperty(type=LatticeTalkCharacter)


def detach() -> None:
    del bpy.types.Object.lattice_talk_character
    del bpy.types.WindowManager.lattice_talk_progress
    del bpy.types.Scene.lattice_talk
