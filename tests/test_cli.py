"""The command line: apply to .blend, generate in batch with a manifest, exit codes, preview render."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="the CLI's scene commands use the bpy wheel")

from clip_fixtures import make_clip, write_wav  # noqa: E402
from lattice_talk.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main  # noqa: E402
from lattice_talk.core import pipeline_registry as pipelines  # noqa: E402
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
    log = (out / "batch.log").read_text().splitlines()
    assert len(log) == 8 and log[-1].startswith("failed") and "up to date" in log[-2]


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
    strips = list(editor.strips if hasattr(editor, "strips") else editor.sequences) if editor else []
    if not bpy.app.build_options.audaspace:  # the bpy 4.2 wheel has no audio: no strip (the take writer says so)
        assert strips == []
        return
    assert [s.name for s in strips] == ["line"]
    sound = Path(bpy.path.abspath(strips[0].sound.filepath))
    assert sound.is_file() and sound.samefile(work / "lines" / "line.wav")


@pytest.mark.parametrize("option, value, says", [
    ("--fps", "0", "frames per second: 0.0 is out of range (1–240); give 1–240"),
    ("--fps", "nan", "frames per second: nan is out of range"),
    ("--fps", "1e7", "frames per second: 10000000.0 is out of range"),
    ("--seed", "-1", "seed: -1 is out of range (0–4294967295); give a whole number from 0 to 4294967295"),
])
def test_unusable_frame_rates_and_seeds_are_one_clear_error(replay, tmp_path, capsys, option, value, says):
    wav, out = write_wav(tmp_path / "line.wav"), tmp_path / "line.npz"
    assert main(["generate", str(wav), "--out", str(out), option, value, "--quiet"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and not out.exists()


def test_generate_without_pipeline_is_a_clear_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("lattice_talk.core.speech.pipeline.MODEL_DIR", tmp_path)  # as if no weights shipped
    wav = write_wav(tmp_path / "line.wav")
    assert main(["generate", str(wav), "--out", str(tmp_path / "x.npz")]) == EXIT_BAD_INPUT
    assert "no speech model is installed" in capsys.readouterr().err


def test_a_generated_blend_renders_its_preview_with_f12(replay, tmp_path):
    """The .blend keeps the preview's camera (framing the face) and render settings: F12 gives the preview picture."""
    from bpy_extras.object_utils import world_to_camera_view

    wav, out = write_wav(tmp_path / "line.wav"), tmp_path / "line.blend"
    assert main(["generate", str(wav), "--out", str(out), "--quiet"]) == EXIT_OK
    bpy.ops.wm.open_mainfile(filepath=str(out))
    scene = bpy.context.scene
    assert scene.render.engine == "BLENDER_WORKBENCH" and scene.camera is not None
    assert (scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage) == (384, 384, 100)
    assert Path(scene.render.filepath) == out.with_suffix(".mp4").resolve()  # Ctrl+F12 writes the preview beside it
    mesh, head = scene_head().mesh, create("default")

    def seen(vertices) -> np.ndarray:  # (u, v) in the picture, 0..1, v up
        return np.array([tuple(world_to_camera_view(scene, scene.camera, mesh.matrix_world @ mesh.data.vertices[int(i)].co))[:2]
                         for i in vertices])

    features = seen(np.concatenate([head.regions[name] for name in ("eye_L", "eye_R", "teeth")]))
    assert np.all((features > 0.1) & (features < 0.9))  # eyes and mouth well inside the picture
    height = head.v_template[:, 1]
    assert 0.9 < seen([height.argmax()])[0, 1] < 0.98  # a margin over the skull
    assert seen([height.argmin()])[0, 1] < 0.0  # the neck's open end below the picture
    scene.render.filepath = str(tmp_path / "f12.png")
    if hasattr(scene.render.image_settings, "media_type"):  # Blender 5.0
        scene.render.image_settings.media_type = "IMAGE"
    scene.render.image_settings.file_format = "PNG"
    bpy.ops.render.render(write_still=True)
    pixels = np.array(bpy.data.images.load(str(tmp_path / "f12.png")).pixels[:]).reshape(384, 384, 4)[..., :3]
    assert pixels[192, 192].mean() > pixels[5, 5].mean() + 0.2  # the lit face in the middle, the dark backdrop at a corner
    # Eyes with iris and pupil, teeth and tongue (the head's parts, scene.parts), in colours Workbench shows.
    from lattice_talk.scene.parts import head_part_objects

    parts = head_part_objects(scene_head().armature).values()
    used = {obj.data.materials[i].name for obj in parts for i in {p.material_index for p in obj.data.polygons}}
    assert {"LatticeTalk Skin", "LatticeTalk Sclera", "LatticeTalk Iris", "LatticeTalk Pupil", "LatticeTalk Teeth",
            "LatticeTalk Tongue"} <= used
    rig = scene_head().armature
    for eye in ("eye_L", "eye_R"):
        u, v = tuple(world_to_camera_view(scene, scene.camera, rig.matrix_world @ rig.pose.bones[eye].head))[:2]
        pupil = pixels[round(v * 383), round(u * 383)]  # image rows run bottom-up in Blender
        assert pupil.mean() < 0.5 * pixels[192, 192].mean(), (eye, pupil)  # dark against the skin


