"""Add-on preferences and *Install Dependencies* in real Blender (the bpy wheel; 4.2 LTS and 5.x).

Nothing here touches the network: pip runs only with ``--no-index --find-links`` on a wheel written
by the test itself, and the online-access refusal is checked with ``subprocess.Popen`` booby-trapped.
The pip side itself (command line, output parsing, the worker) is tested without Blender in
test_pip_install.py.
"""

from __future__ import annotations

import builtins
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy", reason="preference tests need the bpy wheel (pip install -c constraints.txt bpy)")

from lattice_talk import preferences as prefs_mod  # noqa: E402
from lattice_talk.operators import install_deps  # noqa: E402
from lattice_talk.core.pip_install import LOG_NAME  # noqa: E402
from lattice_talk.preferences import LATTICETALK_AddonPreferences, get_preferences, get_settings  # noqa: E402
from lattice_talk.core.errors import LatticeTalkError  # noqa: E402
from ui_fixtures import Layout  # noqa: E402
from wheel_fixtures import FAKE, clean_path, write_wheel  # noqa: E402, F401

pytestmark = pytest.mark.blender

REPO = Path(__file__).resolve().parents[1]
CLASSES = (
    install_deps.LatticeTalkInstallState,
    install_deps.LATTICETALK_OT_install_dependencies,
    LATTICETALK_AddonPreferences,
)
HEAVY = {"torch", "transformers", "soundfile", "cv2", "mediapipe"}


def _register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    install_deps.register_window_manager_properties()


def _unregister() -> None:
    install_deps.cancel_running_install()
    install_deps.unregister_window_manager_properties()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)


@pytest.fixture
def registered():
    _register()
    yield
    _unregister()


@pytest.fixture
def as_addon(registered):
    """An entry in ``context.preferences.addons`` as if LatticeTalk were enabled (removed afterwards)."""
    addons = bpy.context.preferences.addons
    addon = addons.new()
    addon.module = prefs_mod.__package__
    yield addon.preferences
    addons.remove(addons[prefs_mod.__package__])


@pytest.fixture
def no_popen(monkeypatch):
    def refuse(*args, **kwargs):
        pytest.fail(f"subprocess.Popen was called: {args!r}")

    monkeypatch.setattr(subprocess, "Popen", refuse)


# -------------------------------------------------------------------------- registration, prefs


def test_classes_register_and_unregister():
    _register()
    try:
        assert LATTICETALK_AddonPreferences.is_registered
        assert LATTICETALK_AddonPreferences.bl_idname == "lattice_talk"
        props = set(LATTICETALK_AddonPreferences.bl_rna.properties.keys())
        assert {"flame_path", "flame_embedding_path", "speech_model_source", "speech_model_path",
                "video_model_source", "video_model_path", "compute_device", "torch_threads"} <= props
        enum_keys = lambda name: set(LATTICETALK_AddonPreferences.bl_rna.properties[name].enum_items.keys())  # noqa: E731
        assert enum_keys("speech_model_source") == {"DEFAULT", "LOCAL"}
        assert enum_keys("video_model_source") == {"INSTALLED", "LEARNED", "LOCAL"}
        assert enum_keys("compute_device") == {"CPU", "CUDA"}
        state = bpy.context.window_manager.lattice_talk_install
        assert (state.running, state.progress, state.status) == (False, 0.0, "")
        assert "install_dependencies" in dir(bpy.ops.lattice_talk)
    finally:
        _unregister()
    assert not LATTICETALK_AddonPreferences.is_registered
    assert not hasattr(bpy.types.WindowManager, "lattice_talk_install")
    _register()  # and again: nothing was left behind
    _unregister()


def test_get_preferences_is_none_when_not_an_installed_addon(registered):
    assert prefs_mod.__package__ not in bpy.context.preferences.addons
    assert get_preferences(bpy.context) is None
    settings = get_settings(bpy.context)
    assert settings == prefs_mod.Settings()
    assert settings.compute_device == "CPU" and settings.speech_model_source == "DEFAULT" and settings.speech_model is None
    assert settings.video_model_source == "INSTALLED" and settings.video_model is None
    assert 1 <= settings.resolved_torch_threads <= 4


