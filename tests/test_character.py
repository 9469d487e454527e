"""Your own character on real Blender: naming styles, partial rigs, bones, presets, glTF/FBX/Live Link exports,
provenance on takes, and reproducible generation."""

from __future__ import annotations

import csv
import json
import struct
import types

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="scene tests need the bpy wheel")

import lattice_talk  # noqa: E402
from clip_fixtures import make_clip, scene_snapshot  # noqa: E402
from lattice_talk.cli import EXIT_OK, main  # noqa: E402
from lattice_talk.core.arkit_names import ARKIT_NAMES  # noqa: E402
from lattice_talk.core.character_map import HEAD_TO_WORLD, CharacterMapError, arkit_units, auto_map  # noqa: E402
from lattice_talk.core.heads import create  # noqa: E402
from lattice_talk.core.lbs import rodrigues_np  # noqa: E402
from lattice_talk.scene.character import find_character, write_character_take  # noqa: E402
from lattice_talk.scene.export import export_take  # noqa: E402
from lattice_talk.scene.take_writer import PROVENANCE_PROP, take_tracks  # noqa: E402
from test_character_map import NAMING_STYLES, maya_prefixed, pascal_short_side, snake_case  # noqa: E402
from ui_fixtures import Layout  # noqa: E402

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def head():
    return create("default")