# ------------------------------------------------------------------------------------------ re-runs
def generate(*argv: str) -> int:
    return main(["generate", *argv, "--quiet"])


def recorded(path):
    from lattice_talk.core.rerun import RUN_KEY

    return load_clip(path).provenance[RUN_KEY]


def test_a_single_file_is_kept_only_while_it_records_this_run(replay, tmp_path, capsys, monkeypatch):
    wav, out = write_wav(tmp_path / "line.wav"), tmp_path / "line.npz"
    assert generate(str(wav), "--out", str(out)) == EXIT_OK
    first = out.read_bytes()
    run = recorded(out)
    assert run["inputs"] == {"audio": hashlib.sha256(wav.read_bytes()).hexdigest(), "transcript": None, "video": None}
    assert run["settings"]["intensity"] == 1.0 and run["take"] == "line" and run["head"] == "default"
    capsys.readouterr()

    def rerun(*extra: str) -> str:
        assert generate(str(wav), "--out", str(out), *extra) == EXIT_OK
        return capsys.readouterr().out

    said = rerun()
    assert "up to date" in said and said.rstrip().endswith("wrote nothing") and out.read_bytes() == first
    said = rerun("--intensity", "0.3")  # a changed setting: made again, and the new run recorded
    assert "made again: settings changed: intensity 1.0 → 0.3" in said and said.rstrip().endswith(f"wrote {out}")
    assert recorded(out)["settings"]["intensity"] == 0.3
    assert "up to date" in rerun("--intensity", "0.3")
    assert "made again: the transcript changed" in rerun("--intensity", "0.3", "--transcript", "hello")
    assert "made again: the transcript changed" in rerun("--intensity", "0.3")  # and back to none
    assert "take name changed (line → other)" in rerun("--intensity", "0.3", "--take", "other")
    assert "up to date" not in rerun("--intensity", "0.3", "--take", "other", "--force")  # --force redoes it
    write_wav(wav, freq=300.0)  # new bytes under the same name
    assert "made again: the audio changed" in rerun("--intensity", "0.3", "--take", "other")
    monkeypatch.setattr("lattice_talk.core.version.__version__", "9.9.9")
    assert "made by LatticeTalk 0.1.0, this is 9.9.9" in rerun("--intensity", "0.3", "--take", "other")
    out.write_bytes(b"junk from an interrupted copy")
    assert "made again: it cannot be read or records no run" in rerun("--intensity", "0.3", "--take", "other")
    assert recorded(out)["version"] == "9.9.9"


def test_a_changed_model_file_or_head_changes_the_run(tmp_path):
    import shutil

    from lattice_talk.cli import _model_identity, build_parser
    from lattice_talk.core.pipeline_registry import get_pipeline
    from lattice_talk.core.rerun import run_record, what_changed
    from lattice_talk.core.speech.pipeline import MODEL_DIR

    model = shutil.copytree(MODEL_DIR, tmp_path / "model")
    args = build_parser().parse_args(["generate", "x.wav", "--out", "x.npz", "--speech-model", str(model)])
    wav = write_wav(tmp_path / "line.wav")

    def run(head="default"):
        return run_record({"audio": wav, "video": None}, _model_identity(get_pipeline(None, speech_model=model), args),
                          {"fps": 30.0}, head, "line")

    before = run()
    (model / "MODEL_CARD.md").write_text("edited")  # documentation is not the model
    (model / "recipe.json").write_text("{}")  # nor is how to rebuild it
    assert what_changed(before, run()) is None
    config = model / "decoder.json"
    config.write_text(config.read_text().replace("}", ', "note": 1}', 1))
    assert what_changed(before, run()) == "the model changed"
    head_file = create("default").save(tmp_path / "head.npz")
    assert what_changed(run(), run(str(head_file))) == "the head changed"