def test_get_preferences_when_enabled(as_addon, tmp_path):
    prefs = get_preferences(bpy.context)
    assert isinstance(prefs, LATTICETALK_AddonPreferences)
    assert prefs.speech_model_source == "DEFAULT" and prefs.torch_threads == 0
    prefs.compute_device = "CUDA"
    prefs.torch_threads = 3
    prefs.speech_model_source = "LOCAL"
    with pytest.raises(LatticeTalkError, match="no folder is set"):  # a choice without a folder is one clear error
        get_settings(bpy.context).speech_model
    prefs.speech_model_path = str(tmp_path)
    settings = get_settings(bpy.context)
    assert (settings.compute_device, settings.resolved_torch_threads, settings.speech_model_source) == ("CUDA", 3, "LOCAL")
    assert Path(settings.speech_model) == tmp_path
    from lattice_talk.core.motion.face_models import LEARNED_VIDEO_MODEL_DIR

    prefs.video_model_source = "LEARNED"
    assert Path(get_settings(bpy.context).video_model) == LEARNED_VIDEO_MODEL_DIR
    assert (LEARNED_VIDEO_MODEL_DIR / "video_model.safetensors").is_file()
    prefs.video_model_source = "LOCAL"
    with pytest.raises(LatticeTalkError, match="Video model is 'Trained model folder' but no folder is set"):
        get_settings(bpy.context).video_model
    prefs.video_model_path = str(tmp_path)
    assert Path(get_settings(bpy.context).video_model) == tmp_path


def test_generate_uses_the_speech_model_and_threads_from_the_preferences(as_addon, tmp_path):
    from lattice_talk.core.speech.pipeline import MODEL_DIR
    from lattice_talk.operators.generate import chosen_pipeline
    from pipeline_fixtures import save_tiny_decoder

    def report(kind, message):
        pytest.fail(f"unexpected report {kind}: {message}")

    as_addon.torch_threads = 2
    shipped = chosen_pipeline(bpy.context, "", report)
    assert (shipped.model_dir, shipped.threads) == (MODEL_DIR, 2)
    as_addon.speech_model_source = "LOCAL"
    as_addon.speech_model_path = str(save_tiny_decoder(tmp_path))
    chosen = chosen_pipeline(bpy.context, "", report)
    assert (chosen.model_dir, chosen.threads) == (tmp_path, 2)
    as_addon.speech_model_path = str(tmp_path / "missing")
    with pytest.raises(LatticeTalkError, match="missing: no trained speech model there"):
        chosen_pipeline(bpy.context, "", report)


def test_auto_torch_threads():
    assert [prefs_mod.auto_torch_threads(n) for n in (1, 2, 3, 5, 16)] == [1, 1, 2, 4, 4]


class Drawn:
    """Stands in for the preferences instance inside draw(): real values, a recording layout."""

    def __init__(self, prefs, layout):
        self._prefs, self.layout = prefs, layout

    def __getattr__(self, name):
        return getattr(self._prefs, name)

    def _draw_dependencies(self, box, context):
        return LATTICETALK_AddonPreferences._draw_dependencies(self, box, context)


def draw_log(prefs) -> list:
    log: list = []
    LATTICETALK_AddonPreferences.draw(Drawn(prefs, Layout(log)), bpy.context)
    return log


