"""LatticeTalk: speech (and a reference video) → editable FLAME face animation.

This folder is both the Blender extension (``register``/``unregister`` below, ``blender_manifest.toml``)
and the Python package ``lattice_talk``. Importing it loads nothing heavy: Blender modules are imported
only when Blender registers the add-on, the compute core only when an operator runs.
"""

from .core.version import __version__  # noqa: F401 (the package's version)


def _classes() -> tuple:
    # Order matters: property groups before the properties that point at them, operators before the
    # panels that draw their buttons. Unregistered in reverse.
    from . import props
    from .operators import character, install_deps
    from .operators.add_head import LATTICETALK_OT_add_head
    from .operators.generate import LATTICETALK_OT_cancel_generation, LATTICETALK_OT_generate_from_audio
    from .operators.takes import LATTICETALK_OT_apply_clip, LATTICETALK_OT_mute_take, LATTICETALK_OT_remove_take
    from .panels import sidebar
    from .preferences import LATTICETALK_AddonPreferences

    return (
        *props.CLASSES,
        LATTICETALK_OT_add_head,
        LATTICETALK_OT_apply_clip,
        LATTICETALK_OT_remove_take,
        LATTICETALK_OT_mute_take,
        LATTICETALK_OT_generate_from_audio,
        LATTICETALK_OT_cancel_generation,
        *character.CLASSES,
        *sidebar.CLASSES,
        install_deps.LatticeTalkInstallState,
        install_deps.LATTICETALK_OT_install_dependencies,
        LATTICETALK_AddonPreferences,
    )


def register() -> None:
    import bpy

    from . import props
    from .operators import generate, install_deps

    for cls in _classes():
        bpy.utils.register_class(cls)
    props.attach()
    install_deps.register_window_manager_properties()
    install_deps.ensure_site_packages_on_path()  # dependencies installed earlier; never raises
    generate.register_handlers()


def unregister() -> None:
    import bpy

    from . import props
    from .operators import generate, install_deps

    generate.unregister_handlers()  # stops running jobs first
    install_deps.cancel_running_install()
    install_deps.unregister_window_manager_properties()
    props.detach()
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
