"""Installing LatticeTalk's optional runtime stack with pip: what to install, the command line, running it.

The heavy packages (torch, transformers, MediaPipe, OpenCV, …) are not bundled with the extension. They are
installed with the running Python's pip into a folder of their own (``--target``), with the versions from
``constraints.txt`` (the one file that pins the stack for CI too), and that folder is then put on
``sys.path`` so no restart is needed.

Everything here is plain Python so it can be tested without Blender: the command line
(:func:`pip_command`), reading pip's output as progress (:func:`parse_progress`), the one-line failure
message (:func:`failure_message`), the worker that runs pip (:class:`PipInstall`) and a synchronous
:func:`install`. Blender's side (which folder, online access, the button) is
``operators/install_deps.py`` and ``preferences.py``. Nothing here imports torch & co.
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
from collections.abc import Callable
from pathlib import Path

# Names only: constraints.txt pins the versions (one file for CI and for Install Dependencies).
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
FALLBACK_FOLDER = "lattice_talk_site_packages"  # in Blender's user scripts folder, when not an extension
LOG_NAME = "install_dependencies.log"
TAIL_LINES = 40  # pip lines kept in memory for the failure message (the log file has all of them)


class InstallError(Exception):
    """The install cannot start (no writable folder, constraints file missing, …): one clear message."""


# ---------------------------------------------------------------------------------------------- paths


def addon_root() -> Path:
    return Path(__file__).resolve().parents[1]


def constraints_path() -> Path:
    return addon_root() / "constraints.txt"


def resolve_install_folder(
    extension_folder: Callable[[], str | None], scripts_folder: Callable[[], str]
) -> tuple[Path, bool]:
    """``(folder, is_extension_folder)``. ``extension_folder()`` gives the extension's own user folder for
    packages: None (or ValueError) when the add-on is not loaded as an extension, "" when the folder could
    not be created. Otherwise ``scripts_folder()`` gives a folder in the user scripts folder ("" when it
    could not be created). Both come from Blender; they are passed in so this stays plain Python."""
    try:
        path = extension_folder()
    except ValueError:  # Blender: "The package does not name an extension"
        path = None
    if path is not None:
        if not path:
            raise InstallError("Could not create the extension's user folder for Python packages (see the console)")
        return Path(path), True
    fallback = scripts_folder()
    if not fallback:
        raise InstallError(f"Could not create {FALLBACK_FOLDER} in Blender's user scripts folder")
    return Path(fallback), False


def add_site_packages(folder: str | os.PathLike) -> Path | None:
    """Add ``folder`` to ``sys.path`` via ``site.addsitedir`` (appended, so the host's own numpy etc. still
    win; ``.pth`` files are honoured). No-op, returning None, when the folder does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    if str(folder) not in sys.path:
        site.addsitedir(str(folder))
    importlib.invalidate_caches()  # find_spec must see packages that appeared since the last lookup
    return folder


def dependency_status(modules: tuple[tuple[str, str], ...] = CHECKED_MODULES) -> list[tuple[str, str, bool]]:
    """``[(import name, package, found)]`` for ``modules``, without importing any of them."""
    status = []
    for module, package in modules:
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
        add_site_packages(target)
    return result
