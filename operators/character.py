"""Your own character: match its shape keys to the ARKit units, save/load the mapping as a preset, export a take."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from .takes import NO_HEAD, resolve_head

NO_CHARACTER = "Select a mesh with shape keys (your character), or the armature it is parented to"


def _resolve_character(context):
    from ..scene.character import find_character

    return find_character(context.active_object)


class LATTICETALK_OT_match_character(bpy.types.Operator):
    """Map the selected character's shape keys to the 52 ARKit units by name (case, separators, _L/Left, prefixes)"""

    bl_idname = "lattice_talk.match_character"
    bl_label = "Match ARKit Names"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from ..core.character_map import auto_map
        from ..scene.character import bone_names, shape_key_names, store_character_map

        character = _resolve_character(context)
        if character is None:
            self.report({"ERROR"}, NO_CHARACTER)
            return {"CANCELLED"}
        mapping = auto_map(shape_key_names(character.mesh), bone_names(character.armature))
        store_character_map(character.mesh, mapping)
        unmatched = mapping.unmatched()
        if unmatched:
            self.report({"WARNING"}, f"{len(unmatched)} of 52 units have no shape key: " + ", ".join(unmatched[:8]))
        else:
            self.report({"INFO"}, "All 52 ARKit units matched")
        return {"FINISHED"}


class _CharacterPresetOperator:
    """Shared by the preset operators: resolve the character and the preset name, report one clear message."""

    bl_options = {"REGISTER", "UNDO"}
    name: StringProperty(name="Preset", description="Default: the sidebar's preset name")

    def act(self, character, name: str) -> str:
        """Do the work; return what to tell the user (raise LatticeTalkError on bad input, before any change)."""
        raise NotImplementedError

    def execute(self, context):
        from ..core.errors import LatticeTalkError

        character = _resolve_character(context)
        if character is None:
            self.report({"ERROR"}, NO_CHARACTER)
            return {"CANCELLED"}
        try:
            message = self.act(character, self.name or character.mesh.lattice_talk_character.preset_name)
        except LatticeTalkError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, message)
        return {"FINISHED"}


class LATTICETALK_OT_save_character_preset(_CharacterPresetOperator, bpy.types.Operator):
    """Save the selected character's mapping as a preset (JSON in the add-on's user folder)"""

    bl_idname = "lattice_talk.save_character_preset"
    bl_label = "Save Mapping Preset"

    def act(self, character, name: str) -> str:
        from ..core.character_map import save_preset
        from ..scene.character import character_map, presets_folder

        return f"Saved mapping preset '{name}' to {save_preset(character_map(character), name, presets_folder())}"


class LATTICETALK_OT_load_character_preset(_CharacterPresetOperator, bpy.types.Operator):
    """Load a saved mapping preset onto the selected character"""

    bl_idname = "lattice_talk.load_character_preset"
    bl_label = "Load Mapping Preset"

    def act(self, character, name: str) -> str:
        from ..core.character_map import load_preset
        from ..scene.character import bone_names, presets_folder, shape_key_names, store_character_map

        mapping = load_preset(name, presets_folder())
        mapping.validate(shape_key_names(character.mesh), bone_names(character.armature), where=f"preset {name!r}")
        store_character_map(character.mesh, mapping)
        return f"Loaded mapping preset '{name}'"


class LATTICETALK_OT_export_take(bpy.types.Operator):
    """Export the selected head or character with one take as glTF 2.0 or FBX (shape-key animation kept)"""

    bl_idname = "lattice_talk.export_take"
    bl_label = "Export Take"
    bl_options = {"REGISTER", "UNDO"}

    take: StringProperty(name="Take")
    format: EnumProperty(name="Format", items=(("gltf", "glTF 2.0 (.glb)", "Morph-target animation"),
                                               ("fbx", "FBX (.fbx)", "Blend-shape animation")), default="gltf")
    filepath: StringProperty(name="File", subtype="FILE_PATH")

    def invoke(self, context, event):
        if not self.filepath:
            self.filepath = f"{self.take or 'take'}{'.glb' if self.format == 'gltf' else '.fbx'}"
            context.window_manager.fileselect_add(self)
            return {"RUNNING_MODAL"}
        return self.execute(context)

    def execute(self, context):
        from ..core.errors import LatticeTalkError
        from ..scene.export import export_take

        head = resolve_head(context)
        if head is None:
            self.report({"ERROR"}, NO_HEAD)
            return {"CANCELLED"}
        try:
            path = export_take(head, self.take, Path(bpy.path.abspath(self.filepath)), self.format, context.scene)
        except LatticeTalkError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Exported take '{self.take}' to {path}")
        return {"FINISHED"}


CLASSES = (LATTICETALK_OT_match_character, LATTICETALK_OT_save_character_preset, LATTICETALK_OT_load_character_preset,
           LATTICETALK_OT_export_take)
