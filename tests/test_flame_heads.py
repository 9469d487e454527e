"""FLAME heads end to end on real Blender, on the realistic FLAME-format test head (tools/flame_test_head.py):
the landmark embedding found, given or missing; Add Head › FLAME, Generate from Audio and Apply Clip in the
sidebar; generate, apply and export in the CLI; a reopened .blend; every surface through the one clip → take
function, which converts a default-head clip through the motion space and says so."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="scene tests need the bpy wheel")

import lattice_talk  # noqa: E402
from clip_fixtures import make_clip, scene_snapshot  # noqa: E402
from flame_fixtures import build_flame_test_head  # noqa: E402
from lattice_talk.cli import EXIT_BAD_INPUT, EXIT_OK, main  # noqa: E402
from lattice_talk.core.clip import load_clip  # noqa: E402
from lattice_talk.core.heads import EMBEDDING_FILE_NAME, create  # noqa: E402
from lattice_talk.scene.head_builder import HEAD_ID_PROP, HEAD_LANDMARKS_PROP, find_head  # noqa: E402
from lattice_talk.scene.take_writer import FACE, HEAD, layer_owners, take_tracks  # noqa: E402

pytestmark = pytest.mark.blender

SPEECH = Path(lattice_talk.__file__).resolve().parent / "vendor_models" / "samples" / "hello.wav"
FLAME_ID = "flame2020:generic_model"


@pytest.fixture(scope="module")
def flame_files(tmp_path_factory) -> dict[str, Path]:
    """The test head as a FLAME user has it (model + embedding side by side), and the model alone elsewhere."""
    folder = tmp_path_factory.mktemp("flame")
    files = build_flame_test_head().write(folder)
    alone = tmp_path_factory.mktemp("model_only") / "generic_model.pkl"
    shutil.copyfile(files["pkl"], alone)
    return {**files, "alone": alone}


@pytest.fixture(scope="module")
def default_clip_file(tmp_path_factory) -> Path:
    """A take made for the default head (ARKit units, jaw, head pose), as `generate` writes one."""
    return make_clip(create("default"), seconds=2.0).save(tmp_path_factory.mktemp("clip") / "line.npz")


def scene_head():
    return find_head(next(o for o in bpy.context.scene.objects if HEAD_ID_PROP in o))


def moving_curves(objects, take: str) -> dict[str, set[str]]:
    """Per layer, the data paths of the take's curves whose keyed values change over the take."""
    moving: dict[str, set[str]] = {FACE: set(), HEAD: set()}
    owners = layer_owners(objects)
    for track in take_tracks(objects, take):
        layer = FACE if track.id_data == owners[FACE] else HEAD
        action = track.strips[0].action
        fcurves = ([fc for lay in action.layers for strip in lay.strips for bag in strip.channelbags for fc in bag.fcurves]
                   if hasattr(action, "layers") else list(action.fcurves))
        for fc in fcurves:
            values = np.empty(2 * len(fc.keyframe_points), np.float32)
            fc.keyframe_points.foreach_get("co", values)
            if np.ptp(values[1::2]) > 1e-4:
                moving[layer].add(fc.data_path)
    return moving


def assert_face_jaw_and_head_move(objects, take: str, bones=("jaw", "root")) -> None:
    """The take moves the FLAME head's PCA expression keys and the ``bones`` (jaw; head pose on the root)."""
    moving = moving_curves(objects, take)
    expressions = {p for p in moving[FACE] if p.startswith('key_blocks["exp')}
    assert len(expressions) >= 20, moving[FACE]  # the PCA expression keys carry the mouth
    for bone in bones:
        assert f'pose.bones["{bone}"].rotation_euler' in moving[HEAD], moving[HEAD]


# ------------------------------------------------------------------------------------ the test head itself


def test_flame_test_head_is_the_default_head_in_flame_files(flame_files):
    test_head = build_flame_test_head()
    assert test_head.arrays["shapedirs"].shape == (4828, 3, 400)
    default = create("default")
    for key in ("pkl", "npz"):
        flame = create(flame_files[key])  # the embedding beside the model is found
        assert flame.head_id == FLAME_ID and flame.n_expression == 100 and flame.n_shape == 300
        assert 90 <= len(flame.landmarks.face_index) < 478  # FLAME's own embedding covers a subset, as here
    # The expression basis spans the 52 ARKit units exactly: any unit mix has an exact counterpart.
    rng = np.random.default_rng(0)
    units = rng.uniform(0.0, 1.0, (6, default.n_expression)).astype(np.float32)
    pose = np.zeros((6, 5, 3), np.float32)
    pose[:, 2, 0] = 0.25
    mapped = units @ test_head.units_to_expression.T
    assert np.abs(mapped).max() <= 3.0  # inside FLAME's ±3
    on_default = default.forward(expression=units, pose=pose).vertices
    on_flame = flame.forward(expression=mapped.astype(np.float32), pose=pose).vertices
    assert np.abs(on_default - on_flame).max() < 1e-6  # metres