def test_an_up_to_date_blend_is_only_rendered(replay, tmp_path, capsys):
    from lattice_talk.core.rerun import RUN_KEY

    wav, out, preview = write_wav(tmp_path / "line.wav"), tmp_path / "line.blend", tmp_path / "line.mp4"
    assert generate(str(wav), "--out", str(out)) == EXIT_OK and not preview.exists()
    blend_bytes = out.read_bytes()
    capsys.readouterr()
    assert generate(str(wav), "--out", str(out), "--render", str(preview)) == EXIT_OK
    said = capsys.readouterr().out
    assert "up to date; rendering its preview only" in said and said.rstrip().endswith(f"wrote {preview.resolve()}")
    assert preview.stat().st_size > 1000 and out.read_bytes() == blend_bytes
    assert generate(str(wav), "--out", str(out), "--render", str(preview)) == EXIT_OK  # preview newer: nothing to do
    assert capsys.readouterr().out.rstrip().endswith("wrote nothing")
    bpy.ops.wm.open_mainfile(filepath=str(out))
    assert json.loads(bpy.context.scene[RUN_KEY])["take"] == "line"
    out.write_bytes(b"not a blend")
    assert generate(str(wav), "--out", str(out)) == EXIT_OK
    assert "made again: it cannot be read" in capsys.readouterr().out
    bpy.ops.wm.open_mainfile(filepath=str(out))
    assert list_takes(scene_head()) == ["line"]


# ------------------------------------------------------------------------------------------ what it prints
def test_a_run_prints_its_stages_and_the_files_written_and_no_third_party_noise(replay, tmp_path, capfd):
    wav, out, preview = write_wav(tmp_path / "line.wav"), tmp_path / "takes" / "line.blend", tmp_path / "line.mp4"
    assert main(["generate", str(wav), "--out", str(out), "--render", str(preview)]) == EXIT_OK
    said = capfd.readouterr()
    lines = said.out.strip().splitlines()
    assert lines[-1] == f"wrote {out.resolve()}, {preview.resolve()}"
    bar = said.err.replace("\r", "\n")
    for stage in ("chunk 1/10", "writing line.blend", "rendering the preview, frame 30/30", "finished"):
        assert stage in bar, stage
    for noise in ("Saved copy", "Video append", "EGL", "Info:"):
        assert noise not in said.out + said.err, noise
    assert not (out.parent / "batch.log").exists()  # a log is for batches


def test_quiet_drops_the_bar_and_verbose_lets_blender_speak(replay, tmp_path, capfd):
    wav, out = write_wav(tmp_path / "line.wav"), tmp_path / "line.blend"
    assert main(["generate", str(wav), "--out", str(out), "--quiet"]) == EXIT_OK
    said = capfd.readouterr()
    no_audio = "warning: this Blender build has no audio support (Audaspace); the take has no sound strip\n"
    assert said.err == ("" if bpy.app.build_options.audaspace else no_audio)  # the bpy 4.2 wheel has no audio
    assert said.out.strip().splitlines()[-1] == f"wrote {out.resolve()}"
    assert main(["generate", str(wav), "--out", str(out), "--quiet", "--verbose", "--force"]) == EXIT_OK
    assert '.line.tmp.blend"' in capfd.readouterr().out  # Blender's own save report ("Saved copy as" on 5.0, "Saved" on 4.2)


def test_every_option_of_every_command_has_help():
    import argparse

    from lattice_talk.cli import build_parser

    missing = []

    def walk(parser, name):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    walk(sub, f"{name} {sub_name}")
            elif not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "lattice_talk")
    assert missing == []
