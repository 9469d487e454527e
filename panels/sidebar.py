"""View3D › Sidebar › LatticeTalk."""

from __future__ import annotations

import bpy

from ..scene.head_builder import HEAD_ID_PROP, find_head


class LATTICETALK_PT_head(bpy.types.Panel):
    bl_label = "Head"
    bl_idname = "LATTICETALK_PT_head"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "LatticeTalk"

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
