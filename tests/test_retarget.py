"""Retargeting motion-space tracks onto heads: exact recovery, transfer across face shapes, lip contact."""

from __future__ import annotations

import numpy as np
import pytest

from flame_fixtures import make_embedding_arrays, make_flame_arrays, write_embedding_npz, write_flame_npz
from lattice_talk.core.clip import AnimationClip
from lattice_talk.core.mouth import SEAL_UNITS
from lattice_talk.core.errors import HeadModelError
from lattice_talk.core.flame_io import load_flame
from lattice_talk.core.heads import create
from lattice_talk.core.landmark_rig import LandmarkRig
from lattice_talk.core.mediapipe_points import EYE_OUTER_CORNERS, LIPS_INNER
from lattice_talk.core.metrics import mouth_opening
from lattice_talk.core.lip_geometry import INNER_LIP_PAIRS, lip_gap, MM
from lattice_talk.core.motion_file import MotionTrack
from lattice_talk.core.retarget import Retargeter, eyelid_closure, solve_box_qp, to_clip

# A different face: wider, taller, longer chin, another nose (about 11 % larger inter-ocular distance).
SHAPE = {"head-scale-horiz-incr": 0.6, "head-scale-vert-incr": 0.5, "chin-width-incr": 0.5, "chin-height-incr": 0.5,
         "nose-scale-vert-incr": 0.5, "head-fat-incr": 0.4}
