"""*Install Dependencies*: pip-install the pinned runtime stack into the extension's own user folder.

The heavy packages (torch, transformers, MediaPipe, OpenCV, …) are not bundled with the extension. This
operator runs Blender's own Python's pip with ``--target <extension user folder>/site-packages`` and
``-c constraints.txt`` (the one file that pins the stack for CI too), then puts that folder on
``sys.path`` so no restart is needed. ``register()`` calls :func:`ensure_site_packages_on_path` so an
earlier install is found at startup.

- ``invoke()`` (the button) runs pip in a worker thread; a window-manager timer copies its progress into
  ``WindowManager.lattice_talk_install`` (drawn by the preferences); Esc terminates pip.
- ``execute()`` (scripts, ``blender -b``) runs pip synchronously.
- Nothing touches the network unless online access is allowed (Preferences › System › Network) or a
  local wheel folder is given (``wheelhouse``, which installs with ``--no-index``).

The command building (:func:`pip_command`), pip-output parsing (:func:`parse_progress`) and the failure
message (:func:`failure_message`) are pure functions. Nothing here imports torch & co.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib
import importlib.util
import os
import re
import shlex
import site
import subprocess
import sys
import threading
from pathlib import Path

import bpy
from bpy.props import BoolProperty, FloatProperty, PointerProperty, StringProperty

# Names only: constraints.txt pins the versions (one file for CI and for this button).
RUNTIME_PACKAGES: tuple[str, ...] = (
    "torch",
    "transformers",
    "soundfile",
    "scipy",
    "safetensors",
    "tqdm",
    "threadpoolctl",
    "mediapipe",
    "opencv-contrib-python",
    "av",  # a reference video's sound track, for the audio/video offset
    "pocketsphinx",  # transcript mode: forced alignment of the line's words (optional; not checked below)
)
# (import name, what provides it) — checked with importlib.util.find_spec, never imported here.
CHECKED_MODULES: tuple[tuple[str, str], ...] = (
    ("torch", "torch"),
    ("transformers", "transformers"),
    ("soundfile", "soundfile"),
    ("cv2", "opencv-contrib-python"),
    ("mediapipe", "mediapipe"),
    ("av", "av"),
)
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
FALLBACK_FOLDER = "lattice_talk_site_packages"  # under Blender's user scripts folder, when not an extension
LOG_NAME = "install_dependencies.log"
TAIL_LINES = 40  # pip lines kept in memory for the failure message (the log file has all of them)

_ROOT_PACKAGE = (__package__ or "").rpartition(".")[0]  # "lattice_talk" or "bl_ext.<repo>.lattice_talk"


class InstallError(Exception):
    """The install cannot start (no writable folder, constraints file missing, …): one clear message."""


# ---------------------------------------------------------------------------------------------- paths


def addon_root() -> Path:
    return Path(__file__).resolve().parents[1]


def constraints_path() -> Path:
    return addon_root() / "constraints.txt"


def site_packages_dir(create: bool = False) -> tuple[Path, bool]:
    """``(folder, is_extension_folder)``: the extension's ``site-packages`` user folder, or — when this
    package is not loaded as an extension (``bpy.utils.extension_path_user`` refuses it) — a
    ``lattice_talk_site_packages`` folder in Blender's user scripts folder."""
    try:
        path = bpy.utils.extension_path_user(_ROOT_PACKAGE, path="site-packages", create=create)
    except ValueError:  # "The package does not name an extension"
        path = None
    if path is not None:
        if not path:  # extension_path_user returns "" when it could not create the folder
            raise InstallError("Could not create the extension's user folder for Python packages (see the console)")
        return Path(path), True
    fallback = bpy.utils.user_resource("SCRIPTS", path=FALLBACK_FOLDER, create=create)
    if not fallback:
        raise InstallError(f"Could not create {FALLBACK_FOLDER} in Blender's user scripts folder")
    return Path(fallback), False


def ensure_site_packages_on_path(path: str | os.PathLike | None = None) -> Path | None:
    """Add the install folder (default: :func:`site_packages_dir`) to ``sys.path`` via ``site.addsitedir``
    (appended, so Blender's own numpy etc. still win; ``.pth`` files are honoured). No-op, returning
    None, when the folder does not exist. Safe to call from ``register()``: never raises."""
    try:
        folder = Path(path) if path is not None else site_packages_dir(create=False)[0]
    except (InstallError, OSError, ValueError):
        return None
    if not folder.is_dir():
        return None
    if str(folder) not in sys.path:
        site.addsitedir(str(folder))
    importlib.invalidate_caches()  # find_spec must see packages that appeared since the last lookup
    return folder


def dependency_status() -> list[tuple[str, str, bool]]:
    """``[(import name, package, found)]`` for the runtime modules, without importing any of them."""
    status = []
    for module, package in CHECKED_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        status.append((module, package, found))
    return status


# --------------------------------------------------------------------------------- pure pip helpers