def test_draw_shows_settings_dependencies_and_button_without_importing(as_addon, monkeypatch):
    real_import = builtins.__import__

    def guarded_import(name, *args, **kwargs):
        assert name.partition(".")[0] not in HEAVY, f"draw() imported {name}"
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", guarded_import)
    for source, video_source, extra in (("DEFAULT", "INSTALLED", None), ("LOCAL", "LOCAL", "speech_model_path")):
        as_addon.speech_model_source, as_addon.video_model_source = source, video_source
        log = draw_log(as_addon)
        props = [e[1] for e in log if e[0] == "prop"]
        assert {"flame_path", "flame_embedding_path", "speech_model_source", "video_model_source", "compute_device",
                "torch_threads"} <= set(props)
        assert (extra in props) if extra else "speech_model_path" not in props
        assert ("video_model_path" in props) == (source == "LOCAL")
    labels = [e[1] for e in log if e[0] == "label"]
    for module in ("torch", "transformers", "soundfile", "cv2", "mediapipe"):
        assert any(text.startswith(module) and text.endswith(("found", "missing")) for text in labels), module
    assert any(text.startswith("Install folder: ") for text in labels)
    assert any(e[0] == "operator" and e[1] == "lattice_talk.install_dependencies" for e in log)

    state = bpy.context.window_manager.lattice_talk_install
    state.running, state.progress, state.status = True, 0.4, "Collecting torch (3 so far)"
    log = draw_log(as_addon)
    assert ("progress", pytest.approx(0.4), "Collecting torch (3 so far)") in log
    assert not any(e[0] == "operator" for e in log)  # no second install while one runs
    state.running, state.error, state.log_path = False, "Installing dependencies failed (pip exit code 1): ERROR: boom.", "/x/log"
    labels = [e[1] for e in draw_log(as_addon) if e[0] == "label"]
    assert any("ERROR: boom" in t for t in labels) and "Log: /x/log" in labels


# ------------------------------------------------------------------------------ install folder


def test_ensure_site_packages_on_path_is_a_noop_for_a_missing_folder(tmp_path, clean_path):
    before = list(sys.path)
    assert install_deps.ensure_site_packages_on_path(tmp_path / "absent") is None
    assert sys.path == before
    assert install_deps.ensure_site_packages_on_path(tmp_path) == tmp_path
    assert install_deps.ensure_site_packages_on_path(tmp_path) == tmp_path
    assert sys.path.count(str(tmp_path)) == 1 and sys.path[: len(before)] == before  # appended once, never first


def test_install_folder_outside_an_extension_is_in_the_user_scripts_folder():
    """Registered directly (not as an extension), Blender refuses the extension folder: the fallback is used."""
    target, is_extension = prefs_mod.site_packages_dir(create=False)
    assert not is_extension and target.name == "lattice_talk_site_packages"
    assert target == Path(bpy.utils.user_resource("SCRIPTS", path="lattice_talk_site_packages"))


# --------------------------------------------------------------------------- online access


def test_online_access_reads_blender(registered):
    assert install_deps._online_access_allowed() is bool(bpy.app.online_access)


def test_refuses_without_online_access_and_runs_nothing(registered, monkeypatch, no_popen, tmp_path):
    monkeypatch.setattr(install_deps, "_online_access_allowed", lambda: False)
    target = tmp_path / "site-packages"
    monkeypatch.setattr(install_deps, "site_packages_dir", lambda create=False: (target, True))
    with pytest.raises(RuntimeError, match=r"Online access is disabled: enable it in Preferences › System › Network, "
                                           r"or install offline with pip install --target .* -c constraints.txt torch"):
        bpy.ops.lattice_talk.install_dependencies()
    assert not target.exists() and not (tmp_path / LOG_NAME).exists()


# ------------------------------------------------------------------------ real pip, offline


def test_operator_installs_offline_from_a_wheel_folder(registered, monkeypatch, clean_path, tmp_path):
    """The operator's execute() (scripts, background): no online access needed with a wheel folder."""
    wheels = tmp_path / "wheels"
    write_wheel(wheels)
    target = tmp_path / "user" / "site-packages"

    def fake_dir(create=False):
        if create:
            target.mkdir(parents=True, exist_ok=True)
        return target, True

    monkeypatch.setattr(install_deps, "_online_access_allowed", lambda: False)
    monkeypatch.setattr(install_deps, "site_packages_dir", fake_dir)
    monkeypatch.setattr(install_deps, "RUNTIME_PACKAGES", (FAKE,))
    assert bpy.ops.lattice_talk.install_dependencies(wheelhouse=str(wheels)) == {"FINISHED"}
    state = bpy.context.window_manager.lattice_talk_install
    assert state.progress == 1.0 and not state.running and state.error == ""
    assert Path(state.log_path) == tmp_path / "user" / LOG_NAME
    assert "--extra-index-url" not in Path(state.log_path).read_text()  # offline: no CPU torch index
    assert importlib.import_module(FAKE).VALUE == 42
