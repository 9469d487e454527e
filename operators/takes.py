"""Apply a clip file as a take, and manage takes (remove, mute)."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import BoolProperty, StringProperty


def resolve_head(context):
    """The selected LatticeTalk head or character (a mesh with shape keys), else the only head in the scene;
    ``None`` when there is none or several."""
    from ..scene.character import find_target
    from ..scene.head_builder import HEAD_ID_PROP, find_head

    head = find_target(context.active_object)
    if head is not None:
        return head
    candidates = [obj for obj in context.scene.objects if HEAD_ID_PROP in obj]
    return find_head(candidates[0]) if len(candidates) == 1 else None


NO_HEAD = "Select a LatticeTalk head or a character mesh with shape keys (or add a head with Add Head) first"


def report_take(result, report) -> None:
    """Tell the user what a written take holds and what it could not place."""
    for warning in result.warnings:
        report({"WARNING"}, warning)
    if result.conversion:
        report({"INFO"}, f"Take '{result.name}': {result.conversion}")
    if result.unmatched_expressions:
        report({"WARNING"}, f"{len(result.unmatched_expressions)} channels have no shape key: "
                            + ", ".join(result.unmatched_expressions[:8]))
    report({"INFO"}, f"Take '{result.name}': frames {result.frame_start}–{result.frame_end}, {result.keys} keys")


class LATTICETALK_OT_apply_clip(bpy.types.Operator):
    """Apply an AnimationClip file (.npz or .json) to the selected head or character as a take"""

    bl_idname = "lattice_talk.apply_clip"
    bl_label = "Apply Clip"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(name="Clip", subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.npz;*.json", options={"HIDDEN"})
    take_name: StringProperty(name="Take", default="", description="Default: the clip file's name")
    sound_path: StringProperty(name="Sound", subtype="FILE_PATH", description="Optional audio to place at the take's start")
    key_tolerance: bpy.props.FloatProperty(name="Key tolerance", default=0.0, min=0.0, description="0 keeps every frame")

    def invoke(self, context, event):
        if not self.filepath:
            context.window_manager.fileselect_add(self)
            return {"RUNNING_MODAL"}
        return self.execute(context)

    def execute(self, context):
        from ..core.audio import check_sound_file
        from ..core.clip import load_clip
        from ..core.errors import LatticeTalkError
        from ..scene.character import write_take_on_target

        head = resolve_head(context)
        if head is None:
            self.report({"ERROR"}, NO_HEAD)
            return {"CANCELLED"}
        path = Path(bpy.path.abspath(self.filepath))
        sound = Path(bpy.path.abspath(self.sound_path)) if self.sound_path else None
        try:
            clip = load_clip(path)  # every check happens before the scene changes
            if sound is not None:
                check_sound_file(sound)
            # a character's map is checked inside, before anything is written
            result = write_take_on_target(clip, head, context.scene, self.take_name or path.stem,
                                          key_tolerance=self.key_tolerance, sound_path=sound)
        except LatticeTalkError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        report_take(result, self.report)
        return {"FINISHED"}


class _TakeOperator:
    """Shared by operators that act on one named take of the selected head."""

    bl_options = {"REGISTER", "UNDO"}
    take: StringProperty(name="Take")

    def act(self, head, context) -> bool:
        raise NotImplementedError

    def execute(self, context):
        head = resolve_head(context)
        if head is None or not self.act(head, context):
            self.report({"ERROR"}, f"No take named '{self.take}' on the selected head")
            return {"CANCELLED"}
        return {"FINISHED"}


class LATTICETALK_OT_remove_take(_TakeOperator, bpy.types.Operator):
    """Remove a take: its NLA tracks, actions and sound strip"""

    bl_idname = "lattice_talk.remove_take"
    bl_label = "Remove Take"

    def act(self, head, context) -> bool:
        from ..scene.take_writer import remove_take

        return remove_take(head, self.take, context.scene)


class LATTICETALK_OT_mute_take(_TakeOperator, bpy.types.Operator):
    """Mute or unmute every layer of a take"""

    bl_idname = "lattice_talk.mute_take"
    bl_label = "Mute Take"

    mute: BoolProperty(name="Mute", default=True)

    def act(self, head, context) -> bool:
        from ..scene.take_writer import set_take_mute

        return set_take_mute(head, self.take, self.mute)
