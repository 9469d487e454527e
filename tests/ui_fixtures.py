"""A recording stand-in for ``UILayout``: tests call a panel's ``draw()`` headless (no window) and check
what it asked for against Blender's own RNA (icon names, property names, operator ids)."""

from __future__ import annotations

import types

import bpy


class Layout:
    """Records what draw() asks for and checks it against Blender's RNA (icon names, property names)."""

    ICONS = set(bpy.types.UILayout.bl_rna.functions["prop"].parameters["icon"].enum_items.keys())

    def __init__(self, log):
        self.log = log
        self.scale_y = 1.0

    def _icon(self, icon):
        assert icon in self.ICONS, f"unknown icon {icon}"

    def box(self):
        return Layout(self.log)

    row = column = lambda self, **kw: Layout(self.log)  # noqa: E731

    def label(self, text="", icon="NONE"):
        self._icon(icon)
        self.log.append(("label", text, icon))

    def prop(self, data, name, **kw):
        assert name in data.bl_rna.properties, name
        self.log.append(("prop", name))

    def operator(self, idname, text="", icon="NONE", **kw):
        self._icon(icon)
        module, op = idname.split(".")
        assert op in dir(getattr(bpy.ops, module)), idname
        self.log.append(("operator", idname, text))
        return types.SimpleNamespace()  # stands in for the operator properties the panel fills in

    def progress(self, factor=0.0, type="BAR", text=""):
        self.log.append(("progress", factor, text))
