"""Add-on preferences: FLAME files, the speech and video face models, compute device/threads, and the optional
Python dependencies (status + *Install Dependencies*, where they install, whether Blender may go online).

Callers read settings through :func:`get_preferences` (None when LatticeTalk is not enabled as an add-on,
e.g. when tests register the classes directly) or :func:`get_settings` (always a value: the
preferences, or the defaults below).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from .core import pip_install

# A speech model is a decoder and the speech encoder it was trained on (decoder.json names it): an encoder
# alone cannot drive a face, so the choice is the model folder, not the encoder.
SPEECH_MODEL_SOURCES = (
    ("DEFAULT", "Shipped default", "The speech model that ships with LatticeTalk (works offline)"),
    ("LOCAL", "Trained model folder", "A folder made by 'python -m lattice_talk speech train', e.g. a decoder "
     "trained on HuBERT, wav2vec 2.0 or WavLM features (see the README)"),
)
# The video face model turns a reference video's tracked points into the head's units and head pose.
VIDEO_MODEL_SOURCES = (
    ("INSTALLED", "Installed default", "What vendor_models/video/ holds: the retarget baseline unless a learned "
     "model is installed there"),
    ("LEARNED", "Learned (mesh convolution)", "The shipped learned model in vendor_models/video/meshconv: better "
     "expressions and head pose on test renders, but a real speaker's own proportions can read as a raised brow "
     "(see its MODEL_CARD.md)"),
    ("LOCAL", "Trained model folder", "A folder made by 'python -m lattice_talk video train'"),
)
COMPUTE_DEVICES = (
    ("CPU", "CPU", "Run the models on the CPU"),
    ("CUDA", "CUDA GPU", "Run the speech and video models on an NVIDIA GPU (Install Dependencies then installs the CUDA "
     "build of torch); falls back to the CPU with a notice when CUDA is unavailable"),
)


def site_packages_dir(create: bool = False) -> tuple[Path, bool]:
    """``(folder, is_extension_folder)`` where *Install Dependencies* puts packages: the extension's
    ``site-packages`` user folder or, when LatticeTalk is not loaded as an extension, a
    ``lattice_talk_site_packages`` folder in Blender's user scripts folder. Raises
    :class:`~.core.pip_install.InstallError` when the folder cannot be created."""
    return pip_install.resolve_install_folder(
        lambda: bpy.utils.extension_path_user(__package__, path="site-packages", create=create),
        lambda: bpy.utils.user_resource("SCRIPTS", path=pip_install.FALLBACK_FOLDER, create=create),
    )


def online_access_allowed() -> bool:
    """``bpy.app.online_access`` (Blender 4.2+: Preferences › System › Network; False in the bpy
    module and with ``--offline-mode``)."""
    return bool(getattr(bpy.app, "online_access", True))


def auto_torch_threads(cpu_count: int | None = None) -> int:
    """Threads for torch when the preference is 0 (automatic): ``min(4, cores - 1)``, at least 1, so one
    core stays free for Blender's UI."""
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return max(1, min(4, cores - 1))


