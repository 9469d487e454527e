"""HeadModel and LBS on the shipped default head and on generated FLAME-format heads (no Blender)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from flame_fixtures import make_flame_arrays, write_flame_npz
from lattice_talk.core.errors import HeadModelError
from lattice_talk.core.flame_io import load_flame
from lattice_talk.core.head_model import JOINT_NAMES, HeadModel, load_head_file
from lattice_talk.core.heads import DEFAULT_HEAD_PATH, create

REPO = Path(__file__).resolve().parents[1]

ARKIT_52 = {
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff",
    "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel", "mouthLeft",
    "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
    "tongueOut",
}


@pytest.fixture(scope="module")
def default_head() -> HeadModel:
    return create("default")


@pytest.fixture(scope="module")
def flame_head(tmp_path_factory) -> HeadModel:
    path = tmp_path_factory.mktemp("flame") / "flame2023.npz"
    write_flame_npz(path, make_flame_arrays(seed=3, n_vertices=80, n_faces=120))
    return load_flame(path)


def random_params(head: HeadModel, batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lo, hi = head.expression_range
    return {
        "betas": rng.normal(0, 0.5, (batch, head.n_shape)).astype(np.float32),
        "expression": rng.uniform(lo, hi, (batch, head.n_expression)).astype(np.float32),
        "pose": rng.normal(0, 0.3, (batch, len(JOINT_NAMES), 3)).astype(np.float32),
        "translation": rng.normal(0, 0.05, (batch, 3)).astype(np.float32),
    }


@pytest.mark.parametrize("which", ["default_head", "flame_head"])
def test_numpy_and_torch_lbs_agree(which, request):
    head = request.getfixturevalue(which)
    params = random_params(head, batch=6, seed=1)
    out_np = head.forward(**params)
    out_t = head.forward(**{k: torch.from_numpy(v) for k, v in params.items()})
    assert np.abs(out_np.vertices - out_t.vertices.detach().numpy()).max() <= 1e-5
    assert np.abs(out_np.joints - out_t.joints.detach().numpy()).max() <= 1e-5
    # The pose really moves the mesh (so agreement is not trivial).
    assert np.abs(out_np.vertices - head.forward(betas=params["betas"], expression=params["expression"]).vertices).max() > 1e-3


def test_neutral_forward_is_the_template(default_head):
    assert np.abs(default_head.forward().vertices[0] - default_head.v_template).max() < 1e-6


def test_root_rotation_is_rigid_about_the_root_joint(default_head):
    pose = np.zeros((1, 5, 3), np.float32)
    pose[0, 0] = [0.0, 0.5, 0.0]
    out = default_head.forward(pose=pose).vertices[0]
    root = default_head.j_regressor[0] @ default_head.v_template
    dist_rest = np.linalg.norm(default_head.v_template - root, axis=1)
    assert np.allclose(np.linalg.norm(out - root, axis=1), dist_rest, atol=1e-5)


def test_torch_lbs_is_differentiable(default_head):
    expression = torch.zeros(1, default_head.n_expression, requires_grad=True)
    pose = torch.zeros(1, 5, 3, requires_grad=True)
    out = default_head.forward(expression=expression, pose=pose)
    out.vertices.sum().backward()
    assert torch.isfinite(pose.grad).all() and expression.grad.abs().sum() > 0


def test_jaw_bone_with_corrective_reproduces_jaw_open(default_head):
    """The shipped pose corrective turns a jaw rotation into the sculpted jawOpen unit."""
    angle = float(default_head.info["jaw_open_angle"])
    pose = np.zeros((1, 5, 3), np.float32)
    pose[0, JOINT_NAMES.index("jaw"), 0] = angle
    by_bone = default_head.forward(pose=pose).vertices[0]
    expression = np.zeros((1, default_head.n_expression), np.float32)
    expression[0, default_head.expression_names.index("jawOpen")] = 1.0
    by_unit = default_head.forward(expression=expression).vertices[0]
    assert np.abs(by_bone - by_unit).max() < 2e-4  # fp16 storage of the bases
    assert np.abs(by_unit - default_head.v_template).max() > 0.01  # the jaw really opens (> 1 cm)


def test_default_head_schema(default_head):
    assert set(default_head.expression_names) == ARKIT_52
    assert default_head.expression_range == (0.0, 1.0)
    assert default_head.joint_names == JOINT_NAMES
    assert np.allclose(default_head.lbs_weights.sum(1), 1.0, atol=1e-5)
    assert np.allclose(default_head.j_regressor.sum(1), 1.0, atol=1e-5)
    assert default_head.landmarks is not None and len(default_head.landmarks.face_index) == 478
    assert DEFAULT_HEAD_PATH.stat().st_size < 10e6
    # Head-sized, in metres, face towards +Z, eyes above the mouth, left eye (eye_L) at +X as in FLAME.
    joints = default_head.forward().joints[0]
    assert 0.1 < np.ptp(default_head.v_template[:, 1]) < 0.5
    assert joints[3, 0] > 0 > joints[4, 0]
    assert joints[3, 1] > joints[2, 1]


def test_default_head_landmarks_sit_where_mediapipe_says(default_head):
    """Spot-check the embedding against MediaPipe's point semantics."""
    pts = default_head.landmark_points(default_head.forward().vertices)[0]
    by_id = dict(zip(default_head.landmarks.mediapipe_index.tolist(), pts))
    nose_tip, upper_lip, lower_lip, chin = by_id[1], by_id[13], by_id[14], by_id[152]
    left_eye_outer, right_eye_outer = by_id[263], by_id[33]  # the subject's left and right
    assert nose_tip[2] > upper_lip[2] and nose_tip[2] > left_eye_outer[2]  # the nose sticks out
    assert upper_lip[1] > lower_lip[1] > chin[1]
    assert np.linalg.norm(upper_lip - lower_lip) < 0.001  # lips touch at rest (inner lip points)
    # ... and part when the jaw opens: the upper point stays with the skull, the lower follows the jaw.
    pose = np.zeros((1, 5, 3), np.float32)
    pose[0, 2, 0] = 0.1
    opened = dict(zip(default_head.landmarks.mediapipe_index.tolist(), default_head.landmark_points(default_head.forward(pose=pose).vertices)[0]))
    assert np.linalg.norm(opened[13] - opened[14]) > 0.008
    assert np.linalg.norm(opened[13] - upper_lip) < 0.001
    assert left_eye_outer[0] > 0 > right_eye_outer[0]
    assert 0.07 < np.linalg.norm(left_eye_outer - right_eye_outer) < 0.12  # adult outer-canthal width
    # Lid points sit on the lids, not on the eyeball: a blink brings them together.
    blink = np.zeros((1, default_head.n_expression), np.float32)
    blink[0, [default_head.expression_names.index(n) for n in ("eyeBlinkLeft", "eyeBlinkRight")]] = 1.0
    closed = dict(zip(default_head.landmarks.mediapipe_index.tolist(), default_head.landmark_points(default_head.forward(expression=blink).vertices)[0]))
    for upper, lower in ((386, 374), (159, 145)):
        assert by_id[upper][1] - by_id[lower][1] > 0.006 and closed[upper][1] - closed[lower][1] < 0.001
    iris_left = by_id[473]
    assert np.linalg.norm(iris_left - default_head.forward().joints[0, 3]) < 0.02  # on the left eyeball


