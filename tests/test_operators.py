"""Operators on real Blender: Generate from Audio (sync + worker API), Apply Clip, takes, bad input."""

from __future__ import annotations

import time

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="scene tests need the bpy wheel")

import lattice_talk  # noqa: E402
from clip_fixtures import make_clip, scene_snapshot, write_wav  # noqa: E402
from lattice_talk.core import pipeline_registry as pipelines  # noqa: E402
from lattice_talk.core.heads import create  # noqa: E402
from lattice_talk.core.jobs import GenerationJob, JobState  # noqa: E402
from lattice_talk.core.pipeline import GenerateRequest  # noqa: E402
from lattice_talk.operators.generate import sync_progress  # noqa: E402
from lattice_talk.scene.take_writer import list_takes  # noqa: E402
from lattice_talk.scene.head_builder import find_head  # noqa: E402
from pipeline_fixtures import ReplayPipeline  # noqa: E402

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def head_model():
    return create("default")


@pytest.fixture
def addon(head_model):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    lattice_talk.register()
    bpy.ops.lattice_talk.add_head(source="DEFAULT")
    yield
    for name in pipelines.available_pipelines():
        pipelines.unregister_pipeline(name)
    lattice_talk.unregister()


@pytest.fixture
def speech_wav(tmp_path):
    t = np.arange(32000) / 16000
    return write_wav(tmp_path / "line.wav", 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2)


def use_replay(clip, **kwargs) -> ReplayPipeline:
    pipe = ReplayPipeline(clip, **kwargs)
    pipelines.register_pipeline("speech", lambda: pipe)
    return pipe


def the_head():
    return find_head(next(o for o in bpy.data.objects if o.type == "MESH"))


def test_headless_generate_writes_a_take(addon, head_model, speech_wav):
    use_replay(make_clip(head_model, seconds=2.0))
    assert bpy.ops.lattice_talk.generate_from_audio(audio_path=str(speech_wav), take_name="Line 1") == {"FINISHED"}
    assert list_takes(the_head()) == ["Line 1"]
    # Same name again replaces; the sidebar's settings drive the defaults.
    bpy.context.scene.lattice_talk.take_name = "Line 1"
    assert bpy.ops.lattice_talk.generate_from_audio(audio_path=str(speech_wav)) == {"FINISHED"}
    assert list_takes(the_head()) == ["Line 1"] and len(bpy.data.actions) == 2


def test_the_sidebar_transcript_reaches_the_pipeline(addon, head_model, speech_wav):
    pipe = use_replay(make_clip(head_model, seconds=2.0))
    bpy.context.scene.lattice_talk.transcript = "  Bob paid my mum.  "
    assert bpy.ops.lattice_talk.generate_from_audio(audio_path=str(speech_wav), take_name="Line 1") == {"FINISHED"}
    bpy.context.scene.lattice_talk.transcript = ""
    assert bpy.ops.lattice_talk.generate_from_audio(audio_path=str(speech_wav), take_name="Line 1") == {"FINISHED"}
    assert [r.transcript for r in pipe.requests] == ["Bob paid my mum.", None]


def test_generate_without_a_pipeline_says_so(addon, speech_wav, monkeypatch, tmp_path):
    monkeypatch.setattr("lattice_talk.core.speech.pipeline.MODEL_DIR", tmp_path)  # as if no weights shipped
    before = scene_snapshot(bpy)
    with pytest.raises(RuntimeError, match="no speech model is installed"):
        bpy.ops.lattice_talk.generate_from_audio(audio_path=str(speech_wav))
    assert scene_snapshot(bpy) == before


@pytest.mark.parametrize("bad", ["missing", "folder", "corrupt", "silent"])
def test_bad_audio_leaves_the_scene_identical(addon, head_model, tmp_path, bad):
    use_replay(make_clip(head_model))
    path = {"missing": tmp_path / "nope.wav", "folder": tmp_path}.get(bad, tmp_path / f"{bad}.wav")
    if bad == "corrupt":
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    if bad == "silent":
        write_wav(path, np.zeros(16000))
    before = scene_snapshot(bpy)
    with pytest.raises(RuntimeError, match=str(path.name)):
        bpy.ops.lattice_talk.generate_from_audio(audio_path=str(path))
    assert scene_snapshot(bpy) == before


def test_cancel_mid_run_through_the_worker_api(addon, head_model, speech_wav):
    pipe = ReplayPipeline(make_clip(head_model, seconds=60.0), steps=200, delay=0.01)
    before = scene_snapshot(bpy)
    job = GenerationJob(pipe, GenerateRequest(audio_path=speech_wav, head=head_model)).start()
    assert pipe.prepared  # prepared on this (the main) thread before the worker starts
    progress = bpy.context.window_manager.lattice_talk_progress
    deadline = time.monotonic() + 10
    while job.progress()[1] < 0.1 and time.monotonic() < deadline:
        time.sleep(0.01)
    sync_progress(job, progress)
    assert 0.1 <= progress.fraction < 1.0 and progress.stage.startswith("chunk")
    job.cancel()
    assert job.wait(5) is JobState.CANCELLED
    assert scene_snapshot(bpy) == before
    with pytest.raises(Exception, match="no result"):
        job.result


def test_worker_reports_eta_and_result(addon, head_model, speech_wav):
    clip = make_clip(head_model)
    job = GenerationJob(ReplayPipeline(clip, steps=20, delay=0.01), GenerateRequest(audio_path=speech_wav, head=head_model)).start()
    seen_eta = None
    while not job.finished:
        stage, fraction, eta = job.progress()
        seen_eta = eta if eta is not None else seen_eta
        time.sleep(0.005)
    assert job.state is JobState.DONE and job.result is clip and seen_eta is not None


def test_apply_clip_operator_and_bad_clip(addon, head_model, tmp_path):
    good = make_clip(head_model, seconds=60.0).save(tmp_path / "dialogue.npz")
    assert bpy.ops.lattice_talk.apply_clip(filepath=str(good)) == {"FINISHED"}
    assert list_takes(the_head()) == ["dialogue"]
    bad = tmp_path / "broken.npz"
    bad.write_bytes(good.read_bytes()[:1000])
    before = scene_snapshot(bpy)
    with pytest.raises(RuntimeError, match="broken.npz"):
        bpy.ops.lattice_talk.apply_clip(filepath=str(bad))
    assert scene_snapshot(bpy) == before


def test_take_management_operators(addon, head_model, tmp_path):
    clip_path = make_clip(head_model).save(tmp_path / "a.json")
    bpy.ops.lattice_talk.apply_clip(filepath=str(clip_path), take_name="A")
    assert bpy.ops.lattice_talk.mute_take(take="A", mute=True) == {"FINISHED"}
    assert all(t.mute for t in the_head().armature.animation_data.nla_tracks)
    assert bpy.ops.lattice_talk.remove_take(take="A") == {"FINISHED"}
    assert list_takes(the_head()) == []
    with pytest.raises(RuntimeError, match="No take named"):
        bpy.ops.lattice_talk.remove_take(take="A")
