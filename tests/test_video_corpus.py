"""Ground-truth video corpus: bpy-free planning (classes, seeds, splits) and real Workbench renders."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from lattice_talk.core.clip import AnimationClip, load_clip
from lattice_talk.core.data import video_clips as vc
from lattice_talk.core.heads import create

NAMES = create("default").expression_names


# ----------------------------------------------------------------------------------- planning (no bpy)


def test_class_recipes_are_distinct_unit_vectors():
    vectors = {label: vc.class_vector(label, NAMES) for label in vc.EXPRESSION_CLASSES}
    assert not vectors["neutral"].any()
    emotions = [vectors[label] for label in vc.EXPRESSION_CLASSES[1:]]
    for i, a in enumerate(emotions):
        assert ((a >= 0) & (a <= 1)).all() and a.any()
        for b in emotions[i + 1:]:
            assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) < 0.8  # no two classes nearly the same


def test_planning_is_deterministic_by_seed():
    for kind in vc.KINDS:
        clip_a, cond_a = vc.plan_video_clip(11, kind, 30, names=NAMES)
        clip_b, cond_b = vc.plan_video_clip(11, kind, 30, names=NAMES)
        assert clip_a == clip_b and cond_a == cond_b
    clip_c, _ = vc.plan_video_clip(12, "expression", 30, names=NAMES)
    assert not np.array_equal(clip_a.expression, clip_c.expression)


def test_expression_clips_vary_around_their_class():
    apexes = []
    for seed in range(6):
        clip, _ = vc.plan_video_clip(seed, "expression", 40, label="happy", names=NAMES)
        info = clip.provenance["video_clip"]
        assert info["label"] == "happy" and 0.45 <= info["intensity"] <= 1.0
        apexes.append(clip.expression[-1])
        assert clip.expression[-1, NAMES.index("mouthSmileLeft")] > 0.15
    assert np.std([a[NAMES.index("mouthSmileLeft")] for a in apexes]) > 0.02  # not one fixed face


def test_pose_clips_stay_within_30_degrees_and_blinks_reach_the_lids():
    for seed in range(8):
        clip, conditions = vc.plan_video_clip(seed, "pose", 60, names=NAMES)
        assert np.degrees(np.linalg.norm(clip.global_rotation, axis=1)).max() <= 30 * np.sqrt(3) + 1e-3
        assert all(a <= 30 + 1e-3 for a in clip.provenance["video_clip"]["head_deg_max"])
        lids = clip.expression[:, [NAMES.index(u) for u in vc.BLINK_UNITS]]
        assert (lids >= clip.blink[:, None] - 1e-6).all()
        assert 0.2 <= conditions.camera_distance <= 2.0 and conditions.lighting in vc.LIGHTINGS
    rng = np.random.default_rng(0)
    pitch, yaw, roll = (np.radians(rng.uniform(-30, 30, 50)) for _ in range(3))
    rotvec = vc.euler_to_axis_angle(pitch, yaw, roll)
    from lattice_talk.core.rotations import axis_angle_to_quat  # yaw alone turns +Z towards +X
    assert np.allclose(vc.euler_to_axis_angle(np.zeros(1), np.radians([30.0]), np.zeros(1)), [[0, np.radians(30), 0]])
    assert np.allclose(np.linalg.norm(axis_angle_to_quat(rotvec), axis=1), 1.0)


def test_heldout_split_is_stable_and_relit_pairs_share_the_clip():
    splits = [vc.split_of(3, i, 0.2) for i in range(400)]
    assert splits[:50] == [vc.split_of(3, i, 0.2) for i in range(50)]  # independent of the corpus size
    assert 0.12 < splits.count("heldout") / len(splits) < 0.28
    pairs = [p for i in range(16) if len(p := vc.plan_corpus_entry(3, i, 10, relit_share=0.5, names=NAMES)) == 2]
    assert pairs
    base, relit = pairs[0]
    assert relit.clip is base.clip and relit.split == base.split
    assert relit.conditions.lighting != base.conditions.lighting
    assert dataclasses.replace(relit.conditions, lighting=base.conditions.lighting, light_rotation_deg=base.conditions.light_rotation_deg,
                               exposure=base.conditions.exposure) == base.conditions
    entries = [vc.manifest_entry(p) for p in pairs[0]]
    assert entries[0]["clip"] == entries[1]["clip"] and entries[1]["relit_of"] == entries[0]["name"]
    assert vc.RenderConditions.from_json(json.loads(json.dumps(entries[1]["conditions"]))) == relit.conditions


# ----------------------------------------------------------------------------------- rendering (bpy)


def _read_video(path):
    cv2 = pytest.importorskip("cv2")
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return np.array(frames), fps


def _turning_clip(n_frames: int, yaw_deg: float) -> AnimationClip:
    yaw = np.radians(np.linspace(-yaw_deg, yaw_deg, n_frames))
    return AnimationClip(fps=30, start_frame=1, head_id=vc.HEAD_ID, expression=np.zeros((n_frames, len(NAMES))),
                         expression_names=NAMES, global_rotation=vc.euler_to_axis_angle(0 * yaw, yaw, 0 * yaw))


def _video_facts(path) -> tuple[int, tuple[int, int], float]:
    """Frame count, (width, height) and fps as Blender reads the file (no OpenCV needed)."""
    import bpy

    movie = bpy.data.movieclips.load(str(path))
    try:
        return movie.frame_duration, tuple(movie.size), movie.fps
    finally:
        bpy.data.movieclips.remove(movie)


@pytest.mark.blender
def test_rendered_corpus_entry_and_its_ground_truth(tmp_path):
    pytest.importorskip("bpy", reason="scene tests need the bpy wheel")
    from lattice_talk.scene.video_render import render_video_corpus

    # A small corpus: the video, the clip saved beside it, the manifest; a second run skips finished work.
    summary = render_video_corpus(tmp_path / "corpus", count=2, seed=5, n_frames=6, relit_share=1.0)
    manifest = json.loads((tmp_path / "corpus" / "manifest.json").read_text())
    assert [e["name"] for e in manifest["clips"]] == ["v00000", "v00000_relit", "v00001", "v00001_relit"]
    for entry in manifest["clips"]:
        assert _video_facts(tmp_path / "corpus" / entry["video"]) == (6, (640, 480), 30.0)
    planned = vc.plan_corpus_entry(5, 1, 6, relit_share=1.0, names=NAMES)
    assert load_clip(tmp_path / "corpus" / manifest["clips"][2]["clip"]) == planned[0].clip
    assert manifest["clips"][3]["lighting"] == planned[1].conditions.lighting != manifest["clips"][2]["lighting"]
    assert manifest["clips"][2]["split"] == planned[0].split and summary["rendered"] == 4
    assert render_video_corpus(tmp_path / "corpus", count=2, seed=5, n_frames=6, relit_share=1.0)["skipped"] == 4


@pytest.mark.blender
def test_blender_encoder_writes_the_video(tmp_path):
    pytest.importorskip("bpy", reason="scene tests need the bpy wheel")
    from lattice_talk.scene.video_render import render_clip_video

    conditions = vc.RenderConditions(seed=3, width=160, height=120, noise_sigma=2.0)
    result = render_clip_video(_turning_clip(4, 10.0), conditions, tmp_path / "b.mp4", encoder="blender")
    assert result.encoder == "blender" and result.warnings  # no sensor noise from Blender's encoder
    assert _video_facts(result.path) == (4, (160, 120), 30.0)
    assert [p.name for p in tmp_path.iterdir()] == ["b.mp4"]  # no temp files left


@pytest.mark.blender
def test_rendered_head_turns(tmp_path):
    pytest.importorskip("bpy", reason="scene tests need the bpy wheel")
    pytest.importorskip("cv2", reason="the 'video' extra")
    from lattice_talk.scene.video_render import render_clip_video

    # The head turns: a yaw sweep changes the picture, a still clip (no noise) does not.
    small = vc.RenderConditions(seed=1, width=160, height=120, camera_distance=0.5)
    turn = render_clip_video(_turning_clip(8, 30.0), small, tmp_path / "turn.mp4")
    still = render_clip_video(_turning_clip(8, 0.0), small, tmp_path / "still.mp4")
    turn_frames, fps = _read_video(turn.path)
    assert fps == pytest.approx(30.0) and turn.encoder == "opencv"
    still_frames, _ = _read_video(still.path)
    assert turn_frames.shape == (8, 120, 160, 3)
    diff = lambda v: np.abs(v[0].astype(float) - v[-1].astype(float)).mean()  # noqa: E731
    assert diff(still_frames) < 1.0 and diff(turn_frames) > 4.0
    # (test_mediapipe_finds_the_rendered_face checks the direction of the turn.)


@pytest.mark.blender
def test_mediapipe_finds_the_rendered_face(tmp_path):
    pytest.importorskip("bpy", reason="scene tests need the bpy wheel")
    mp = pytest.importorskip("mediapipe", reason="the 'video' extra (mediapipe==0.10.21)")
    cv2 = pytest.importorskip("cv2")
    from lattice_talk.scene.video_render import render_clip_video

    conditions = vc.RenderConditions(seed=2, lighting="key_left", noise_sigma=4.0, camera_distance=0.7)
    result = render_clip_video(_turning_clip(5, 25.0), conditions, tmp_path / "face.mp4")
    frames, _ = _read_video(result.path)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        found = [mesh.process(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)).multi_face_landmarks for f in frames]
    assert all(f is not None for f in found), [f is not None for f in found]
    # Positive yaw turns the face to the subject's left, which the camera sees on the image's right:
    # the nose tip (point 1) moves from left of the cheeks' midpoint (234, 454) to right of it.
    def nose_offset(landmarks):
        p = landmarks[0].landmark
        return p[1].x - (p[234].x + p[454].x) / 2

    assert nose_offset(found[0]) < -0.01 and nose_offset(found[-1]) > 0.01


@pytest.mark.blender
def test_painted_brows_and_lips_are_where_mediapipe_puts_them(tmp_path):
    pytest.importorskip("bpy", reason="scene tests need the bpy wheel")
    mp = pytest.importorskip("mediapipe", reason="the 'video' extra (mediapipe==0.10.21)")
    cv2 = pytest.importorskip("cv2")
    from lattice_talk.scene.video_render import render_clip_video

    def brow_and_lip_contrast(conditions, name):
        frames, _ = _read_video(render_clip_video(_turning_clip(3, 0.0), conditions, tmp_path / name).path)
        rgb = cv2.cvtColor(frames[1], cv2.COLOR_BGR2RGB)
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
            p = mesh.process(rgb).multi_face_landmarks[0].landmark
        px = lambda *ids: rgb[int(np.mean([p[i].y for i in ids]) * rgb.shape[0]),  # noqa: E731
                              int(np.mean([p[i].x for i in ids]) * rgb.shape[1])].astype(float)
        brow = (px(105, 52) + px(334, 282)) / 2  # the middle of each brow, between its upper and lower edge
        forehead = (px(105, 52, 67, 67) + px(334, 282, 297, 297)) / 2  # the same column, higher up
        lip = (px(0, 13) + px(17, 14)) / 2  # upper and lower lip bodies
        cheek = (px(50) + px(280)) / 2
        return forehead.mean() - brow.mean(), (lip[0] - lip[1:].mean()) - (cheek[0] - cheek[1:].mean())

    painted = vc.RenderConditions(seed=3, camera_distance=0.6, brow_rgb=(0.03, 0.02, 0.01), lip_rgb=(0.6, 0.2, 0.2))
    brow_dark, lip_red = brow_and_lip_contrast(painted, "painted.mp4")
    bare = dataclasses.replace(painted, brow_rgb=painted.skin_rgb, lip_rgb=painted.skin_rgb)
    bare_brow, bare_lip = brow_and_lip_contrast(bare, "bare.mp4")
    assert brow_dark > bare_brow + 20 and lip_red > bare_lip + 10, (brow_dark, bare_brow, lip_red, bare_lip)