def make_character(key_names, with_armature: bool = False, name: str = "Hero"):
    """A sphere with one shape key per name (each moves its own vertices), optionally parented to a rig whose jaw
    bone points in an arbitrary direction with a roll (as real rigs do) and a head bone."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    bpy.ops.mesh.primitive_uv_sphere_add(segments=24, ring_count=12)
    mesh = bpy.context.active_object
    mesh.name = name
    mesh.shape_key_add(name="Basis", from_mix=False)
    rng = np.random.default_rng(0)
    n = len(mesh.data.vertices)
    for key_name in key_names:
        key = mesh.shape_key_add(name=key_name, from_mix=False)
        co = np.empty(3 * n, np.float32)
        key.data.foreach_get("co", co)
        co[3 * rng.integers(n):][:3] += 0.1
        key.data.foreach_set("co", co)
    if with_armature:
        arm = bpy.data.objects.new(f"{name} rig", bpy.data.armatures.new(f"{name} rig"))
        scene.collection.objects.link(arm)
        bpy.context.view_layer.objects.active = arm
        bpy.ops.object.mode_set(mode="EDIT")
        for bone_name, head_at, tail_at, roll in (("head", (0, 0, 0), (0, 0, 0.3), 0.0),
                                                  ("jaw", (0, -0.1, 0), (0.05, -0.3, -0.1), 0.7)):
            bone = arm.data.edit_bones.new(bone_name)
            bone.head, bone.tail, bone.roll = head_at, tail_at, roll
        bpy.ops.object.mode_set(mode="OBJECT")
        mesh.parent = arm
    return find_character(mesh)


def all_fcurves(action):
    if hasattr(action, "layers"):
        return [fc for layer in action.layers for strip in layer.strips for bag in strip.channelbags for fc in bag.fcurves]
    return list(action.fcurves)


@pytest.mark.parametrize("style", NAMING_STYLES, ids=lambda s: s.__name__)
def test_arkit_character_in_three_naming_styles_is_driven_without_mapping(head, style):
    character = make_character([style(n) for n in ARKIT_NAMES])
    clip = make_clip(head, seconds=1.0)
    result = write_character_take(clip, character, bpy.context.scene, "Line")
    assert result.unmatched_expressions == [] and result.curves == 52
    units = arkit_units(clip, jaw_to_shape_key=True)  # no jaw bone: the jaw opens the jawOpen key
    keys = character.mesh.data.shape_keys.key_blocks
    for frame in (0, 13, 29):
        bpy.context.scene.frame_set(clip.start_frame + frame)
        got = [keys[style(n)].value for n in ARKIT_NAMES]
        assert np.allclose(got, units[frame], atol=1e-6)


def test_partial_rig_reports_exactly_the_unmatched_units(head):
    missing = [n for n in ARKIT_NAMES if n.startswith(("cheek", "nose"))]
    character = make_character([pascal_short_side(n) for n in ARKIT_NAMES if n not in missing])
    result = write_character_take(make_clip(head), character, bpy.context.scene, "T")
    assert result.unmatched_expressions == missing and result.curves == 52 - len(missing)


def test_jaw_and_head_bones_turn_as_on_the_default_head(head):
    names = [n for n in ARKIT_NAMES if n != "jawOpen"]  # no jawOpen key: the jaw bone opens the mouth
    character = make_character(names, with_armature=True)
    clip = make_clip(head, seconds=1.0)
    clip.neck = None
    result = write_character_take(clip, character, bpy.context.scene, "T")
    assert result.curves == 51 + 2 * 4  # quaternion curves on jaw and head
    arm = character.armature
    for frame in (5, 20):
        bpy.context.scene.frame_set(clip.start_frame + frame)
        for bone, rotvec in (("jaw", clip.jaw[frame]), ("head", clip.global_rotation[frame])):
            rest = np.array(arm.data.bones[bone].matrix_local.to_3x3())
            posed = np.array(arm.pose.bones[bone].matrix.to_3x3())
            world_turn = posed @ rest.T  # parent bones are unposed: the bone's own turn, in the rig's world
            expected = HEAD_TO_WORLD @ rodrigues_np(rotvec.astype(np.float64)) @ HEAD_TO_WORLD.T
            assert np.allclose(world_turn, expected, atol=1e-5)


def test_a_map_that_does_not_fit_leaves_the_scene_unchanged(head):
    character = make_character(list(ARKIT_NAMES))
    write_character_take(make_clip(head), character, bpy.context.scene, "Keep")
    before = scene_snapshot(bpy)
    mapping = auto_map(list(ARKIT_NAMES))
    mapping.channel("jawOpen").target = "noSuchKey"
    with pytest.raises(CharacterMapError, match="Hero: channel jawOpen: the mesh has no shape key 'noSuchKey'"):
        write_character_take(make_clip(head, seed=4), character, bpy.context.scene, "Keep", mapping=mapping)
    assert scene_snapshot(bpy) == before


def _glb_json(path) -> dict:
    data = path.read_bytes()
    return json.loads(data[20:20 + struct.unpack("<I", data[12:16])[0]])


def _animated_shape_keys(objects) -> dict[str, int]:
    """Animated shape key → key count, over every action an importer made."""
    return {fc.data_path: len(fc.keyframe_points) for action in bpy.data.actions for fc in all_fcurves(action)
            if fc.data_path.startswith("key_blocks")}


@pytest.mark.parametrize("fmt, suffix, importer", [("gltf", ".glb", "gltf"), ("fbx", ".fbx", "fbx")])
def test_export_reimports_with_the_same_shape_key_animation(head, tmp_path, fmt, suffix, importer):
    character = make_character([snake_case(n) for n in ARKIT_NAMES], with_armature=True)
    write_character_take(make_clip(head, seconds=1.0, seed=2), character, bpy.context.scene, "Other")
    clip = make_clip(head, seconds=2.0)
    clip.provenance = {"seed": 7, "audio_sha256": "ab" * 32}
    result = write_character_take(clip, character, bpy.context.scene, "Line", set_frame_range=False)
    before = scene_snapshot(bpy)
    path = export_take(character, "Line", tmp_path / f"line{suffix}", fmt)
    assert scene_snapshot(bpy) == before  # muting, selection and frame range are put back
    if fmt == "gltf":
        document = _glb_json(path)
        assert json.loads(document["scenes"][0]["extras"][PROVENANCE_PROP]) == clip.provenance
        assert len(document["meshes"][0]["primitives"][0]["targets"]) == 52
    bpy.ops.wm.read_factory_settings(use_empty=True)
    getattr(bpy.ops.import_scene, importer)(filepath=str(path))
    animated = _animated_shape_keys(None)
    assert len(animated) == 52 == result.curves - 4 and set(animated.values()) == {clip.n_frames}  # + head bone
    if fmt == "fbx":
        mesh = next(o for o in bpy.data.objects if o.type == "MESH")
        assert json.loads(mesh[PROVENANCE_PROP]) == clip.provenance


def test_export_rejects_a_bad_path_or_take_before_touching_anything(head, tmp_path):
    from lattice_talk.core.errors import LatticeTalkError

    character = make_character(list(ARKIT_NAMES))
    write_character_take(make_clip(head), character, bpy.context.scene, "Line")
    with pytest.raises(LatticeTalkError, match=r"needs a file name ending in \.glb or \.gltf"):
        export_take(character, "Line", tmp_path / "line.fbx", "gltf")
    with pytest.raises(LatticeTalkError, match="no take named 'Nope'"):
        export_take(character, "Nope", tmp_path / "line.glb", "gltf")
    with pytest.raises(LatticeTalkError, match="folder not found"):
        export_take(character, "Line", tmp_path / "missing" / "line.glb", "gltf")


@pytest.fixture
def addon(monkeypatch, tmp_path):
    monkeypatch.setenv("LATTICE_TALK_PRESETS", str(tmp_path / "presets"))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    lattice_talk.register()
    yield
    lattice_talk.unregister()


def test_operators_match_save_load_apply_and_record_provenance(addon, head, tmp_path):
    lattice_talk.unregister()  # make_character resets the file; register again on the new one
    character = make_character([maya_prefixed(n) for n in ARKIT_NAMES if n != "tongueOut"])
    lattice_talk.register()
    bpy.context.view_layer.objects.active = character.mesh
    assert bpy.ops.lattice_talk.match_character() == {"FINISHED"}
    settings = character.mesh.lattice_talk_character
    assert [c.channel for c in settings.channels if not c.target] == ["tongueOut"]
    settings.channels[3].scale, settings.channels[4].ignore = 0.5, True
    stored = [(c.channel, c.target, c.scale, c.ignore) for c in settings.channels]
    assert bpy.ops.lattice_talk.save_character_preset(name="Hero map") == {"FINISHED"}
    assert (tmp_path / "presets" / "Hero map.json").is_file()
    settings.channels.clear()
    assert bpy.ops.lattice_talk.load_character_preset(name="Hero map") == {"FINISHED"}
    assert [(c.channel, c.target, c.scale, c.ignore) for c in settings.channels] == stored

    clip = make_clip(head)
    clip.provenance = {"model_sha256": "cd" * 32, "settings": {"seed": 3}}
    clip.save(tmp_path / "line.npz")
    assert bpy.ops.lattice_talk.apply_clip(filepath=str(tmp_path / "line.npz"), take_name="Line") == {"FINISHED"}
    actions = [s.action for t in take_tracks(character, "Line") for s in t.strips]
    assert actions and all(json.loads(a[PROVENANCE_PROP]) == clip.provenance for a in actions)
    ignored = settings.channels[4].target
    assert not any(ignored in fc.data_path for a in actions for fc in all_fcurves(a))
    # FBX here: the bpy 4.2 wheel crashes at exit after a glTF export (see .ci/run); glTF is tested above on 5.x.
    assert bpy.ops.lattice_talk.export_take(take="Line", format="fbx", filepath=str(tmp_path / "line.fbx")) == {"FINISHED"}
    assert (tmp_path / "line.fbx").stat().st_size > 0


class CharacterLayout(Layout):
    """The recording layout plus what the character panel uses."""

    row = column = box = lambda self, **kw: CharacterLayout(self.log)  # noqa: E731

    def prop_search(self, data, name, search_data, search_name, **kw):
        assert name in data.bl_rna.properties and search_name in search_data.bl_rna.properties
        self.log.append(("prop_search", name))

    def template_list(self, list_type, list_id, data, name, active_data, active_name, **kw):
        assert list_type in dir(bpy.types) and name in data.bl_rna.properties
        self.log.append(("template_list", len(getattr(data, name))))


def test_character_panel_lists_the_channels(addon):
    from lattice_talk.panels import sidebar

    lattice_talk.unregister()
    character = make_character(list(ARKIT_NAMES[:50]), with_armature=True)
    lattice_talk.register()
    bpy.context.view_layer.objects.active = character.mesh
    bpy.ops.lattice_talk.match_character()
    log: list = []
    sidebar.LATTICETALK_PT_character.draw(types.SimpleNamespace(layout=CharacterLayout(log)), bpy.context)
    assert ("template_list", 52) in log and ("prop_search", "jaw_bone") in log
    assert ("label", "2 units unmatched", "ERROR") in log


def test_cli_exports_livelink_csv_and_a_characters_gltf(head, tmp_path):
    clip = make_clip(head, seconds=1.5)
    clip.save(tmp_path / "line.npz")
    assert main(["export", str(tmp_path / "line.npz"), "--format", "livelink", "--out", str(tmp_path / "line.csv")]) == EXIT_OK
    rows = list(csv.reader((tmp_path / "line.csv").open()))
    assert len(rows[0]) == 63 and len(rows) == 1 + 45
    character = make_character([snake_case(n) for n in ARKIT_NAMES])
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "hero.blend"))
    assert main(["export", str(tmp_path / "line.npz"), "--format", "gltf", "--out", str(tmp_path / "line.glb"),
                 "--scene", str(tmp_path / "hero.blend"), "--target", character.mesh.name]) == EXIT_OK
    document = _glb_json(tmp_path / "line.glb")
    assert {c["target"]["path"] for a in document["animations"] for c in a["channels"]} == {"weights"}
    assert main(["export", str(tmp_path / "line.npz"), "--format", "fbx", "--out", str(tmp_path / "line.glb")]) != EXIT_OK


def test_same_audio_and_seed_give_identical_curves(addon, tmp_path):
    """Generate twice with the shipped speech model: same inputs + seed → bit-identical curves and provenance."""
    pytest.importorskip("torch")
    from lattice_talk.core.speech.pipeline import weights_installed

    if not weights_installed():
        pytest.skip("the speech model's weights are not installed")
    from pathlib import Path

    audio = Path(lattice_talk.__file__).parent / "vendor_models" / "samples" / "hello.wav"
    bpy.ops.lattice_talk.add_head(source="DEFAULT")
    bpy.context.scene.lattice_talk.seed = 11
    curves = {}
    for take in ("A", "B"):
        assert bpy.ops.lattice_talk.generate_from_audio(audio_path=str(audio), take_name=take) == {"FINISHED"}
    head_objects = lattice_talk.scene.head_builder.find_head(bpy.context.active_object)
    for take in ("A", "B"):
        actions = sorted((s.action for t in take_tracks(head_objects, take) for s in t.strips), key=lambda a: a.name)
        values = []
        for action in actions:
            for fc in sorted(all_fcurves(action), key=lambda f: (f.data_path, f.array_index)):
                co = np.empty(2 * len(fc.keyframe_points), np.float32)
                fc.keyframe_points.foreach_get("co", co)
                values.append((fc.data_path, fc.array_index, co.tobytes()))
        curves[take] = (values, [json.loads(a[PROVENANCE_PROP]) for a in actions])
    assert curves["A"] == curves["B"]
    provenance = curves["A"][1][0]
    assert provenance["settings"]["seed"] == 11 and len(provenance["model_sha256"]) == 64 and provenance["audio_sha256"]
