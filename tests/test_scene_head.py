"""The head in real Blender (the bpy wheel): rig, shape keys and correctives match core LBS."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="scene tests need the bpy wheel (pip install -c constraints.txt bpy)")
from mathutils import Matrix, Vector  # noqa: E402  (available once bpy is imported)

import lattice_talk  # noqa: E402
from clip_fixtures import evaluated_vertices  # noqa: E402
from flame_fixtures import make_flame_arrays, write_flame_npz  # noqa: E402
from lattice_talk.core.flame_io import load_flame  # noqa: E402
from lattice_talk.core.head_model import JOINT_NAMES, HeadModel  # noqa: E402
from lattice_talk.core.heads import create  # noqa: E402
from lattice_talk.scene.head_builder import CORRECTIVE_PREFIX, HEAD_ID_PROP, build_head  # noqa: E402
from lattice_talk.scene.parts import HELPERS_GROUP  # noqa: E402

pytestmark = pytest.mark.blender


@pytest.fixture(autouse=True)
def empty_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield




def pose_in_blender(objects, head: HeadModel, expression: np.ndarray, pose: np.ndarray, translation: np.ndarray) -> None:
    for name, value in zip(head.expression_names, expression):
        objects.mesh.data.shape_keys.key_blocks[name].value = float(value)
    for j, name in enumerate(JOINT_NAMES):
        bone = objects.armature.pose.bones[name]
        angle = float(np.linalg.norm(pose[j]))
        axis = pose[j] / angle if angle > 0 else np.array([1.0, 0.0, 0.0])
        bone.rotation_euler = Matrix.Rotation(angle, 3, Vector(axis.tolist())).to_euler("XYZ")
    objects.armature.pose.bones["root"].location = translation.tolist()
    bpy.context.view_layer.update()


@pytest.mark.parametrize("which", ["default", "flame"])
def test_blender_rig_matches_core_lbs(which, tmp_path):
    if which == "default":
        head = create("default")
    else:
        path = tmp_path / "flame2023.npz"
        write_flame_npz(path, make_flame_arrays(seed=5, n_vertices=120, n_faces=200))
        head = load_flame(path)
    rng = np.random.default_rng(7)
    betas = rng.normal(0, 0.5, head.n_shape).astype(np.float32)
    objects = build_head(head, betas=betas)
    lo, hi = head.expression_range
    for trial in range(3):
        expression = rng.uniform(lo, hi, head.n_expression).astype(np.float32) * (0.3 if which == "default" else 1.0)
        pose = rng.normal(0, 0.25, (5, 3)).astype(np.float32)
        translation = rng.normal(0, 0.02, 3).astype(np.float32)
        pose_in_blender(objects, head, expression, pose, translation)
        expected = head.forward(betas=betas[None], expression=expression[None], pose=pose[None], translation=translation[None]).vertices[0]
        got = evaluated_vertices(bpy, objects.mesh)  # armature space: the mesh sits at identity under its rig
        assert np.abs(got - expected).max() <= 1e-4, f"trial {trial}"


def test_correctives_use_native_drivers():
    head = create("default")
    objects = build_head(head)
    keys = objects.mesh.data.shape_keys
    correctives = [k for k in keys.key_blocks if k.name.startswith(CORRECTIVE_PREFIX)]
    assert correctives, "the default head's jaw corrective is missing"
    drivers = keys.animation_data.drivers
    assert len(drivers) == len(correctives)
    assert all(fc.driver.is_simple_expression for fc in drivers)  # evaluated without Python


def test_default_head_rig_layout():
    head = create("default")
    objects = build_head(head)
    assert [b.name for b in objects.armature.data.bones] == list(JOINT_NAMES)
    assert objects.armature.data.bones["jaw"].parent.name == "neck"
    assert objects.mesh[HEAD_ID_PROP] == head.head_id
    jaw_open = objects.mesh.data.shape_keys.key_blocks["jawOpen"]
    assert (jaw_open.slider_min, jaw_open.slider_max, jaw_open.value) == (0.0, 1.0, 0.0)
    # One skin group per joint, and the helper vertices that renders leave to the head's parts (scene.parts).
    assert {g.name for g in objects.mesh.vertex_groups} == {*JOINT_NAMES, HELPERS_GROUP}
    # Z-up in the scene: the top of the head is the highest point.
    world = np.array([tuple(objects.mesh.matrix_world @ v.co) for v in objects.mesh.data.vertices])
    assert world[:, 2].argmax() == head.v_template[:, 1].argmax()


def test_flame_head_sliders_cover_pca_range(tmp_path):
    path = tmp_path / "generic_model.npz"
    write_flame_npz(path, make_flame_arrays(seed=2))
    objects = build_head(load_flame(path))
    key = objects.mesh.data.shape_keys.key_blocks["exp000"]
    assert (key.slider_min, key.slider_max) == (-3.0, 3.0)


def test_addon_registers_and_adds_head():
    lattice_talk.register()
    try:
        assert bpy.ops.lattice_talk.add_head(source="DEFAULT") == {"FINISHED"}
        heads = [o for o in bpy.data.objects if HEAD_ID_PROP in o]
        assert len(heads) == 1 and heads[0].parent.type == "ARMATURE"
    finally:
        lattice_talk.unregister()
    assert not hasattr(bpy.types, "LATTICETALK_PT_head")


def test_add_head_with_bad_flame_file_leaves_scene_unchanged(tmp_path):
    bad = tmp_path / "generic_model.pkl"
    bad.write_bytes(b"\x80\x02not a pickle at all")
    lattice_talk.register()
    try:
        before = {c: len(getattr(bpy.data, c)) for c in ("objects", "meshes", "armatures", "shape_keys", "actions")}
        with pytest.raises(RuntimeError, match="generic_model.pkl"):
            bpy.ops.lattice_talk.add_head(source="FLAME", filepath=str(bad))
        assert {c: len(getattr(bpy.data, c)) for c in before} == before
    finally:
        lattice_talk.unregister()


def test_clip_frame_sheet_is_the_only_file_written(tmp_path):
    from clip_fixtures import make_clip
    from lattice_talk.core.heads import create
    from lattice_talk.scene.preview import render_clip_frames

    head = create("default")
    clip = make_clip(head, seconds=0.5)
    out = render_clip_frames(head, [(clip, 0), (clip, 10), (clip, 14)], tmp_path / "sheet.png", columns=2,
                             resolution=24, samples=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sheet.png"]
    image = bpy.data.images.load(str(out))
    assert tuple(image.size) == (48, 48)  # 2 columns × 2 rows of 24² tiles (the last one blank)