def pip_command(
    target: str | os.PathLike,
    constraints: str | os.PathLike,
    packages: tuple[str, ...] | list[str] = RUNTIME_PACKAGES,
    cpu_only: bool = True,
    extra_args: tuple[str, ...] | list[str] = (),
) -> list[str]:
    """The pip command line: Blender's own Python, ``--target`` the add-on's folder, versions from the
    constraints file, the CPU torch index when ``cpu_only`` (so torch is the small CPU build)."""
    cmd = [sys.executable, "-m", "pip", "install", "--target", str(target), "--upgrade", "-c", str(constraints)]
    if cpu_only:
        cmd += ["--extra-index-url", TORCH_CPU_INDEX]
    cmd += [str(a) for a in extra_args]
    cmd += [str(p) for p in packages]
    return cmd


def offline_command_hint(target: str | os.PathLike, packages=RUNTIME_PACKAGES) -> str:
    return f'pip install --target "{target}" -c constraints.txt ' + " ".join(packages)


@dataclasses.dataclass(frozen=True)
class ProgressState:
    """What the UI shows: ``fraction`` in 0..1 only ever grows; ``phase`` is start → collecting →
    installing → done."""

    fraction: float = 0.0
    status: str = "Starting pip…"
    phase: str = "start"
    collected: int = 0
    installed: tuple[str, ...] = ()


_COLLECT_SHARE = 0.6  # resolving/downloading; pip does not say how many packages there will be
_INSTALL_START = 0.7
_RE_COLLECTING = re.compile(r"^\s*Collecting (\S+)")
_RE_SATISFIED = re.compile(r"^\s*Requirement already satisfied: (\S+)")
_RE_DOWNLOADING = re.compile(r"^\s*Downloading (\S+)(?:\s+\(([^)]*)\))?")
_RE_CACHED = re.compile(r"^\s*Using cached (\S+)")
_RE_BUILDING = re.compile(r"^\s*Building wheels? for (\S+)")
_RE_INSTALLING = re.compile(r"^\s*Installing collected packages: (.+)$")
_RE_SUCCESS = re.compile(r"^\s*Successfully installed (.+)$")


def _file_name(url_or_name: str) -> str:
    return url_or_name.rstrip("/").rsplit("/", 1)[-1].split("#", 1)[0]


def parse_progress(line: str, state: ProgressState) -> ProgressState:
    """Advance ``state`` by one line of pip output (returns a new state, or ``state`` itself when the
    line says nothing about progress). "Collecting"/"Requirement already satisfied" move the bar
    towards 60 % (asymptotically: the number of dependencies is not known up front), "Installing
    collected packages" jumps to 70 %, "Successfully installed" to 100 %."""
    line = line.rstrip("\r\n")
    if state.phase == "done":
        return state
    m = _RE_COLLECTING.match(line) or _RE_SATISFIED.match(line)
    if m:
        n = state.collected + 1
        fraction = max(state.fraction, _COLLECT_SHARE * (1.0 - 0.85**n))
        verb = "Collecting" if line.lstrip().startswith("Collecting") else "Found"
        return dataclasses.replace(state, fraction=fraction, status=f"{verb} {m.group(1)} ({n} so far)", phase="collecting", collected=n)
    m = _RE_DOWNLOADING.match(line)
    if m:
        size = f" ({m.group(2)})" if m.group(2) else ""
        return dataclasses.replace(state, status=f"Downloading {_file_name(m.group(1))}{size}")
    m = _RE_CACHED.match(line)
    if m:
        return dataclasses.replace(state, status=f"Using cached {_file_name(m.group(1))}")
    m = _RE_BUILDING.match(line)
    if m:
        return dataclasses.replace(state, status=f"Building {m.group(1)}")
    m = _RE_INSTALLING.match(line)
    if m:
        names = tuple(n.strip() for n in m.group(1).split(",") if n.strip())
        return dataclasses.replace(
            state, fraction=max(state.fraction, _INSTALL_START), status=f"Installing {len(names)} packages…", phase="installing"
        )
    m = _RE_SUCCESS.match(line)
    if m:
        installed = tuple(m.group(1).split())
        return dataclasses.replace(state, fraction=1.0, status=f"Installed {len(installed)} packages", phase="done", installed=installed)
    return state


