"""View3D › Sidebar › LatticeTalk."""

from __future__ import annotations

import bpy

from ..scene.head_builder import HEAD_ID_PROP


class LATTICETALK_PT_head(bpy.types.Panel):
    bl_label = "Head"
    bl_idname = "LATTICETALK_PT_head"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "LatticeTalk"

    def draw(self, context):
        layout = self.layout
        obj = context.active_object
        head_mesh = obj if obj is not None and HEAD_ID_PROP in obj else None
        if head_mesh is None and obj is not None and obj.type == "ARMATURE":
            head_mesh = next((c for c in obj.children if HEAD_ID_PROP in c), None)
        if head_mesh is not None:
            layout.label(text=f"{head_mesh.name}: {head_mesh[HEAD_ID_PROP]}", icon="USER")
        else:
            layout.label(text="No LatticeTalk head selected", icon="INFO")
        row = layout.row(align=True)
        row.operator("lattice_talk.add_head", text="Add Default Head", icon="ADD").source = "DEFAULT"
        row.operator("lattice_talk.add_head", text="FLAME…", icon="FILEBROWSER").source = "FLAME"