def test_head_file_round_trip_and_validation(tmp_path, flame_head):
    path = flame_head.save(tmp_path / "head.npz", basis_dtype=np.float32)
    loaded = load_head_file(path)
    for name in ("v_template", "faces", "shapedirs", "exprdirs", "posedirs", "j_regressor", "lbs_weights"):
        assert np.array_equal(getattr(loaded, name), getattr(flame_head, name)), name
    assert loaded.expression_names == flame_head.expression_names
    assert create(path).head_id == flame_head.head_id

    with pytest.raises(HeadModelError, match="posedirs"):
        HeadModel(**{**vars(flame_head), "posedirs": flame_head.posedirs[:, :, :30]})
    with pytest.raises(HeadModelError, match="expression names"):
        HeadModel(**{**vars(flame_head), "expression_names": ("a",)})
    broken = tmp_path / "broken.npz"
    broken.write_bytes(path.read_bytes()[:200])
    with pytest.raises(HeadModelError, match="broken.npz"):
        load_head_file(broken)
    with pytest.raises(HeadModelError, match="unknown head file type"):
        create(tmp_path / "head.obj")


def test_the_default_heads_blinks_close_onto_the_lower_lid():
    """tools/eyelid_closure.py has been applied: the lid points sit straight above each other and at eyeBlink 1 the
    upper ones stand on the lower ones (no tuck under them), so the lids travel ~0.08 of the eye-corner distance, near
    a real speaker's do (MakeHuman's own targets and the old embedding: 0.06, crossing)."""
    import sys

    from lattice_talk.core.video.eyes import EYE_GEOMETRY

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from eyelid_closure import BLINK_UNITS, _points

    head = create("default")
    for side, (outer, inner, pairs) in EYE_GEOMETRY.items():
        blink = head.v_template + head.exprdirs[:, :, head.expression_names.index(BLINK_UNITS[side])].astype(np.float64)
        eye_width = np.linalg.norm(np.subtract(*_points(head, head.v_template, [33, 263])))
        for shape, most in ((head.v_template, None), (blink, 0.5e-3)):
            upper, lower = _points(head, shape, [u for u, _ in pairs]), _points(head, shape, [lo for _, lo in pairs])
            if most is None:
                open_gap = np.linalg.norm(upper - lower, axis=1) / eye_width
            else:
                # On average over the three pairs (a least-squares fit) height and depth meet within 0.5 mm.
                assert np.abs((upper[:, 1:] - lower[:, 1:]).mean(axis=0)).max() < most
                travel = open_gap - np.linalg.norm(upper - lower, axis=1) / eye_width
                assert travel.mean() > 0.075 and travel.min() > 0.065, (side, travel)  # measured: mean 0.077 (R), 0.084 (L)
