"""The default head's eyeballs, teeth, tongue and neck cap: separate objects on the rig that follow its bones and
shape keys, seen in renders, while the face mesh stays the one the speech and video models were made for."""

from __future__ import annotations

import numpy as np
import pytest

from lattice_talk.core.head_parts import PUPIL_ANGLE, UPPER_TEETH_DROP_M, head_parts
from lattice_talk.core.heads import create

bpy = pytest.importorskip("bpy", reason="scene tests need the bpy wheel (pip install -c constraints.txt bpy)")
from mathutils import Matrix  # noqa: E402  (available once bpy is imported)

from clip_fixtures import evaluated_vertices  # noqa: E402
from lattice_talk.core.head_model import JOINT_NAMES  # noqa: E402
from lattice_talk.scene.head_builder import HEAD_ID_PROP, build_head, find_head  # noqa: E402
from lattice_talk.scene.parts import head_part_objects  # noqa: E402
from lattice_talk.scene.preview import _read_png, front_view  # noqa: E402
from lattice_talk.scene.parts import assign_head_materials  # noqa: E402
from lattice_talk.scene.render import render_still, setup_front_render  # noqa: E402

pytestmark = pytest.mark.blender
HEAD = create("default")
JOINTS = HEAD.j_regressor @ HEAD.v_template
EXPECTED_BONES = {"eye_L": "eye_L", "eye_R": "eye_R", "teeth_upper": "neck", "teeth_lower": "jaw", "tongue": "jaw"}


@pytest.fixture
def head():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return build_head(HEAD)


def parts_by_name():
    return {part.name: part for part in head_parts(HEAD)}


def test_eyeballs_sit_on_the_eye_joints_with_the_pupil_on_the_gaze_axis():
    parts = parts_by_name()
    for name, joint in (("eye_L", 3), ("eye_R", 4)):
        eye = parts[name]
        radius = np.linalg.norm(eye.vertices - JOINTS[joint], axis=1)
        assert np.ptp(radius) < 1e-9 and 0.010 < radius[0] < 0.016  # a sphere of about an eyeball's size
        pupil = eye.vertices[eye.faces[eye.face_material == eye.materials.index("pupil")]].mean(axis=1) - JOINTS[joint]
        assert np.all(pupil[:, 2] / np.linalg.norm(pupil, axis=1) > np.cos(PUPIL_ANGLE))
        # The coarse helper eyeball stays inside, so it never pokes through the iris.
        helper = np.linalg.norm(HEAD.v_template[HEAD.regions[name]] - JOINTS[joint], axis=1)
        assert helper.max() <= radius[0] + 1e-9


def test_part_offsets_follow_the_helpers_expression_units():
    parts = parts_by_name()
    tongue = parts["tongue"]
    np.testing.assert_array_equal(tongue.offsets(HEAD.exprdirs), HEAD.exprdirs[tongue.source])
    eye = parts["eye_L"].offsets(HEAD.exprdirs)
    assert np.abs(eye[:, :, HEAD.expression_names.index("eyeLookOutLeft")]).max() > 0.002  # turns with its gaze unit
    assert np.abs(eye[:, :, HEAD.expression_names.index("jawOpen")]).max() < 1e-6  # … not with the jaw


