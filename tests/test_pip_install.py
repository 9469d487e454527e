"""Installing the optional runtime stack with pip (core/pip_install.py), without Blender.

The command line, the reading of pip's output and the failure message are checked on captured pip
text; the worker runs the real pip of this Python, offline only (``--no-index --find-links`` on a wheel
written by the test itself).
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import tomllib
from pathlib import Path

import pytest

from lattice_talk.core import pip_install
from lattice_talk.core.pip_install import (
    LOG_NAME,
    RUNTIME_PACKAGES,
    TORCH_CPU_INDEX,
    InstallError,
    PipInstall,
    ProgressState,
    add_site_packages,
    dependency_status,
    failure_message,
    install,
    offline_command_hint,
    parse_progress,
    pip_command,
    pip_environment,
    resolve_install_folder,
)
from wheel_fixtures import FAKE, clean_path, write_wheel  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
OFFLINE = lambda wheels: ["--no-index", "--find-links", str(wheels)]  # noqa: E731


# ------------------------------------------------------------------------------ the command line


def test_pip_command():
    cmd = pip_command("/t/site-packages", "/a/constraints.txt", ("torch", "tqdm"), cpu_only=True)
    assert cmd == [sys.executable, "-m", "pip", "install", "--target", "/t/site-packages", "--upgrade",
                   "-c", "/a/constraints.txt", "--extra-index-url", TORCH_CPU_INDEX, "torch", "tqdm"]
    cmd = pip_command(Path("/t"), Path("/c.txt"), ["x"], cpu_only=False, extra_args=("--no-index", "--find-links", "/w"))
    assert cmd == [sys.executable, "-m", "pip", "install", "--target", "/t", "--upgrade", "-c", "/c.txt",
                   "--no-index", "--find-links", "/w", "x"]
    default = pip_command("/t", "/c")
    assert default[-11:] == ["torch", "transformers", "soundfile", "scipy", "safetensors", "tqdm", "threadpoolctl",
                             "mediapipe", "opencv-contrib-python", "av", "pocketsphinx"]
    assert not any("==" in a for a in default)  # versions come from the constraints file only


def test_offline_hint_names_the_folder_and_the_packages():
    hint = offline_command_hint("/u/site-packages", ("torch", "av"))
    assert hint == 'pip install --target "/u/site-packages" -c constraints.txt torch av'


def test_constraints_pin_every_runtime_package_and_ship_with_the_extension():
    assert pip_install.constraints_path() == REPO / "constraints.txt"
    pinned = {line.split("==")[0].strip().lower() for line in pip_install.constraints_path().read_text().splitlines()
              if "==" in line and not line.lstrip().startswith("#")}
    assert set(RUNTIME_PACKAGES) <= pinned
    manifest = tomllib.loads((REPO / "blender_manifest.toml").read_text())
    network = manifest["permissions"]["network"]
    assert len(network) <= 64 and not network.endswith(".")
    assert "constraints.txt" not in manifest["build"]["paths_exclude_pattern"]  # Install Dependencies reads it


def test_pip_environment_keeps_the_caller_env_and_silences_prompts(monkeypatch):
    monkeypatch.setenv("LT_SOME_VAR", "kept")
    monkeypatch.delenv("PIP_NO_INPUT", raising=False)
    env = pip_environment()
    assert env["LT_SOME_VAR"] == "kept"
    assert (env["PYTHONUNBUFFERED"], env["PIP_NO_INPUT"], env["PIP_PROGRESS_BAR"]) == ("1", "1", "off")
    assert "PIP_NO_INPUT" not in os.environ  # the caller's environment itself is left alone


# ---------------------------------------------------------------------------------- pip's output


PIP_OUTPUT = """\
Looking in indexes: https://pypi.org/simple, https://download.pytorch.org/whl/cpu
Collecting torch
  Downloading https://download.pytorch.org/whl/cpu/torch-2.13.0%2Bcpu-cp311-cp311-linux_x86_64.whl (190.4 MB)
Collecting transformers
  Using cached transformers-5.23.0-py3-none-any.whl (10.1 MB)
Requirement already satisfied: numpy in ./site-packages (from torch) (1.26.4)
Collecting filelock (from torch)
  Downloading filelock-3.16.1-py3-none-any.whl (16 kB)