def test_an_explicit_embedding_comes_before_the_file_beside_the_model(flame_files, tmp_path):
    from flame_fixtures import make_embedding_arrays, write_embedding_npz

    from lattice_talk.core.errors import HeadModelError

    other = write_embedding_npz(tmp_path / "other.npz", **make_embedding_arrays(seed=1, n_faces=10**6))
    with pytest.raises(HeadModelError, match=f"{other}: does not fit generic_model.pkl"):
        create(flame_files["pkl"], landmark_embedding=other)  # not silently replaced by the one beside it


def test_lip_error_and_closure_after_conversion_match_the_default_head(flame_files, tmp_path):
    """Synthetic held-out speech: the shipped model's take converted to the FLAME-format head through the motion
    space, against the exact reference on its mesh, is within 0.3 mm of the default head's lip error."""
    from flame_test_head import measure_conversion

    from lattice_talk.core.data.corpus import synth_corpus

    synth_corpus(tmp_path / "corpus", hours=0.1, seed=5, workers=2)  # 18 held-out utterances, 99 p/b/m
    report = measure_conversion(tmp_path / "corpus", build_flame_test_head(), flame_files["pkl"])
    default, flame = report["default_head"], report["flame_test_head"]
    assert flame["utterances"] >= 10 and flame["bilabials"] >= 50
    assert flame["lip_vertex_error_mm"] - default["lip_vertex_error_mm"] <= 0.3, report
    assert flame["bilabial_closure_rate"] >= 0.9, report


# ------------------------------------------------------------------------------------ the sidebar and scripts


@pytest.mark.parametrize("kind", ["pkl", "npz"])
def test_add_flame_head_then_generate_and_apply_clip(addon, flame_files, default_clip_file, kind):
    assert bpy.ops.lattice_talk.add_head(source="FLAME", filepath=str(flame_files[kind])) == {"FINISHED"}
    objects = scene_head()
    assert objects.mesh[HEAD_ID_PROP] == FLAME_ID and HEAD_LANDMARKS_PROP in objects.mesh  # found beside the model
    assert bpy.ops.lattice_talk.generate_from_audio(audio_path=str(SPEECH), take_name="Spoken") == {"FINISHED"}
    assert_face_jaw_and_head_move(objects, "Spoken")
    assert bpy.ops.lattice_talk.apply_clip(filepath=str(default_clip_file), take_name="Applied") == {"FINISHED"}
    assert_face_jaw_and_head_move(objects, "Applied", ("jaw", "root", "neck"))  # a default-head clip converted, not dropped


def test_add_head_with_an_explicit_embedding_and_a_reopened_blend_elsewhere(addon, flame_files, tmp_path):
    model = tmp_path / "model" / "generic_model.pkl"
    embedding = tmp_path / "downloads" / "embedding.npz"
    for source, target in ((flame_files["alone"], model), (flame_files["embedding"], embedding)):
        target.parent.mkdir()
        shutil.copyfile(source, target)
    assert bpy.ops.lattice_talk.add_head(source="FLAME", filepath=str(model), embedding_path=str(embedding)) == {"FINISHED"}
    blend = tmp_path / "elsewhere" / "shot.blend"
    blend.parent.mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    embedding.unlink()  # the scene carries the embedding as data, not as a path
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    assert bpy.ops.lattice_talk.generate_from_audio(audio_path=str(SPEECH), take_name="Again") == {"FINISHED"}
    assert_face_jaw_and_head_move(scene_head(), "Again")


def test_flame_file_without_an_embedding_adds_but_takes_fail_first_with_the_file_to_get(addon, flame_files,
                                                                                         default_clip_file):
    assert bpy.ops.lattice_talk.add_head(source="FLAME", filepath=str(flame_files["alone"])) == {"FINISHED"}
    assert HEAD_LANDMARKS_PROP not in scene_head().mesh
    before = scene_snapshot(bpy)
    for run in (lambda: bpy.ops.lattice_talk.generate_from_audio(audio_path=str(SPEECH)),
                lambda: bpy.ops.lattice_talk.apply_clip(filepath=str(default_clip_file))):
        with pytest.raises(RuntimeError, match=f"{EMBEDDING_FILE_NAME}.*beside generic_model.pkl"):
            run()
        assert scene_snapshot(bpy) == before


def test_add_head_flame_opens_with_the_preferences(addon, flame_files, tmp_path):
    """Enabled as an add-on, the FLAME model and embedding preferences are what Add Head › FLAME uses."""
    addons = bpy.context.preferences.addons
    entry = addons.new()
    entry.module = "lattice_talk"
    try:
        entry.preferences.flame_path = str(flame_files["alone"])  # no embedding beside this one
        assert bpy.ops.lattice_talk.add_head(source="FLAME") == {"FINISHED"}
        assert HEAD_LANDMARKS_PROP not in find_head(bpy.context.active_object).mesh
        entry.preferences.flame_embedding_path = str(flame_files["embedding"])
        assert bpy.ops.lattice_talk.add_head(source="FLAME") == {"FINISHED"}
        objects = find_head(bpy.context.active_object)
        assert objects.mesh[HEAD_ID_PROP] == FLAME_ID and HEAD_LANDMARKS_PROP in objects.mesh
    finally:
        addons.remove(addons["lattice_talk"])


