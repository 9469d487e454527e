"""The sidebar draws headless from real scene state: missing dependencies, progress, takes."""

from __future__ import annotations

import types

import pytest

bpy = pytest.importorskip("bpy", reason="panel tests need the bpy wheel")

import lattice_talk  # noqa: E402
from clip_fixtures import make_clip  # noqa: E402
from lattice_talk.core.heads import create  # noqa: E402
from lattice_talk.panels import sidebar  # noqa: E402
from ui_fixtures import Layout  # noqa: E402

pytestmark = pytest.mark.blender


def draw(panel_cls) -> list:
    log: list = []
    panel_cls.draw(types.SimpleNamespace(layout=Layout(log)), bpy.context)
    return log


def test_generate_panel_without_speech_dependencies(addon, monkeypatch):
    monkeypatch.setattr(sidebar.importlib.util, "find_spec", lambda name: None)
    log = draw(sidebar.LATTICETALK_PT_generate)
    labels = [e[1] for e in log if e[0] == "label"]
    assert any(text.startswith("Speech model needs: torch, soundfile") for text in labels)
    props = {e[1] for e in log if e[0] == "prop"}
    assert {"audio_path", "video_path", "take_name", "start_frame", "intensity", "head_motion", "blinks", "reduce_keys"} <= props
    assert ("operator", "lattice_talk.generate_from_audio", "") in log


def test_generate_panel_shows_progress_and_cancel_while_running(addon):
    progress = bpy.context.window_manager.lattice_talk_progress
    progress.running, progress.fraction, progress.stage, progress.eta_seconds = True, 0.25, "chunk 3/12", 7.0
    log = draw(sidebar.LATTICETALK_PT_generate)
    assert ("progress", pytest.approx(0.25), "chunk 3/12 · 7 s left") in log
    assert any(e[:2] == ("operator", "lattice_talk.cancel_generation") for e in log)
    assert not any(e[:2] == ("operator", "lattice_talk.generate_from_audio") for e in log)


def test_takes_panel_lists_takes_of_the_selected_head(addon, tmp_path):
    bpy.ops.lattice_talk.add_head(source="DEFAULT")
    for name in ("first", "second"):
        path = make_clip(create("default")).save(tmp_path / f"{name}.npz")
        bpy.ops.lattice_talk.apply_clip(filepath=str(path))
    bpy.ops.lattice_talk.mute_take(take="first", mute=True)
    log = draw(sidebar.LATTICETALK_PT_takes)
    assert [e[1] for e in log if e[0] == "label"] == ["second", "first"]
    assert ("operator", "lattice_talk.mute_take", "") in log and ("operator", "lattice_talk.remove_take", "") in log
    head_log = draw(sidebar.LATTICETALK_PT_head)
    assert any(e[0] == "label" and "lattice_talk:default_head" in e[1] for e in head_log)


def test_generate_panel_shows_the_model_choices_of_the_preferences(addon, tmp_path):
    addons = bpy.context.preferences.addons
    entry = addons.new()
    entry.module = lattice_talk.__name__
    try:
        props = [e[1] for e in draw(sidebar.LATTICETALK_PT_generate) if e[0] == "prop"]
        assert "speech_model_source" in props and "video_model_source" not in props  # no video: no video model
        assert "video_offset" not in props  # nor its offset
        bpy.context.scene.lattice_talk.video_path = str(tmp_path / "face.mp4")
        props = [e[1] for e in draw(sidebar.LATTICETALK_PT_generate) if e[0] == "prop"]
        at = props.index("video_path")
        assert props[at + 1:at + 4] == ["video_offset_auto", "video_offset", "video_model_source"]
    finally:
        addons.remove(addons[lattice_talk.__name__])


def test_offset_field_takes_exactly_the_offsets_the_pipeline_accepts(addon):
    from lattice_talk.core.pipeline import MAX_VIDEO_OFFSET_SECONDS

    settings = bpy.context.scene.lattice_talk
    field = settings.bl_rna.properties["video_offset"]
    assert (field.hard_min, field.hard_max) == (-MAX_VIDEO_OFFSET_SECONDS, MAX_VIDEO_OFFSET_SECONDS)
    settings.video_offset = 10 * MAX_VIDEO_OFFSET_SECONDS  # Blender clamps what is typed to the field's range
    assert settings.video_offset == MAX_VIDEO_OFFSET_SECONDS