Installing collected packages: filelock, numpy, torch, transformers
Successfully installed filelock-3.16.1 numpy-1.26.4 torch-2.13.0+cpu transformers-5.23.0
"""


def test_parse_progress_advances_on_pip_output():
    state = ProgressState()
    fractions, statuses = [], []
    for line in PIP_OUTPUT.splitlines(keepends=True):
        state = parse_progress(line, state)
        fractions.append(state.fraction)
        statuses.append(state.status)
    assert fractions == sorted(fractions) and fractions[0] == 0.0
    assert 0.0 < fractions[1] < fractions[3] < fractions[6] <= 0.6  # each "Collecting" moves the bar
    assert statuses[1].startswith("Collecting torch") and statuses[2] == "Downloading torch-2.13.0%2Bcpu-cp311-cp311-linux_x86_64.whl (190.4 MB)"
    assert statuses[3].startswith("Collecting transformers") and statuses[4].startswith("Using cached transformers")
    assert statuses[5] == "Found numpy (3 so far)"
    assert state.collected == 4
    assert fractions[-2] == pytest.approx(0.7) and statuses[-2] == "Installing 4 packages…"
    assert state.phase == "done" and state.fraction == 1.0 and "torch-2.13.0+cpu" in state.installed
    same = ProgressState(fraction=0.3, phase="collecting")
    assert parse_progress("WARNING: something unrelated\n", same) is same
    assert parse_progress("Collecting more", ProgressState(fraction=1.0, phase="done")).fraction == 1.0


def test_parse_progress_on_a_source_build_and_windows_line_ends():
    state = parse_progress("Collecting pocketsphinx\r\n", ProgressState())
    assert state.status == "Collecting pocketsphinx (1 so far)" and state.phase == "collecting"
    state = parse_progress("  Building wheel for pocketsphinx (pyproject.toml) ... done\n", state)
    assert state.status == "Building pocketsphinx" and state.collected == 1
    state = parse_progress("  Downloading pocketsphinx-5.0.3.tar.gz\n", state)  # no size given
    assert state.status == "Downloading pocketsphinx-5.0.3.tar.gz"


def test_failure_message_is_one_clear_line():
    tail = ["Collecting nothere", "ERROR: Could not find a version that satisfies the requirement nothere (from versions: none)",
            "ERROR: No matching distribution found for nothere", ""]
    msg = failure_message(1, tail, "/u/lattice_talk/install_dependencies.log")
    assert msg.startswith("Installing dependencies failed (pip exit code 1): ERROR: Could not find a version")
    assert "No matching distribution found for nothere" in msg and "Collecting nothere" not in msg
    assert "may not exist for this platform" in msg
    assert msg.endswith("Full log: /u/lattice_talk/install_dependencies.log") and "\n" not in msg
    assert "ensurepip" in failure_message(1, [f"{sys.executable}: No module named pip"], "/l")
    assert "pip not started" in failure_message(None, ["ERROR: could not start pip: [Errno 2]"], "/l")
    assert "no output" in failure_message(2, [], None)


@pytest.mark.parametrize("said, hint", [
    ("WARNING: Retrying ... NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection>: Failed to "
     "establish a new connection: [Errno -3] Temporary failure in name resolution')", "internet connection"),
    ("ERROR: Could not install packages due to an OSError: [Errno 13] Permission denied: '/usr/x'", "writable"),
    ("ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device", "disk has space"),
])
def test_failure_message_hints_at_the_usual_causes(said, hint):
    msg = failure_message(1, ["Collecting torch", said], "/l")
    assert hint in msg and msg.endswith("Full log: /l")


# --------------------------------------------------------------------------------- where it goes


def test_install_folder_prefers_the_extension_folder(tmp_path):
    def never():
        pytest.fail("the scripts folder is only asked when the add-on is not an extension")

    assert resolve_install_folder(lambda: str(tmp_path / "ext"), never) == (tmp_path / "ext", True)


def test_install_folder_falls_back_outside_an_extension(tmp_path):
    def not_an_extension():
        raise ValueError("The package does not name an extension")

    fallback = lambda: str(tmp_path / pip_install.FALLBACK_FOLDER)  # noqa: E731
    assert resolve_install_folder(not_an_extension, fallback) == (tmp_path / pip_install.FALLBACK_FOLDER, False)
    assert resolve_install_folder(lambda: None, fallback) == (tmp_path / pip_install.FALLBACK_FOLDER, False)


def test_install_folder_that_cannot_be_created_is_one_error():
    with pytest.raises(InstallError, match="Could not create the extension's user folder"):
        resolve_install_folder(lambda: "", lambda: "/unused")
    with pytest.raises(InstallError, match="Could not create lattice_talk_site_packages"):
        resolve_install_folder(lambda: None, lambda: "")


def test_add_site_packages_is_a_noop_for_a_missing_folder(tmp_path, clean_path):
    before = list(sys.path)
    assert add_site_packages(tmp_path / "absent") is None
    assert sys.path == before
    assert add_site_packages(str(tmp_path)) == tmp_path
    assert add_site_packages(tmp_path) == tmp_path
    assert sys.path.count(str(tmp_path)) == 1 and sys.path[: len(before)] == before  # appended once, never first


def test_dependency_status_finds_without_importing(tmp_path, clean_path):
    (tmp_path / FAKE).mkdir()
    (tmp_path / FAKE / "__init__.py").write_text("raise RuntimeError('imported')\n")
    add_site_packages(tmp_path)
    status = dependency_status(((FAKE, "lt-fake"), ("lt_surely_absent_module", "lt-absent"), ("json", "json")))
    assert status == [(FAKE, "lt-fake", True), ("lt_surely_absent_module", "lt-absent", False), ("json", "json", True)]
    assert FAKE not in sys.modules
    assert [module for module, _package, _found in dependency_status()] == [m for m, _p in pip_install.CHECKED_MODULES]


# ------------------------------------------------------------------------------ real pip, offline


def test_end_to_end_install_from_a_local_wheel(tmp_path, clean_path):
    wheels = tmp_path / "wheels"
    write_wheel(wheels)
    target = tmp_path / "user" / "site-packages"
    result = install(target, packages=[FAKE], cpu_only=False, extra_args=OFFLINE(wheels))
    assert result.ok, result.message + "\n" + "\n".join(result.tail)
    assert result.message == f"Dependencies installed into {target}" and result.returncode == 0
    assert result.installed == (f"{FAKE}-0.1",)  # read from pip's own "Successfully installed" line
    assert (target / FAKE / "__init__.py").is_file()
    log = (tmp_path / "user" / LOG_NAME).read_text()
    assert log.startswith(f"$ {sys.executable} -m pip install --target {target}")
    assert "--no-index" in log and "Successfully installed" in log and "[pip exit code 0]" in log
    assert str(target) in sys.path
    module = importlib.import_module(FAKE)
    assert module.VALUE == 42 and Path(module.__file__).is_relative_to(target)


def test_the_constraints_file_picks_the_version(tmp_path, clean_path):
    wheels = tmp_path / "wheels"
    for version in ("0.1", "0.2", "0.3"):
        write_wheel(wheels, version=version)
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(f"# pins\n{FAKE}==0.2\n")
    target = tmp_path / "user" / "site-packages"
    result = install(target, packages=[FAKE], cpu_only=False, extra_args=OFFLINE(wheels), constraints=constraints,
                     add_to_path=False)
    assert result.ok, result.message
    assert result.installed == (f"{FAKE}-0.2",)
    assert "VERSION = '0.2'" in (target / FAKE / "__init__.py").read_text()
    assert str(target) not in sys.path


def test_failed_install_gives_one_message_with_the_log(tmp_path, clean_path):
    wheels = tmp_path / "wheels"
    write_wheel(wheels)
    target = tmp_path / "user" / "site-packages"
    result = install(target, packages=["lt_not_in_the_wheel_folder"], cpu_only=False, extra_args=OFFLINE(wheels))
    assert not result.ok and not result.cancelled and result.returncode not in (0, None)
    assert result.message.startswith("Installing dependencies failed (pip exit code")
    assert "lt_not_in_the_wheel_folder" in result.message
    assert result.message.endswith(f"Full log: {tmp_path / 'user' / LOG_NAME}")
    assert (tmp_path / "user" / LOG_NAME).is_file()
    assert str(target) not in sys.path


def test_pip_that_cannot_start_is_reported(tmp_path):
    missing = tmp_path / "no-such-python"
    result = PipInstall([str(missing), "-m", "pip", "install", "x"], tmp_path / LOG_NAME).run()
    assert not result.ok and result.returncode is None
    assert result.message.startswith("Installing dependencies failed (pip not started): ERROR: could not start pip")
    assert "could not start pip" in (tmp_path / LOG_NAME).read_text()


def test_an_unwritable_log_folder_is_reported(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = PipInstall([sys.executable, "-c", "pass"], blocker / "logs" / LOG_NAME).run()
    assert not result.ok and result.returncode is None
    assert "Installing dependencies failed (pip not started): ERROR:" in result.message


def test_cancel_terminates_pip(tmp_path):
    script = "print('Collecting slowpackage', flush=True); import time; time.sleep(120)"
    job = PipInstall([sys.executable, "-c", script], tmp_path / LOG_NAME).start()
    deadline = time.monotonic() + 30
    while job.snapshot().phase != "collecting" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.snapshot().status.startswith("Collecting slowpackage")
    started = time.monotonic()
    job.cancel()
    job.join(timeout=30)
    assert job.done and time.monotonic() - started < 10
    assert job.result.cancelled and not job.result.ok
    assert "cancelled" in job.result.message