class LATTICETALK_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    flame_path: StringProperty(
        name="FLAME model",
        subtype="FILE_PATH",
        description="Your FLAME 2020/2023 model file (generic_model.pkl, flame2023.pkl or .npz): what Add Head › FLAME "
                    "opens with",
    )
    flame_embedding_path: StringProperty(
        name="Landmark embedding",
        subtype="FILE_PATH",
        description="FLAME's mediapipe_landmark_embedding.npz: where MediaPipe's face-mesh points sit on the FLAME mesh; "
                    "what Add Head › FLAME opens with (empty: the file of that name beside the model)",
    )
    speech_model_source: EnumProperty(
        name="Speech model",
        items=SPEECH_MODEL_SOURCES,
        default="DEFAULT",
        description="Which speech model turns audio into mouth motion",
    )
    speech_model_path: StringProperty(
        name="Model folder",
        subtype="DIR_PATH",
        description="Folder with decoder.json and decoder.safetensors, made by 'speech train'",
    )
    video_model_source: EnumProperty(
        name="Video model",
        items=VIDEO_MODEL_SOURCES,
        default="INSTALLED",
        description="Which model reads the face and head pose from a reference video",
    )
    video_model_path: StringProperty(
        name="Model folder",
        subtype="DIR_PATH",
        description="Folder with video_model.json and video_model.safetensors, made by 'video train'",
    )
    compute_device: EnumProperty(
        name="Device",
        items=COMPUTE_DEVICES,
        default="CPU",
        description="Where the speech and video models run when generating; CUDA falls back to the CPU with a notice "
                    "when it is unavailable",
    )
    torch_threads: IntProperty(
        name="Threads",
        default=0,
        min=0,
        max=256,
        soft_max=64,
        description="CPU threads for torch; 0 = automatic: min(4, cores − 1), which keeps the UI responsive",
    )

    def draw(self, context):
        layout = self.layout

        box = layout.box()
        box.label(text="Head", icon="USER")
        box.prop(self, "flame_path")
        box.prop(self, "flame_embedding_path")

        box = layout.box()
        box.label(text="Speech model", icon="SPEAKER")
        box.prop(self, "speech_model_source")
        if self.speech_model_source == "LOCAL":
            box.prop(self, "speech_model_path")

        box = layout.box()
        box.label(text="Video model", icon="CAMERA_DATA")
        box.prop(self, "video_model_source")
        if self.video_model_source == "LOCAL":
            box.prop(self, "video_model_path")

        box = layout.box()
        box.label(text="Compute", icon="SETTINGS")
        row = box.row()
        row.prop(self, "compute_device")
        row.prop(self, "torch_threads")
        if self.torch_threads == 0:
            box.label(text=f"Automatic: {auto_torch_threads()} threads", icon="INFO")

        self._draw_dependencies(layout.box(), context)

    def _draw_dependencies(self, box, context) -> None:
        box.label(text="Python dependencies", icon="SCRIPT")
        column = box.column(align=True)
        status = pip_install.dependency_status()  # find_spec only: nothing is imported here
        for module, package, found in status:
            name = module if module == package else f"{module} ({package})"
            column.label(text=f"{name}: {'found' if found else 'missing'}", icon="CHECKMARK" if found else "CANCEL")

        try:
            target, is_extension = site_packages_dir(create=False)
        except pip_install.InstallError as exc:
            box.label(text=str(exc), icon="ERROR")
            target, is_extension = None, False
        if target is not None:
            box.label(text=f"Install folder: {target}", icon="FILE_FOLDER")
            if not is_extension:
                box.label(text="Not installed as an extension: using Blender's user scripts folder", icon="INFO")

        state = getattr(context.window_manager, "lattice_talk_install", None)
        if state is not None and state.running:
            box.progress(factor=state.progress, type="BAR", text=state.status or "Installing…")
            return
        row = box.row()
        row.scale_y = 1.4
        missing = any(not found for _m, _p, found in status)
        row.operator(
            "lattice_talk.install_dependencies",
            text="Install Dependencies" if missing else "Reinstall Dependencies",
            icon="IMPORT",
        )
        if not online_access_allowed():
            box.label(text="Online access is disabled (Preferences › System › Network)", icon="ERROR")
        if state is not None:
            if state.error:
                for line in _wrap(state.error, 110):
                    box.label(text=line)
            elif state.status:
                box.label(text=state.status, icon="INFO")
            if state.log_path:
                box.label(text=f"Log: {state.log_path}", icon="FILE_TEXT")


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [""]


def get_preferences(context=None) -> LATTICETALK_AddonPreferences | None:
    """The add-on preferences, or None when LatticeTalk is not enabled as an add-on (registered by tests
    or scripts directly: ``context.preferences.addons`` has no entry) — then use the defaults."""
    context = context if context is not None else bpy.context
    preferences = getattr(context, "preferences", None)
    if preferences is None:
        return None
    addon = preferences.addons.get(__package__)
    if addon is None:
        return None
    prefs = addon.preferences
    return prefs if isinstance(prefs, LATTICETALK_AddonPreferences) else None


@dataclasses.dataclass(frozen=True)
class Settings:
    """Plain values of the preferences (paths made absolute), or the defaults."""

    flame_path: str = ""
    flame_embedding_path: str = ""
    speech_model_source: str = "DEFAULT"
    speech_model_path: str = ""
    video_model_source: str = "INSTALLED"
    video_model_path: str = ""
    compute_device: str = "CPU"
    torch_threads: int = 0  # 0 = automatic

    @property
    def speech_model(self) -> str | None:
        """The chosen speech model folder, or None for the shipped one."""
        return _local_folder(self.speech_model_source, self.speech_model_path, "Speech model", "the shipped default")

    @property
    def video_model(self) -> str | None:
        """The chosen video face model folder, or None for what ``vendor_models/video/`` holds."""
        if self.video_model_source == "LEARNED":
            from .core.motion.face_models import LEARNED_VIDEO_MODEL_DIR

            return str(LEARNED_VIDEO_MODEL_DIR)
        return _local_folder(self.video_model_source, self.video_model_path, "Video model", "the installed default")

    @property
    def resolved_torch_threads(self) -> int:
        return self.torch_threads if self.torch_threads > 0 else auto_torch_threads()


def _local_folder(source: str, folder: str, setting: str, default: str) -> str | None:
    """The folder of a 'Trained model folder' choice (None for any other choice); no folder set is an error."""
    if source != "LOCAL":
        return None
    if not folder:
        from .core.errors import LatticeTalkError

        raise LatticeTalkError(f"Preferences › LatticeTalk › {setting} is 'Trained model folder' but no folder is set; "
                               f"choose one or switch back to {default}")
    return folder


def get_settings(context=None) -> Settings:
    prefs = get_preferences(context)
    if prefs is None:
        return Settings()

    def path(value: str) -> str:
        return bpy.path.abspath(value) if value else ""

    return Settings(
        flame_path=path(prefs.flame_path),
        flame_embedding_path=path(prefs.flame_embedding_path),
        speech_model_source=prefs.speech_model_source,
        speech_model_path=path(prefs.speech_model_path),
        video_model_source=prefs.video_model_source,
        video_model_path=path(prefs.video_model_path),
        compute_device=prefs.compute_device,
        torch_threads=prefs.torch_threads,
    )
