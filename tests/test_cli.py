"""The command line: apply to .blend, generate in batch with a manifest, exit codes, preview render."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="the CLI's scene commands use the bpy wheel")

from clip_fixtures import make_clip, write_wav  # noqa: E402
from lattice_talk.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main  # noqa: E402
from lattice_talk.core import pipeline as pipelines  # noqa: E402
from lattice_talk.core.clip import load_clip  # noqa: E402
from lattice_talk.core.heads import create  # noqa: E402
from lattice_talk.scene.head_builder import HEAD_ID_PROP, find_head  # noqa: E402
from lattice_talk.scene.take_writer import list_takes  # noqa: E402
from pipeline_fixtures import ReplayPipeline  # noqa: E402

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def head_model():
    return create("default")


@pytest.fixture
def replay(head_model):
    pipelines.register_pipeline("speech", lambda: ReplayPipeline(make_clip(head_model, seconds=1.0)))
    yield
    pipelines.unregister_pipeline("speech")




def scene_head():
    return find_head(next(o for o in bpy.context.scene.objects if HEAD_ID_PROP in o))


def test_help_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "lattice_talk", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("demo", "apply", "generate", "head-info", "build-extension", "bench"):
        assert command in out


def test_apply_clip_to_blend_and_onto_an_existing_scene(head_model, tmp_path):
    clip_path = make_clip(head_model, seconds=3.0).save(tmp_path / "hello.npz")
    out = tmp_path / "scene.blend"
    assert main(["apply", str(clip_path), "--out", str(out)]) == EXIT_OK
    bpy.ops.wm.open_mainfile(filepath=str(out))
    assert list_takes(scene_head()) == ["hello"]
    # A second clip onto the saved scene keeps the first take.
    second = make_clip(head_model, seconds=2.0, seed=4).save(tmp_path / "second.json")
    out2 = tmp_path / "scene2.blend"
    assert main(["apply", str(second), "--scene", str(out), "--out", str(out2), "--key-tolerance", "0.01"]) == EXIT_OK
    bpy.ops.wm.open_mainfile(filepath=str(out2))
    assert sorted(list_takes(scene_head())) == ["hello", "second"]


def test_apply_bad_clip_fails_cleanly(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    out = tmp_path / "scene.blend"
    assert main(["apply", str(bad), "--out", str(out)]) == EXIT_BAD_INPUT
    assert "bad.npz" in capsys.readouterr().err and not out.exists()


def test_generate_batch_skips_finished_and_reports_failures(replay, tmp_path, capsys):
    inputs = tmp_path / "lines"
    inputs.mkdir()
    for name in ("a", "b", "c"):
        write_wav(inputs / f"{name}.wav")
    (inputs / "d.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    out = tmp_path / "takes"
    assert main(["generate", str(inputs), "--out", str(out), "--quiet"]) == EXIT_FAILED
    manifest = json.loads((out / "manifest.json").read_text())["items"]
    assert [(i["input"].rsplit("/", 1)[1], i["status"]) for i in manifest] == [
        ("a.wav", "done"), ("b.wav", "done"), ("c.wav", "done"), ("d.wav", "failed")]
    assert "d.wav" in manifest[3]["error"] and "d.wav" in capsys.readouterr().err
    assert load_clip(out / "a.npz").n_frames == 30
    # Re-run: finished outputs are skipped, the bad file fails again, nothing else is redone.
    assert main(["generate", str(inputs / "*.wav"), "--out", str(out), "--quiet"]) == EXIT_FAILED
    statuses = [i["status"] for i in json.loads((out / "manifest.json").read_text())["items"]]
    assert statuses == ["skipped", "skipped", "skipped", "failed"]
    assert "3 failed" not in capsys.readouterr().out


def test_generate_one_file_to_blend_with_preview(replay, tmp_path):
    wav = write_wav(tmp_path / "line.wav")
    out = tmp_path / "line.blend"
    preview = tmp_path / "line.mp4"
    assert main(["generate", str(wav), "--out", str(out), "--render", str(preview), "--quiet"]) == EXIT_OK
    assert out.exists() and preview.exists() and preview.stat().st_size > 1000
    bpy.ops.wm.open_mainfile(filepath=str(out))
    assert list_takes(scene_head()) == ["line"]


def test_the_sound_of_a_blend_made_from_a_relative_path_plays_from_any_folder(replay, tmp_path, monkeypatch):
    """`generate lines/line.wav --out takes/line.blend` run in one folder; the .blend opened from another."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    (work / "lines").mkdir(parents=True)
    elsewhere.mkdir()
    write_wav(work / "lines" / "line.wav")
    monkeypatch.chdir(work)
    assert main(["generate", "lines/line.wav", "--out", "takes/line.blend", "--quiet"]) == EXIT_OK
    monkeypatch.chdir(elsewhere)
    bpy.ops.wm.open_mainfile(filepath=str(work / "takes" / "line.blend"))
    editor = bpy.context.scene.sequence_editor
    strips = list(editor.strips if hasattr(editor, "strips") else editor.sequences)
    assert [s.name for s in strips] == ["line"]
    sound = Path(bpy.path.abspath(strips[0].sound.filepath))
    assert sound.is_file() and sound.samefile(work / "lines" / "line.wav")


def test_generate_without_pipeline_is_a_clear_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("lattice_talk.core.speech.pipeline.MODEL_DIR", tmp_path)  # as if no weights shipped
    wav = write_wav(tmp_path / "line.wav")
    assert main(["generate", str(wav), "--out", str(tmp_path / "x.npz")]) == EXIT_BAD_INPUT
    assert "no speech model is installed" in capsys.readouterr().err