# ------------------------------------------------------------------------------------ the command line


def test_cli_generate_onto_a_flame_head(flame_files, tmp_path, capsys):
    out = tmp_path / "line.npz"  # .npz output: the conversion happens in core, for the head beside its embedding
    assert main(["generate", str(SPEECH), "--head", str(flame_files["npz"]), "--out", str(out), "--quiet"]) == EXIT_OK
    clip = load_clip(out)
    assert clip.head_id == FLAME_ID and clip.expression.shape[1] == 100 and np.ptp(clip.expression) > 0.1
    assert clip.provenance["converted_from"] == "lattice_talk:default_head"
    # A batch of .blend takes, the embedding given explicitly: each take through the one clip → take function.
    lines = tmp_path / "lines"
    lines.mkdir()
    for name in ("a", "b"):
        shutil.copyfile(SPEECH, lines / f"{name}.wav")
    assert main(["generate", str(lines), "--head", str(flame_files["alone"]), "--embedding",
                 str(flame_files["embedding"]), "--format", "blend", "--out", str(tmp_path / "takes"), "--quiet"]) == EXIT_OK
    assert capsys.readouterr().out.count("converted from head lattice_talk:default_head") == 2
    for name in ("a", "b"):
        bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "takes" / f"{name}.blend"))
        assert_face_jaw_and_head_move(scene_head(), name)


def flame_head_args(flame_files) -> list[str]:
    return ["--head", str(flame_files["alone"]), "--embedding", str(flame_files["embedding"])]


def test_cli_export_gltf_converts_a_default_head_clip(flame_files, default_clip_file, tmp_path, capsys):
    glb = tmp_path / "line.glb"
    assert main(["export", str(default_clip_file), "--format", "gltf", *flame_head_args(flame_files),
                 "--out", str(glb)]) == EXIT_OK
    assert glb.stat().st_size > 100_000
    assert "converted from head lattice_talk:default_head to flame2020:generic_model" in capsys.readouterr().out


def test_cli_apply_and_export_json_convert_a_default_head_clip(flame_files, default_clip_file, tmp_path, capsys):
    head = flame_head_args(flame_files)
    out = tmp_path / "applied.blend"
    assert main(["apply", str(default_clip_file), *head, "--out", str(out)]) == EXIT_OK
    assert "converted from head lattice_talk:default_head to flame2020:generic_model" in capsys.readouterr().out
    bpy.ops.wm.open_mainfile(filepath=str(out))
    assert_face_jaw_and_head_move(scene_head(), "line", ("jaw", "root", "neck"))
    converted = tmp_path / "flame_line.json"
    assert main(["export", str(default_clip_file), "--format", "json", *head, "--out", str(converted)]) == EXIT_OK
    clip = load_clip(converted)
    assert clip.head_id == FLAME_ID and clip.expression.shape == (60, 100) and np.ptp(clip.expression) > 0.05


@pytest.mark.parametrize("command", ["generate", "apply", "export-gltf", "export-npz"])  # stops before the exporter runs
def test_cli_flame_head_without_an_embedding_fails_before_any_work(flame_files, default_clip_file, tmp_path, capsys,
                                                                   command):
    out = {"generate": "x.blend", "apply": "x.blend", "export-gltf": "x.glb", "export-npz": "x.npz"}[command]
    args = {"generate": ["generate", str(SPEECH), "--quiet"], "apply": ["apply", str(default_clip_file)],
            "export-gltf": ["export", str(default_clip_file), "--format", "gltf"],
            "export-npz": ["export", str(default_clip_file), "--format", "npz"]}[command]
    assert main([*args, "--head", str(flame_files["alone"]), "--out", str(tmp_path / out)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert EMBEDDING_FILE_NAME in err and str(flame_files["alone"].parent) in err and "--embedding" in err
    assert not (tmp_path / out).exists()


def test_cli_convert_onto_a_flame_head_without_an_embedding_names_the_file(flame_files, default_clip_file, tmp_path,
                                                                           capsys):
    out = tmp_path / "flame.npz"
    assert main(["convert", str(default_clip_file), "--target", str(flame_files["alone"]), "--out", str(out)]) \
        == EXIT_BAD_INPUT
    assert f"put it beside generic_model.pkl (in {flame_files['alone'].parent})" in capsys.readouterr().err
    assert not out.exists()
    assert main(["convert", str(default_clip_file), "--target", str(flame_files["alone"]), "--embedding",
                 str(flame_files["embedding"]), "--out", str(out)]) == EXIT_OK
    assert load_clip(out).head_id == FLAME_ID
