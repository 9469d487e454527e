"""View3D › Sidebar › LatticeTalk: head, your character's mapping, generate (with progress), takes. Panels only draw."""

from __future__ import annotations

import importlib.util

import bpy

from ..preferences import get_preferences
from ..scene.character import find_character, find_target
from ..scene.head_builder import HEAD_ID_PROP, find_head

SPEECH_MODULES = ("torch", "soundfile")  # the shipped model; SSL encoders also need transformers (Preferences lists it)


def missing_speech_modules() -> list[str]:
    """Which optional modules generation needs are absent (checked without importing them)."""
    return [name for name in SPEECH_MODULES if importlib.util.find_spec(name) is None]


class _LatticeTalkPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "LatticeTalk"


class LATTICETALK_PT_head(_LatticeTalkPanel, bpy.types.Panel):
    bl_label = "Head"
    bl_idname = "LATTICETALK_PT_head"

    def draw(self, context):
        layout = self.layout
        head = find_head(context.active_object)
        if head is not None:
            layout.label(text=f"{head.mesh.name}: {head.mesh[HEAD_ID_PROP]}", icon="USER")
        else:
            layout.label(text="No LatticeTalk head selected", icon="INFO")
        row = layout.row(align=True)
        row.operator("lattice_talk.add_head", text="Add Default Head", icon="ADD").source = "DEFAULT"
        row.operator("lattice_talk.add_head", text="FLAME…", icon="FILEBROWSER").source = "FLAME"


class LATTICETALK_PT_generate(_LatticeTalkPanel, bpy.types.Panel):
    bl_label = "Generate"
    bl_idname = "LATTICETALK_PT_generate"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.lattice_talk
        progress = context.window_manager.lattice_talk_progress
        missing = missing_speech_modules()
        if missing:
            box = layout.box()
            box.label(text="Speech model needs: " + ", ".join(missing), icon="ERROR")
            box.label(text="Preferences › Add-ons › LatticeTalk › Install Dependencies")
        prefs = get_preferences(context)
        if prefs is not None:  # the speech model is chosen once, in the preferences
            layout.prop(prefs, "speech_model_source", text="Model")
        col = layout.column(align=True)
        col.prop(settings, "audio_path")
        col.prop(settings, "transcript")
        if not settings.transcript.strip():
            col.prop(settings, "recognize_words")
        col.prop(settings, "video_path")
        if settings.video_path or not settings.video_offset_auto:  # a given offset is never hidden
            row = col.row(align=True)
            row.prop(settings, "video_offset_auto", text="Auto")
            sub = row.row(align=True)
            sub.enabled = not settings.video_offset_auto
            sub.prop(settings, "video_offset")
        if prefs is not None and settings.video_path:  # which model reads the video: also a preference
            col.prop(prefs, "video_model_source", text="Video model")
        col = layout.column(align=True)
        col.prop(settings, "take_name")
        col.prop(settings, "start_frame")
        col = layout.column(align=True)
        col.prop(settings, "intensity", slider=True)
        col.prop(settings, "head_motion", slider=True)
        row = layout.row(align=True)
        row.prop(settings, "blinks")
        row.prop(settings, "reduce_keys")
        if settings.reduce_keys:
            layout.prop(settings, "key_tolerance")
        if progress.running:
            eta = f" · {progress.eta_seconds:.0f} s left" if progress.eta_seconds >= 0 else ""
            layout.progress(factor=progress.fraction, type="BAR", text=f"{progress.stage}{eta}")
            layout.operator("lattice_talk.cancel_generation", icon="CANCEL")
        else:
            row = layout.row()
            row.scale_y = 1.4
            row.enabled = find_target(context.active_object) is not None and bool(settings.audio_path)
            row.operator("lattice_talk.generate_from_audio", icon="PLAY_SOUND")
        layout.operator("lattice_talk.apply_clip", icon="IMPORT")


class LATTICETALK_PT_takes(_LatticeTalkPanel, bpy.types.Panel):
    bl_label = "Takes"
    bl_idname = "LATTICETALK_PT_takes"

    def draw(self, context):
        from ..scene.take_writer import list_takes, take_is_muted

        layout = self.layout
        head = find_target(context.active_object)
        takes = list_takes(head) if head is not None else []
        if not takes:
            layout.label(text="No takes on the selected head or character")
        for take in takes:
            muted = take_is_muted(head, take)
            row = layout.row(align=True)
            toggle = row.operator("lattice_talk.mute_take", text="", icon="HIDE_ON" if muted else "HIDE_OFF", emboss=False)
            toggle.take, toggle.mute = take, not muted
            row.label(text=take)
            row.operator("lattice_talk.export_take", text="", icon="EXPORT").take = take
            row.operator("lattice_talk.remove_take", text="", icon="X").take = take


class LATTICETALK_UL_channels(bpy.types.UIList):
    """One ARKit unit per row: the shape key that receives it, its scale, and whether it is ignored."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0, flt_flag=0):
        mesh = data.id_data
        row = layout.row(align=True)
        row.active = not item.ignore
        row.label(text=item.channel, icon="SHAPEKEY_DATA" if item.target else "ERROR")
        if mesh.data.shape_keys is not None:
            row.prop_search(item, "target", mesh.data.shape_keys, "key_blocks", text="")
        row.prop(item, "scale", text="")
        row.prop(item, "ignore", text="", icon="HIDE_ON" if item.ignore else "HIDE_OFF", emboss=False)


class LATTICETALK_PT_character(_LatticeTalkPanel, bpy.types.Panel):
    """Your own character: a mesh with ARKit-style shape keys (and its armature) that takes drive."""

    bl_label = "Character"
    bl_idname = "LATTICETALK_PT_character"
    bl_parent_id = "LATTICETALK_PT_head"

    def draw(self, context):
        layout = self.layout
        character = find_character(context.active_object)
        if character is None:
            layout.label(text="Select your character's mesh to drive it", icon="INFO")
            return
        settings = character.mesh.lattice_talk_character
        layout.label(text=character.mesh.name, icon="OUTLINER_OB_MESH")
        layout.prop(settings, "armature")
        if character.armature is not None:
            col = layout.column(align=True)
            col.prop_search(settings, "jaw_bone", character.armature.data, "bones")
            col.prop_search(settings, "head_bone", character.armature.data, "bones")
        layout.operator("lattice_talk.match_character", icon="SHAPEKEY_DATA")
        if len(settings.channels):
            unmatched = sum(1 for c in settings.channels if not c.target and not c.ignore)
            layout.label(text=f"{unmatched} units unmatched" if unmatched else "All units mapped",
                         icon="ERROR" if unmatched else "CHECKMARK")
            layout.template_list("LATTICETALK_UL_channels", "", settings, "channels", settings, "active_channel", rows=6)
        else:
            layout.label(text="Not mapped yet: takes match names automatically")
        row = layout.row(align=True)
        row.prop(settings, "preset_name", text="")
        row.operator("lattice_talk.save_character_preset", text="", icon="FILE_TICK")
        row.operator("lattice_talk.load_character_preset", text="", icon="FILEBROWSER")


CLASSES = (LATTICETALK_PT_head, LATTICETALK_UL_channels, LATTICETALK_PT_character, LATTICETALK_PT_generate,
           LATTICETALK_PT_takes)