def failure_message(returncode: int | None, tail: list[str] | tuple[str, ...], log_path: str | os.PathLike | None) -> str:
    """One line for the user: what pip said last (its ERROR lines when there are any), a hint for the
    usual causes, and where the full log is."""
    lines = [ln.strip() for ln in tail if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    shown = (errors or lines)[-3:]
    said = " | ".join(shown) if shown else "no output"
    text = "\n".join(lines)
    hint = ""
    if "No module named pip" in text:
        hint = f" Blender's Python has no pip: run '{sys.executable} -m ensurepip' once."
    elif any(s in text for s in ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable", "ProxyError")):
        hint = " Check the internet connection (or proxy settings)."
    elif "No matching distribution found" in text or "Could not find a version" in text:
        hint = " A pinned version may not exist for this platform/Python."
    elif "Permission denied" in text or "No space left" in text:
        hint = " Check that the install folder is writable and the disk has space."
    code = "not started" if returncode is None else f"exit code {returncode}"
    where = f" Full log: {log_path}" if log_path else ""
    return f"Installing dependencies failed (pip {code}): {said}.{hint}{where}"


# -------------------------------------------------------------------------------------- the worker


@dataclasses.dataclass(frozen=True)
class InstallResult:
    ok: bool
    cancelled: bool
    returncode: int | None
    tail: tuple[str, ...]
    log_path: Path
    message: str
    installed: tuple[str, ...] = ()


class PipInstall:
    """Runs one pip command, writing every line to ``log_path`` and parsing progress as it goes.

    ``run()`` blocks; ``start()`` runs it in a daemon thread (poll ``snapshot()``/``done``/``result``);
    ``cancel()`` terminates pip from any thread."""

    def __init__(self, command: list[str], log_path: str | os.PathLike, env: dict | None = None):
        self.command = list(command)
        self.log_path = Path(log_path)
        self.env = env if env is not None else pip_environment()
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._state = ProgressState()
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self.result: InstallResult | None = None

    # --- control
    def start(self) -> "PipInstall":
        self._thread = threading.Thread(target=self.run, name="lattice_talk-pip", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def done(self) -> bool:
        return self.result is not None

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def snapshot(self) -> ProgressState:
        with self._lock:
            return self._state

    # --- work
    def run(self) -> InstallResult:
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        returncode = None
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "w", encoding="utf-8") as log:
                log.write("$ " + shlex.join(self.command) + "\n")
                log.flush()
                try:
                    proc = subprocess.Popen(
                        self.command,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                        encoding="utf-8",
                        errors="replace",
                        bufsize=1,
                        env=self.env,
                    )
                except OSError as exc:
                    tail.append(f"ERROR: could not start pip: {exc}")
                    log.write(tail[-1] + "\n")
                else:
                    with self._lock:
                        self._proc = proc
                    if self._cancel.is_set():
                        proc.terminate()
                    assert proc.stdout is not None
                    for line in proc.stdout:  # universal newlines: progress-bar "\r" fragments become lines
                        log.write(line)
                        tail.append(line.rstrip("\r\n"))
                        with self._lock:
                            self._state = parse_progress(line, self._state)
                    try:
                        returncode = proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        returncode = proc.wait()
                    log.write(f"[pip exit code {returncode}]\n")
        except OSError as exc:  # the log folder is not writable, …
            tail.append(f"ERROR: {exc}")
        cancelled = self._cancel.is_set()
        ok = returncode == 0 and not cancelled
        if ok:
            target = self.command[self.command.index("--target") + 1] if "--target" in self.command else "the target folder"
            message = f"Dependencies installed into {target}"
        elif cancelled:
            message = f"Installing dependencies was cancelled; partly installed files may remain. Log: {self.log_path}"
        else:
            message = failure_message(returncode, list(tail), self.log_path)
        state = self.snapshot()
        if ok:
            state = dataclasses.replace(state, fraction=1.0, phase="done", status=state.status if state.phase == "done" else "Done")
        with self._lock:
            self._state = state
        self.result = InstallResult(ok, cancelled, returncode, tuple(tail), self.log_path, message, state.installed)
        return self.result


def pip_environment() -> dict:
    env = dict(os.environ)
    env.update(
        PYTHONUNBUFFERED="1",  # lines arrive as pip prints them
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_PROGRESS_BAR="off",
        PIP_REQUIRE_VIRTUALENV="0",
    )
    return env


def install(
    target: str | os.PathLike,
    packages: tuple[str, ...] | list[str] = RUNTIME_PACKAGES,
    cpu_only: bool = True,
    extra_args: tuple[str, ...] | list[str] = (),
    constraints: str | os.PathLike | None = None,
    add_to_path: bool = True,
) -> InstallResult:
    """Install synchronously into ``target`` (log in ``target``'s parent folder); on success add
    ``target`` to ``sys.path``. ``extra_args`` go to pip (e.g. ``--no-index --find-links DIR``)."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    constraints = Path(constraints) if constraints is not None else constraints_path()
    job = PipInstall(pip_command(target, constraints, packages, cpu_only, extra_args), target.parent / LOG_NAME)
    result = job.run()
    if result.ok and add_to_path:
        ensure_site_packages_on_path(target)
    return result


# ------------------------------------------------------------------------------------ Blender side


def _online_access_allowed() -> bool:
    """``bpy.app.online_access`` (Blender 4.2+: Preferences › System › Network; False in the bpy
    module and with ``--offline-mode``). Wrapped so tests can switch it."""
    return bool(getattr(bpy.app, "online_access", True))


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
        from ..preferences import get_preferences

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