SPEECH_UNITS = ("mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "mouthFunnel",
                "mouthPucker", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight")


@pytest.fixture(scope="module")
def head():
    return create("default")


@pytest.fixture(scope="module")
def retargeter(head):
    return Retargeter(head)


def motion_of(rig: LandmarkRig, expression: np.ndarray, jaw: np.ndarray) -> MotionTrack:
    """The rig's MediaPipe points for per-frame expression and jaw angle, with its rest face as neutral."""
    pose = np.zeros((len(jaw), 5, 3), np.float32)
    pose[:, 2, 0] = jaw
    rest = rig.points(np.zeros((1, expression.shape[1]), np.float32), np.zeros((1, 5, 3), np.float32))[0]
    return MotionTrack(fps=30.0, points=rig.points(expression.astype(np.float32), pose), point_ids=rig.mediapipe_index,
                       neutral=rest)


def vertical_lip_gaps_mm(track: MotionTrack) -> np.ndarray:
    """(T, pairs) upper minus lower inner-lip point along +Y, mm: negative means the lips cross."""
    upper = track.select([u for u, _ in INNER_LIP_PAIRS])[:, :, 1]
    lower = track.select([l for _, l in INNER_LIP_PAIRS])[:, :, 1]
    return (upper - lower).astype(np.float64) * MM


def shaped_betas(head) -> np.ndarray:
    betas = np.zeros(head.n_shape, np.float32)
    for name, value in SHAPE.items():
        betas[head.shape_names.index(name)] = value
    return betas


def speech_like(head, n_frames: int, seed: int, units: tuple[str, ...] = SPEECH_UNITS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random speech-like frames; every fourth one a bilabial seal (the articulation model's SEAL_UNITS, jaw shut).
    Returns expression (T, E), jaw (T,) and the seal mask (T,)."""
    rng = np.random.default_rng(seed)
    index = {name: i for i, name in enumerate(head.expression_names)}
    expression = np.zeros((n_frames, head.n_expression), np.float32)
    jaw = np.zeros(n_frames, np.float32)
    seal = np.arange(n_frames) % 4 == 0
    for t in range(n_frames):
        if seal[t]:
            for name, value in SEAL_UNITS.items():
                expression[t, index[name]] = value
        else:
            for name in rng.choice(units, 4, replace=False):
                expression[t, index[name]] = rng.uniform(0.0, 0.5)
            jaw[t] = rng.uniform(0.02, 0.3)
    return expression, jaw, seal


def on_head(rig: LandmarkRig, result) -> MotionTrack:
    """The retargeted parameters evaluated on the head (its landmark rig: the same points as the posed mesh)."""
    return motion_of(rig, result.expression, result.jaw)


# ------------------------------------------------------------------------------------------ recovery
def test_recovers_default_head_parameters(head, retargeter):
    rng = np.random.default_rng(0)
    units = [i for i, name in enumerate(head.expression_names) if name.startswith(("mouth", "brow", "eye"))]
    expression = np.zeros((200, head.n_expression), np.float32)
    for frame in expression:
        chosen = rng.choice(units, 8, replace=False)
        frame[chosen] = rng.uniform(0.0, 0.6, len(chosen))
    jaw = rng.uniform(0.0, 0.3, 200).astype(np.float32)
    rig = LandmarkRig(head)
    motion = motion_of(rig, expression, jaw)

    result = retargeter.retarget(motion)

    # jawOpen duplicates the jaw bone, tongueOut moves no landmark: both are held at 0.
    assert retargeter.held_units == ("jawOpen", "tongueOut")
    assert result.expression.shape == (200, head.n_expression) and result.jaw.shape == (200,)
    # Random units can push the lower inner lip above the upper one; the solver refuses to reproduce that,
    # so exact recovery is checked where the motion's lips do not cross (most frames).
    clean = vertical_lip_gaps_mm(motion).min(axis=1) > 0.1
    assert clean.mean() > 0.8
    assert np.abs(result.expression - expression)[clean].max() < 1e-3
    assert np.abs(result.jaw - jaw)[clean].max() < 1e-3
    assert result.residual_mm[clean].max() < 0.05
    # Where the motion's lips cross, the head's do not.
    assert vertical_lip_gaps_mm(on_head(rig, result)).min() >= 0.0


def test_recovers_every_frame_without_the_lip_term(head):
    rng = np.random.default_rng(1)
    expression = np.zeros((60, head.n_expression), np.float32)
    mouth = [i for i, name in enumerate(head.expression_names) if name.startswith("mouth")]
    for frame in expression:
        frame[rng.choice(mouth, 6, replace=False)] = rng.uniform(0.0, 0.6, 6)
    jaw = rng.uniform(0.0, 0.3, 60).astype(np.float32)
    result = Retargeter(head, lip_contact_weight=0.0).retarget(motion_of(LandmarkRig(head), expression, jaw))
    assert not result.contact.any()
    assert np.abs(result.expression - expression).max() < 1e-3
    assert np.abs(result.jaw - jaw).max() < 1e-3


@pytest.fixture(scope="module")
def flame_head(tmp_path_factory):
    """A FLAME-format head (300 vertices, 100 PCA expressions) with a 105-point MediaPipe embedding."""
    folder = tmp_path_factory.mktemp("flame")
    write_flame_npz(folder / "flame2023.npz", make_flame_arrays(seed=4, n_vertices=300, n_faces=500))
    embedding = make_embedding_arrays(seed=5, n_faces=500)
    rng = np.random.default_rng(6)
    # Random triangles are no lips, so the embedding leaves the inner-lip points out; it needs the eye corners.
    others = np.setdiff1d(np.arange(478), EYE_OUTER_CORNERS + LIPS_INNER)
    embedding["landmark_indices"] = np.sort(np.concatenate([EYE_OUTER_CORNERS, rng.choice(others, 103, replace=False)]))
    write_embedding_npz(folder / "embedding.npz", **embedding)
    return load_flame(folder / "flame2023.npz", landmark_embedding_path=folder / "embedding.npz")


def test_recovers_flame_pca_parameters_from_105_points(flame_head):
    rng = np.random.default_rng(7)
    expression = rng.uniform(-2.0, 2.0, (80, flame_head.n_expression)).astype(np.float32)
    jaw = rng.uniform(0.0, 0.3, 80).astype(np.float32)
    retargeter = Retargeter(flame_head)
    result = retargeter.retarget(motion_of(LandmarkRig(flame_head), expression, jaw))
    assert len(retargeter.point_ids) == 105 and retargeter.held_units == ()
    assert np.abs(result.expression - expression).max() < 1e-3
    assert np.abs(result.jaw - jaw).max() < 1e-3
    assert result.residual_mm.max() < 0.05
    assert result.eyelids is None  # the embedding has no lid points


def test_fits_the_points_a_motion_carries(head, retargeter):
    """A track with only a subset of the points (here the 105 of the FLAME test) is fitted on those."""
    rng = np.random.default_rng(8)
    keep = np.sort(np.concatenate([EYE_OUTER_CORNERS, rng.choice(np.setdiff1d(np.arange(478), EYE_OUTER_CORNERS), 103, replace=False)]))
    expression, jaw, _ = speech_like(head, 20, seed=8)
    full = motion_of(LandmarkRig(head), expression, jaw)
    columns = [full.column(i) for i in keep]
    subset = MotionTrack(fps=full.fps, points=full.points[:, columns], point_ids=keep, neutral=full.neutral[columns])
    _, ids = retargeter.target_points(subset)
    assert list(ids) == list(keep)
    result = retargeter.retarget(subset)
    assert np.abs(result.jaw - jaw).max() < 1e-3
    assert result.residual_mm.max() < 0.05


# ------------------------------------------------------------------------------------------ transfer
@pytest.fixture(scope="module")
def shaped_motion(head):
    """Speech-like motion of a differently shaped (and sized) speaker, with bilabial seals."""
    expression, jaw, seal = speech_like(head, 160, seed=2)
    return motion_of(LandmarkRig(head, shaped_betas(head)), expression, jaw), seal


def test_transfer_keeps_mouth_opening_and_lip_gap_relative_to_face_scale(head, retargeter, shaped_motion):
    motion, _ = shaped_motion
    result = retargeter.retarget(motion)
    target = on_head(LandmarkRig(head), result)
    assert abs(motion.face_scale() / target.face_scale() - 1.0) > 0.05  # the faces really differ in size
    open_ = mouth_opening(motion) > 2.0
    assert open_.sum() > 50
    for measure in (mouth_opening, lip_gap):
        source = measure(motion)[open_] / motion.face_scale()
        moved = measure(target)[open_] / target.face_scale()
        assert np.abs(moved / source - 1.0).max() < 0.10, measure.__name__


def test_lips_that_touch_touch_on_the_head_and_never_cross(head, retargeter, shaped_motion):
    motion, seal = shaped_motion
    result = retargeter.retarget(motion)
    target = on_head(LandmarkRig(head), result)
    assert lip_gap(motion)[seal].max() < 1.0
    assert result.contact[seal].all()
    assert lip_gap(target)[seal].max() < 1.0
    assert vertical_lip_gaps_mm(target).min() >= 0.0


def test_lips_never_cross_on_a_random_sequence(head, retargeter):
    """Any mouth units, so the motion's own lips sometimes cross; the head's never do."""
    mouth = tuple(name for name in head.expression_names if name.startswith("mouth"))
    expression, jaw, seal = speech_like(head, 120, seed=3, units=mouth)
    motion = motion_of(LandmarkRig(head, shaped_betas(head)), expression, jaw)
    assert vertical_lip_gaps_mm(motion).min() < 0.0
    result = retargeter.retarget(motion)
    target = on_head(LandmarkRig(head), result)
    assert vertical_lip_gaps_mm(target).min() >= 0.0
    assert lip_gap(target)[seal].max() < 1.0


# ------------------------------------------------------------------------------------------ parts
def test_box_qp_matches_scipy_lsq_linear():
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(9)
    a = rng.normal(size=(12, 30, 8))
    y = rng.normal(size=(12, 30)) * 3
    lower, upper = np.full(8, -0.2), np.full(8, 0.3)
    x, state = solve_box_qp(a.transpose(0, 2, 1) @ a, (a.transpose(0, 2, 1) @ y[..., None])[..., 0], lower, upper)
    for k in range(12):
        expected = optimize.lsq_linear(a[k], y[k], bounds=(lower, upper), tol=1e-12).x
        assert np.abs(x[k] - expected).max() < 1e-8
    assert ((state == -1) == np.isclose(x, lower)).all() and ((state == 1) == np.isclose(x, upper)).all()


def test_eyelid_closure_from_lid_distance():
    ids = np.array([386, 374, 159, 145])
    neutral = np.array([[0.03, 0.010, 0.1], [0.03, 0.0, 0.1], [-0.03, 0.010, 0.1], [-0.03, 0.0, 0.1]], np.float32)
    points = np.repeat(neutral[None], 3, axis=0)
    points[1, 0, 1] = 0.005  # left upper lid half-way down
    points[2, 2, 1] = -0.002  # right upper lid past the lower one: closed
    closure = eyelid_closure(MotionTrack(fps=30.0, points=points, point_ids=ids, neutral=neutral))
    np.testing.assert_allclose(closure, [[0, 0], [0.5, 0], [0, 1]], atol=1e-6)
    assert eyelid_closure(MotionTrack(fps=30.0, points=points[:, :2], point_ids=ids[:2], neutral=neutral[:2])) is None


def test_to_clip(head, retargeter):
    expression, jaw, _ = speech_like(head, 10, seed=4)
    result = retargeter.retarget(motion_of(LandmarkRig(head), expression, jaw))
    clip = to_clip(result, fps=30.0, start_frame=12, head_id=head.head_id)
    assert isinstance(clip, AnimationClip) and clip.n_frames == 10 and clip.start_frame == 12
    assert clip.expression_names == head.expression_names
    np.testing.assert_array_equal(clip.jaw[:, 0], result.jaw)
    assert not clip.jaw[:, 1:].any()
    assert clip.eyelids.shape == (10, 2)


def test_refuses_points_the_head_does_not_embed(flame_head):
    missing = next(i for i in range(478) if i not in set(flame_head.landmarks.mediapipe_index.tolist()))
    with pytest.raises(HeadModelError, match="not in the landmark embedding"):
        Retargeter(flame_head, points=[*EYE_OUTER_CORNERS, missing])


def test_a_partial_fit_solves_only_its_units_on_its_points(head):
    """The reference-video baseline's shape of fit: upper-face points, upper-face units; the rest held at 0."""
    from lattice_talk.core.mediapipe_points import NOSE_BRIDGE, UPPER_FACE

    upper = ("browInnerUp", "browOuterUpLeft", "eyeBlinkLeft", "eyeSquintRight")
    rig = LandmarkRig(head)
    rng = np.random.default_rng(3)
    expression = np.zeros((6, head.n_expression))
    for name in upper + ("mouthSmileLeft", "mouthFunnel"):
        expression[:, head.expression_names.index(name)] = rng.uniform(0.1, 0.8, 6)
    motion = motion_of(rig, expression, np.full(6, 0.1))
    fit = Retargeter(head, points=sorted(set(UPPER_FACE + NOSE_BRIDGE)), lip_contact_weight=0.0, units=upper,
                     depth_weight=0.3, brow_weight=10.0).retarget(motion)
    solved = [head.expression_names.index(name) for name in upper]
    others = np.setdiff1d(np.arange(head.n_expression), solved)
    assert not fit.expression[:, others].any()
    # The mouth's units barely reach the upper face, so the upper units come back nearly as they were.
    assert np.abs(fit.expression[:, solved] - expression[:, solved]).max() < 0.05
    with pytest.raises(HeadModelError, match="browUpBoth"):
        Retargeter(head, units=("browUpBoth",))


def test_brow_rows_keep_a_raise_the_brow_units_cannot_copy(head):
    """A real brow raise moves the brow points straight up, which no mix of the head's brow units copies exactly;
    the plain least-squares projection shrinks it, the brow-height rows keep its height."""
    from lattice_talk.core.mediapipe_points import BROW_HEIGHTS, BROWS, NOSE_BRIDGE, UPPER_FACE

    rig = LandmarkRig(head)
    rest = rig.points(np.zeros((1, head.n_expression), np.float32), np.zeros((1, 5, 3), np.float32))[0]
    raise_mm = np.linspace(0.0, 4.0, 9)
    points = np.repeat(rest[None], len(raise_mm), axis=0)
    brow_columns = [list(rig.mediapipe_index).index(p) for p in BROWS]
    points[:, brow_columns, 1] += raise_mm[:, None] / MM
    motion = MotionTrack(fps=30.0, points=points, point_ids=rig.mediapipe_index, neutral=rest)
    brow_units = [n for n in head.expression_names if n.startswith("brow")]
    heights = {}
    for weight in (0.0, 10.0):
        fit = Retargeter(head, points=sorted(set(UPPER_FACE + NOSE_BRIDGE)), lip_contact_weight=0.0, units=brow_units,
                         brow_weight=weight).retarget(motion)
        fitted = rig.points(fit.expression, np.zeros((len(raise_mm), 5, 3), np.float32))
        brow, corners = BROW_HEIGHTS["left"]
        columns = lambda ids: [list(rig.mediapipe_index).index(p) for p in ids]  # noqa: E731
        height = (fitted[:, columns(brow), 1].mean(1) - fitted[:, columns(corners), 1].mean(1)) * MM
        heights[weight] = height - height[0]
    assert heights[0.0][-1] < 0.85 * raise_mm[-1] and heights[10.0][-1] > 0.95 * raise_mm[-1]  # measured: 0.81, 0.98
