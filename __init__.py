"""LatticeTalk: speech (and a reference video) → editable FLAME face animation.

This folder is both the Blender extension (``register``/``unregister`` below, ``blender_manifest.toml``)
and the Python package ``lattice_talk``. Importing it loads nothing heavy: Blender modules are imported
only when Blender registers the add-on, the compute core only when an operator runs.
"""

__version__ = "0.1.0"


def _classes() -> tuple:
    # Order matters: operators before the panels that draw their buttons.
    from .operators.add_head import LATTICETALK_OT_add_head
    from .panels.sidebar import LATTICETALK_PT_head

    return (LATTICETALK_OT_add_head, LATTICETALK_PT_head)


def register() -> None:
    import bpy

    for cls in _classes():
        bpy.utils.register_class(cls)


def unregister() -> None:
    import bpy

    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
