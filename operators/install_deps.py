"""*Install Dependencies*: the button that pip-installs the pinned runtime stack into the extension's own
user folder.

What to install, the pip command line, reading pip's output and running it live in
``core/pip_install.py`` (plain Python, tested without Blender); this module is the Blender side:

- ``invoke()`` (the button) runs pip in a worker thread; a window-manager timer copies its progress into
  ``WindowManager.lattice_talk_install`` (drawn by the preferences); Esc terminates pip.
- ``execute()`` (scripts, ``blender -b``) runs pip synchronously.
- Nothing touches the network unless online access is allowed (Preferences › System › Network) or a
  local wheel folder is given (``wheelhouse``, which installs with ``--no-index``).
- ``register()`` calls :func:`ensure_site_packages_on_path` so an earlier install is found at startup.

The install folder and the online-access switch come from ``preferences.py``, which also draws the
status; this module imports it, never the other way round. The operator reads them (and
``RUNTIME_PACKAGES``) through this module's names, so tests can replace them here.
"""

from __future__ import annotations

import os
from pathlib import Path

import bpy
from bpy.props import BoolProperty, FloatProperty, PointerProperty, StringProperty

from ..core.pip_install import (
    LOG_NAME,
    RUNTIME_PACKAGES,
    InstallError,
    PipInstall,
    add_site_packages,
    constraints_path,
    offline_command_hint,
    pip_command,
)
from ..preferences import get_preferences, site_packages_dir
from ..preferences import online_access_allowed as _online_access_allowed


def ensure_site_packages_on_path(path: str | os.PathLike | None = None) -> Path | None:
    """Add the install folder (default: :func:`site_packages_dir`) to ``sys.path``; None when it does not
    exist. Safe to call from ``register()``: never raises."""
    try:
        folder = Path(path) if path is not None else site_packages_dir(create=False)[0]
    except (InstallError, OSError, ValueError):
        return None
    return add_site_packages(folder)


_active: PipInstall | None = None  # the one running install (modal), so unregister() can stop it


def cancel_running_install() -> None:
    """Terminate a running install (call from ``unregister()``)."""
    global _active
    if _active is not None and not _active.done:
        _active.cancel()
        _active.join(timeout=10)
    _active = None


class LatticeTalkInstallState(bpy.types.PropertyGroup):
    """Progress of *Install Dependencies*, on ``WindowManager.lattice_talk_install`` (never saved)."""

    running: BoolProperty(name="Running", default=False)
    progress: FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR", default=0.0)
    status: StringProperty(name="Status", default="")
    error: StringProperty(name="Error", default="")
    log_path: StringProperty(name="Log", subtype="FILE_PATH", default="")


def register_window_manager_properties() -> None:
    bpy.types.WindowManager.lattice_talk_install = PointerProperty(type=LatticeTalkInstallState)


def unregister_window_manager_properties() -> None:
    if hasattr(bpy.types.WindowManager, "lattice_talk_install"):
        del bpy.types.WindowManager.lattice_talk_install


def _install_state(context) -> LatticeTalkInstallState | None:
    wm = getattr(context, "window_manager", None)
    return getattr(wm, "lattice_talk_install", None) if wm is not None else None


def _redraw_preferences(context) -> None:
    wm = getattr(context, "window_manager", None)
    for window in getattr(wm, "windows", ()):
        for area in window.screen.areas:
            if area.type in {"PREFERENCES", "VIEW_3D"}:
                area.tag_redraw()