def test_the_neck_cap_closes_the_cut_end_with_a_level_edge():
    cap = parts_by_name()["neck_cap"]
    n = len(cap.source)
    np.testing.assert_array_equal(cap.vertices[:n], HEAD.v_template[cap.source])  # it hangs from the cut itself
    level = cap.vertices[n:2 * n, 1]
    assert np.ptp(level) == 0 and level[0] < HEAD.v_template[:, 1].min()
    edges = np.sort(np.concatenate([cap.faces[:, [0, 1]], cap.faces[:, [1, 2]], cap.faces[:, [2, 0]]]), axis=1)
    keys, counts = np.unique(edges, axis=0, return_counts=True)
    assert set(keys[counts == 1].ravel()) == set(range(n))  # open only where it meets the neck
    tri = cap.vertices[cap.faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert np.all(normals[-n:, 1] < 0)  # the bottom faces down, away from the head


def test_a_head_without_helper_regions_gets_only_the_neck_cap():
    bare = create("default")
    bare.regions = {}
    assert [part.name for part in head_parts(bare)] == ["neck_cap"]


def test_parts_are_separate_objects_on_the_right_bones_and_the_face_mesh_is_unchanged(head):
    parts = head_part_objects(head.armature)
    assert set(parts) == {*EXPECTED_BONES, "neck_cap"}
    for name, bone in EXPECTED_BONES.items():
        assert (parts[name].parent, parts[name].parent_type, parts[name].parent_bone) == (head.armature, "BONE", bone)
    cap = parts["neck_cap"]
    assert cap.parent == head.armature and cap.modifiers[0].object == head.armature  # skinned like the neck
    assert head.mesh[HEAD_ID_PROP] == HEAD.head_id and len(head.mesh.data.vertices) == HEAD.n_vertices
    co = np.empty(HEAD.n_vertices * 3, np.float32)
    head.mesh.data.vertices.foreach_get("co", co)
    np.testing.assert_array_equal(co.reshape(-1, 3), HEAD.v_template.astype(np.float32))
    assert len(evaluated_vertices(bpy, head.mesh)) == HEAD.n_vertices  # the viewport's evaluated face keeps them all
    assert find_head(parts["eye_L"]).mesh == head.mesh  # a selected part finds its head


def part_points(obj) -> np.ndarray:
    """A part's evaluated vertices in the rig's space (the face mesh's frame)."""
    local = evaluated_vertices(bpy, obj)
    to_rig = np.array(obj.parent.matrix_world.inverted() @ obj.matrix_world)
    return local @ to_rig[:3, :3].T + to_rig[:3, 3]


def test_turning_the_eye_bone_turns_the_eyeball(head):
    eye = head_part_objects(head.armature)["eye_L"]
    pole = part_points(eye)[0] - JOINTS[3]
    head.armature.pose.bones["eye_L"].rotation_euler = (0.0, 0.3, 0.0)  # look to the side, about the head's up axis
    bpy.context.view_layer.update()
    turned = part_points(eye)[0] - JOINTS[3]
    np.testing.assert_allclose(turned, np.array(Matrix.Rotation(0.3, 3, "Y")) @ pole, atol=1e-6)
    head.armature.pose.bones["eye_L"].rotation_euler = (0.0, 0.0, 0.0)
    head.mesh.data.shape_keys.key_blocks["eyeLookOutLeft"].value = 1.0  # the gaze unit, through the driven key
    bpy.context.view_layer.update()
    assert np.linalg.norm(part_points(eye)[0] - JOINTS[3] - pole) > 0.002


def test_the_neck_cap_stays_on_the_neck_when_the_head_turns(head):
    cap = head_part_objects(head.armature)["neck_cap"]
    source = parts_by_name()["neck_cap"].source
    head.armature.pose.bones["neck"].rotation_euler = (0.2, 0.4, 0.1)
    bpy.context.view_layer.update()
    face = evaluated_vertices(bpy, head.mesh)
    np.testing.assert_allclose(evaluated_vertices(bpy, cap)[:len(source)], face[source], atol=1e-6)


@pytest.mark.parametrize("how", ["bone", "shape key"])
def test_opening_the_jaw_carries_the_lower_teeth_and_tongue(head, how):
    parts, objects = parts_by_name(), head_part_objects(head.armature)
    rest = {name: part_points(objects[name]) for name in ("teeth_lower", "tongue", "teeth_upper")}
    if how == "bone":
        head.armature.pose.bones["jaw"].rotation_euler = (float(HEAD.info["jaw_open_angle"]), 0.0, 0.0)
    else:
        head.mesh.data.shape_keys.key_blocks["jawOpen"].value = 1.0
    bpy.context.view_layer.update()
    face = evaluated_vertices(bpy, head.mesh)
    for name in ("teeth_lower", "tongue"):
        moved = part_points(objects[name])
        assert np.linalg.norm(moved - rest[name], axis=1).max() > 0.015  # the jaw drops by centimetres
        # Where the helper went: exactly with the key; with the bone up to the tongue root's 10 % neck weight.
        assert np.abs(moved - face[parts[name].source]).max() < (2e-3 if how == "bone" else 1e-6)
    upper = part_points(objects["teeth_upper"])
    np.testing.assert_allclose(upper, rest["teeth_upper"], atol=1e-6)  # the upper row stays with the skull
    np.testing.assert_allclose(upper + [0, UPPER_TEETH_DROP_M, 0], face[parts["teeth_upper"].source], atol=1e-6)


def render(engine: str, tmp_path, resolution: int = 256) -> tuple[np.ndarray, object]:
    """The head with the jaw open, as the demo sets it up, in ``engine``; the image's top row first."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    objects = build_head(HEAD)
    view = front_view(HEAD, resolution)
    setup_front_render(bpy.context.scene, view, samples=16, denoise=True)
    assign_head_materials(objects.mesh, HEAD)
    bpy.context.scene.render.engine = engine
    objects.armature.pose.bones["jaw"].rotation_euler = (0.3, 0.0, 0.0)
    return _read_png(render_still(bpy.context.scene, tmp_path / f"{engine}.png"))[::-1, :, :3], view


def pixel(view, x: float, y: float) -> tuple[int, int]:
    """Head-frame (x, y up) → (row, column) of the front view (the rig turns head y into world z)."""
    u = (x - view.centre[0]) / view.size + 0.5
    v = 0.5 - (y - view.centre[2]) / view.size
    return int(v * view.resolution), int(u * view.resolution)


@pytest.mark.parametrize("engine", ["BLENDER_WORKBENCH", "CYCLES"])
def test_a_render_with_the_mouth_open_shows_teeth_tongue_and_pupils(engine, tmp_path):
    image, view = render(engine, tmp_path)
    pose = np.zeros((1, 5, 3), np.float32)
    pose[0, JOINT_NAMES.index("jaw"), 0] = 0.3
    lips = HEAD.landmark_points(HEAD.forward(pose=pose).vertices)[0][[13, 14]]  # upper, lower inner lip
    top, left = pixel(view, -0.012, lips[0, 1])
    bottom, right = pixel(view, 0.012, lips[1, 1])
    mouth = image[top:bottom, left:right].reshape(-1, 3)
    brightness, chroma = mouth.max(axis=1), np.ptp(mouth, axis=1) / np.maximum(mouth.max(axis=1), 1e-6)
    assert np.sum((brightness > 0.45) & (chroma < 0.08)) >= 10  # teeth: light and grey, unlike lips and skin
    assert np.sum((mouth[:, 0] > 1.3 * mouth[:, 1]) & (brightness > 0.15)) >= 60  # the red tongue
    for joint in (3, 4):
        row, col = pixel(view, *JOINTS[joint][:2])
        centre = image[row - 2:row + 3, col - 2:col + 3].max(axis=2)
        around = image[row - 12:row + 13, col - 12:col + 13].max(axis=2)
        assert centre.min() < 0.25 * np.median(around)  # a dark pupil on the eye's axis, in a lighter eye and face


def test_the_preview_frames_the_head_with_a_margin(head):
    view = front_view(HEAD, 256)
    rows, cols = zip(*(pixel(view, x, y) for x, y in HEAD.v_template[:, :2]))
    rows, cols = np.array(rows), np.array(cols)
    margin = 0.03 * view.resolution
    assert rows.min() > margin  # space over the skull
    assert cols.min() > margin and cols.max() < view.resolution - margin  # and beside the ears
    assert rows.max() > view.resolution  # the neck runs out of the bottom edge, its cut end unseen