class LATTICETALK_OT_install_dependencies(bpy.types.Operator):
    """Install torch, transformers, soundfile, MediaPipe, OpenCV and PocketSphinx (versions pinned by LatticeTalk) into the extension's own folder. Downloads from the internet"""

    bl_idname = "lattice_talk.install_dependencies"
    bl_label = "Install Dependencies"
    bl_options = {"REGISTER"}

    wheelhouse: StringProperty(
        name="Wheel folder",
        subtype="DIR_PATH",
        description="Install offline from this folder of wheel files (pip --no-index --find-links) instead of downloading",
        options={"SKIP_SAVE"},
    )

    # --- shared set-up
    def _prepare(self, context) -> PipInstall | None:
        packages = RUNTIME_PACKAGES
        wheelhouse = bpy.path.abspath(self.wheelhouse) if self.wheelhouse else ""
        if not wheelhouse and not _online_access_allowed():
            try:
                shown = site_packages_dir(create=False)[0]
            except InstallError:
                shown = "<folder>"
            self.report(
                {"ERROR"},
                "Online access is disabled: enable it in Preferences › System › Network, or install offline with "
                + offline_command_hint(shown, packages),
            )
            return None
        constraints = constraints_path()
        if not constraints.is_file():
            self.report({"ERROR"}, f"{constraints} is missing: reinstall LatticeTalk (the pins for its dependencies live there)")
            return None
        try:
            target, is_extension = site_packages_dir(create=True)
        except InstallError as exc:
            self.report({"ERROR"}, str(exc))
            return None
        if not is_extension:
            self.report({"WARNING"}, f"LatticeTalk is not installed as an extension: installing into {target}")
        prefs = get_preferences(context)
        cpu_only = prefs is None or prefs.compute_device == "CPU"
        extra = ("--no-index", "--find-links", wheelhouse) if wheelhouse else ()
        command = pip_command(target, constraints, packages, cpu_only=cpu_only and not wheelhouse, extra_args=extra)
        self._target = target
        return PipInstall(command, target.parent / LOG_NAME)

    def _publish(self, context, job: PipInstall) -> None:
        state = _install_state(context)
        if state is None:
            return
        snap = job.snapshot()
        state.running = not job.done
        state.progress = snap.fraction
        state.status = snap.status + ("" if job.done else "  (Esc to cancel)")
        state.log_path = str(job.log_path)
        if job.result is not None:
            state.error = "" if job.result.ok or job.result.cancelled else job.result.message
            if job.result.cancelled:
                state.status = "Cancelled"

    def _finish(self, context, job: PipInstall) -> set[str]:
        result = job.result
        assert result is not None
        self._publish(context, job)
        if result.ok:
            ensure_site_packages_on_path(self._target)
            self.report({"INFO"}, f"{result.message}; no restart needed")
            return {"FINISHED"}
        if result.cancelled:
            self.report({"WARNING"}, result.message)
        else:
            self.report({"ERROR"}, result.message)
        return {"CANCELLED"}

    def _already_running(self) -> bool:
        if _active is not None and not _active.done:
            self.report({"ERROR"}, "Dependencies are already being installed")
            return True
        return False

    # --- synchronous (scripts, background)
    def execute(self, context):
        job = None if self._already_running() else self._prepare(context)
        if job is None:
            return {"CANCELLED"}
        job.run()
        return self._finish(context, job)

    # --- modal (the button)
    def invoke(self, context, event):
        global _active
        job = None if self._already_running() else self._prepare(context)
        if job is None:
            return {"CANCELLED"}
        _active = job.start()
        self._job = job
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.2, window=context.window)
        wm.modal_handler_add(self)
        self._publish(context, job)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = self._job
        if event.type == "ESC" and event.value == "PRESS" and not job.done:
            job.cancel()
            job.join(timeout=10)
        if event.type == "TIMER" or job.done:
            self._publish(context, job)
            _redraw_preferences(context)
        if job.done:
            self._stop(context)
            return self._finish(context, job)
        return {"PASS_THROUGH"}

    def cancel(self, context):  # Blender cancels modal operators on file load / window close
        job = getattr(self, "_job", None)
        if job is not None and not job.done:
            job.cancel()
            job.join(timeout=10)
        self._stop(context)

    def _stop(self, context) -> None:
        global _active
        timer = getattr(self, "_timer", None)
        if timer is not None:
            context.window_manager.event_timer_remove(timer)
            self._timer = None
        if _active is getattr(self, "_job", None):
            _active = None
        state = _install_state(context)
        if state is not None:
            state.running = False
