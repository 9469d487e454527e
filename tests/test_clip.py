"""AnimationClip: validation, storage round trips, atomic save and resampling."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from lattice_talk.core.clip import CHANNELS, CLIP_FILE_FORMAT, AnimationClip, load_clip
from lattice_talk.core.errors import ClipError

NAMES = ("jawOpen", "mouthSmileLeft", "mouthSmileRight", "browInnerUp")


def full_clip(n_frames: int = 24, fps: float = 30.0, seed: int = 0) -> AnimationClip:
    """A clip with every channel filled with awkward float32 values."""
    rng = np.random.default_rng(seed)
    r = lambda *shape: rng.normal(scale=0.3, size=(n_frames, *shape)).astype(np.float32)  # noqa: E731
    return AnimationClip(
        fps=fps, start_frame=7, head_id="flame2023",
        expression=r(len(NAMES)), expression_names=NAMES,
        jaw=r(3), neck=r(3), global_rotation=r(3), global_translation=r(3), eye_L=r(3), eye_R=r(3),
        eyelids=rng.uniform(size=(n_frames, 2)).astype(np.float32),
        blink=rng.uniform(size=n_frames).astype(np.float32),
        provenance={"created_by": "tests", "seed": seed, "inputs": {"audio": "sha256:abc"}},
    )


def smooth_clip(n_frames: int = 60, fps: float = 30.0) -> AnimationClip:
    t = np.arange(n_frames) / fps
    wave = lambda f, p: np.sin(2 * np.pi * f * t + p)  # noqa: E731
    rot = 0.2 * np.stack([wave(0.5, 0.0), wave(0.7, 1.0), wave(0.3, 2.0)], axis=1)
    return AnimationClip(
        fps=fps, start_frame=1, head_id="default",
        expression=0.5 + 0.4 * np.stack([wave(0.4, i) for i in range(len(NAMES))], axis=1),
        expression_names=NAMES, jaw=rot, neck=rot[:, ::-1].copy(), global_translation=0.01 * rot,
        blink=0.5 + 0.5 * wave(0.6, 0.3),
    )


# ---------------------------------------------------------------------- basics and validation
def test_properties_and_conversion():
    clip = AnimationClip(fps=25, start_frame=np.int64(3), head_id="h", jaw=[[0.0, 0.1, 0.2]] * 50, blink=[0.0] * 50)
    assert clip.n_frames == 50
    assert clip.duration == pytest.approx(2.0)
    assert clip.channels() == ("jaw", "blink")
    assert clip.jaw.dtype == np.float32 and isinstance(clip.fps, float) and type(clip.start_frame) is int
    assert full_clip().channels() == CHANNELS


def test_mismatched_frame_counts():
    with pytest.raises(ClipError, match=r"'neck'.*9 frames.*'jaw'.*10"):
        AnimationClip(fps=30, start_frame=0, head_id="h", jaw=np.zeros((10, 3)), neck=np.zeros((9, 3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_names_channel_and_frame(bad):
    eyelids = np.zeros((20, 2), np.float32)
    eyelids[13, 1] = bad
    with pytest.raises(ClipError, match=r"'eyelids'.*non-finite.*frame 13"):
        AnimationClip(fps=30, start_frame=0, head_id="h", blink=np.zeros(20), eyelids=eyelids)


def test_expression_names_must_match():
    with pytest.raises(ClipError, match=r"'expression'.*4 columns but 3 expression_names"):
        AnimationClip(fps=30, start_frame=0, head_id="h", expression=np.zeros((5, 4)), expression_names=NAMES[:3])
    with pytest.raises(ClipError, match="unique.*jawOpen"):
        AnimationClip(fps=30, start_frame=0, head_id="h", expression=np.zeros((5, 2)), expression_names=("jawOpen", "jawOpen"))
    with pytest.raises(ClipError, match="without an expression channel"):
        AnimationClip(fps=30, start_frame=0, head_id="h", jaw=np.zeros((5, 3)), expression_names=NAMES)


def test_zero_frames_and_no_channels():
    with pytest.raises(ClipError, match="'jaw'.*0 frames"):
        AnimationClip(fps=30, start_frame=0, head_id="h", jaw=np.zeros((0, 3)))
    with pytest.raises(ClipError, match="no channels"):
        AnimationClip(fps=30, start_frame=0, head_id="h")


@pytest.mark.parametrize("fps", [-30.0, 0, math.nan, math.inf, 1001, "30", True])
def test_bad_fps(fps):
    with pytest.raises(ClipError, match="fps"):
        AnimationClip(fps=fps, start_frame=0, head_id="h", blink=np.zeros(3))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"jaw": np.zeros((5, 4))}, r"'jaw'.*shape \(5, 4\).*T×3"),
        ({"blink": np.zeros((5, 1))}, r"'blink'.*expected T$"),
        ({"start_frame": 1.5, "blink": np.zeros(5)}, "start_frame"),
        ({"head_id": "", "blink": np.zeros(5)}, "head_id"),
        ({"provenance": {"seed": object()}, "blink": np.zeros(5)}, "provenance.*JSON"),
    ],
)
def test_schema_errors(kwargs, pattern):
    fields = {"fps": 30, "start_frame": 0, "head_id": "h", **kwargs}
    with pytest.raises(ClipError, match=pattern):
        AnimationClip(**fields)


# ---------------------------------------------------------------------- storage
def test_npz_round_trip_is_exact(tmp_path):
    clip = full_clip()
    path = clip.save(tmp_path / "take.npz")
    loaded = load_clip(path)
    assert loaded == clip
    assert all(getattr(loaded, n).dtype == np.float32 for n in CHANNELS)
    assert loaded.expression_names == NAMES and loaded.provenance == clip.provenance


def test_json_round_trip_and_readable(tmp_path):
    clip = full_clip()
    path = clip.save(tmp_path / "take.json")
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["format"] == CLIP_FILE_FORMAT and document["fps"] == 30.0 and document["head_id"] == "flame2023"
    assert len(document["channels"]["jaw"]) == clip.n_frames
    loaded = load_clip(path)
    for name in CHANNELS:
        np.testing.assert_allclose(getattr(loaded, name), getattr(clip, name), atol=1e-6, rtol=0)
    # Shortest float32 decimals read back bit for bit.
    assert loaded == clip


def test_save_creates_missing_folder_and_leaves_no_temp_files(tmp_path):
    path = full_clip().save(tmp_path / "takes" / "a.npz")
    assert os.listdir(path.parent) == ["a.npz"]


def _expect_clip_error_naming(path):
    with pytest.raises(ClipError) as info:
        load_clip(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_unknown_suffix_and_missing_file(tmp_path):
    assert ".npz or .json" in _expect_clip_error_naming(tmp_path / "take.pkl")
    with pytest.raises(ClipError, match=".npz or .json"):
        full_clip().save(tmp_path / "take.txt")
    assert "no such clip file" in _expect_clip_error_naming(tmp_path / "missing.npz")


def test_truncated_npz(tmp_path):
    path = full_clip().save(tmp_path / "take.npz")
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        path.write_bytes(data[:cut])
        _expect_clip_error_naming(path)


def test_corrupted_npz_member(tmp_path):
    path = full_clip(n_frames=400).save(tmp_path / "take.npz")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)  # inside a compressed member: CRC or zlib failure on read
    path.write_bytes(bytes(data))
    _expect_clip_error_naming(path)


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_random_bytes(tmp_path, suffix):
    path = tmp_path / f"noise{suffix}"
    path.write_bytes(np.random.default_rng(1).bytes(2000))
    _expect_clip_error_naming(path)


def test_plain_npy_and_foreign_npz(tmp_path):
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as fh:
        np.save(fh, np.zeros(3))
    assert "single .npy" in _expect_clip_error_naming(npy)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, jaw=np.zeros((3, 3)))
    assert "metadata" in _expect_clip_error_naming(foreign)


def _rewrite_npz(path, **changes):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(arrays["metadata"].item())
    meta.update(changes)
    meta = {k: v for k, v in meta.items() if v is not None}
    arrays["metadata"] = np.array(json.dumps(meta))
    np.savez_compressed(path, **arrays)


def test_wrong_format_tag_and_missing_fields(tmp_path):
    path = full_clip().save(tmp_path / "take.npz")
    _rewrite_npz(path, format="lattice_talk.head/1")
    assert CLIP_FILE_FORMAT in _expect_clip_error_naming(path)
    path = full_clip().save(tmp_path / "take.npz")
    _rewrite_npz(path, fps=None)
    assert "lacks fps" in _expect_clip_error_naming(path)
    path = full_clip().save(tmp_path / "take.npz")
    _rewrite_npz(path, fps=-1)
    assert "fps must be positive" in _expect_clip_error_naming(path)


def test_json_missing_channels_and_bad_values(tmp_path):
    path = tmp_path / "take.json"
    path.write_text(json.dumps({"format": CLIP_FILE_FORMAT, "fps": 30, "start_frame": 0, "head_id": "h"}))
    assert "channels" in _expect_clip_error_naming(path)
    path.write_text(json.dumps({"format": CLIP_FILE_FORMAT, "fps": 30, "start_frame": 0, "head_id": "h",
                                "channels": {"jaw": [[0, 0, 0], [0, 0]]}}))
    assert "'jaw'" in _expect_clip_error_naming(path)
    path.write_text(json.dumps({"format": CLIP_FILE_FORMAT, "fps": 30, "start_frame": 0, "head_id": "h",
                                "channels": {"tongue": [0, 0]}}))
    assert "unknown channels tongue" in _expect_clip_error_naming(path)


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_failed_save_keeps_earlier_take(tmp_path, monkeypatch, suffix):
    good = full_clip(seed=1)
    path = good.save(tmp_path / f"take{suffix}")
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", fail)
    monkeypatch.setattr(AnimationClip, "_json_text", fail)
    with pytest.raises(ClipError, match="No space left") as info:
        full_clip(seed=2).save(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]  # the temp file is gone too
    monkeypatch.undo()
    assert load_clip(path) == good


def test_unexpected_error_during_save_propagates_and_keeps_earlier_take(tmp_path, monkeypatch):
    good = full_clip(seed=1)
    path = good.save(tmp_path / "take.npz")

    def fail(*args, **kwargs):
        raise RuntimeError("encoder bug")

    monkeypatch.setattr(np, "savez_compressed", fail)
    with pytest.raises(RuntimeError, match="encoder bug"):
        full_clip(seed=2).save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == [path.name]
    assert load_clip(path) == good


# ---------------------------------------------------------------------- resampling
def test_resample_frame_counts_follow_duration():
    clip = full_clip(n_frames=30, fps=30)
    assert clip.resample(60).n_frames == 60
    assert clip.resample(24).n_frames == 24
    assert clip.resample(25).fps == 25.0
    assert full_clip(n_frames=100, fps=30).resample(24).n_frames == 80
    assert full_clip(n_frames=1, fps=30).resample(1).n_frames == 1  # never fewer than one frame
    assert clip.resample(60).duration == pytest.approx(clip.duration)


def test_same_fps_resample_is_an_equal_copy():
    clip = full_clip()
    copy = clip.resample(30.0)
    assert copy == clip and copy is not clip and copy.jaw is not clip.jaw
    copy.provenance["seed"] = 99
    assert clip.provenance["seed"] == 0


def test_resample_records_provenance_and_keeps_metadata():
    clip = full_clip(n_frames=30)
    twice = clip.resample(60).resample(24)
    assert twice.provenance["resampled"] == [
        {"from_fps": 30.0, "to_fps": 60.0, "from_frames": 30, "to_frames": 60},
        {"from_fps": 60.0, "to_fps": 24.0, "from_frames": 60, "to_frames": 24},
    ]
    assert "resampled" not in clip.provenance
    assert (twice.start_frame, twice.head_id, twice.expression_names) == (7, "flame2023", NAMES)
    with pytest.raises(ClipError, match="resample fps"):
        clip.resample(0)


def test_resample_up_and_down_recovers_smooth_signal():
    clip = smooth_clip()
    back = clip.resample(60).resample(30)
    assert back.n_frames == clip.n_frames
    for name in clip.channels():
        np.testing.assert_allclose(getattr(back, name), getattr(clip, name), atol=1e-5, rtol=0, err_msg=name)
    # Off-grid rates go through interpolation proper; a smooth signal still comes back closely.
    back = clip.resample(47).resample(30)
    for name in clip.channels():
        np.testing.assert_allclose(getattr(back, name), getattr(clip, name), atol=5e-3, rtol=0, err_msg=name)


def test_linear_channels_interpolate_and_hold_past_the_end():
    clip = AnimationClip(fps=10, start_frame=0, head_id="h", blink=[0.0, 1.0, 0.5])
    up = clip.resample(20)
    np.testing.assert_allclose(up.blink, [0.0, 0.5, 1.0, 0.75, 0.5, 0.5])  # last sample clamps to frame 2


def test_slerp_midpoint_is_half_angle_about_the_same_axis():
    jaw = np.array([[0.0, 0.0, 0.0], [0.4, 0.0, 0.0]], np.float32)
    mid = AnimationClip(fps=30, start_frame=0, head_id="h", jaw=jaw).resample(60).jaw[1]
    angle = np.linalg.norm(mid)
    assert angle == pytest.approx(0.2, abs=1e-6)
    np.testing.assert_allclose(mid / angle, [1.0, 0.0, 0.0], atol=1e-6)


def test_slerp_takes_the_short_arc():
    a = math.radians(170)
    rot = np.array([[0.0, 0.0, a], [0.0, 0.0, -a]], np.float32)
    mid = AnimationClip(fps=30, start_frame=0, head_id="h", neck=rot).resample(60).neck[1]
    # Through 180° about ±z (the same rotation), not through the identity.
    assert np.linalg.norm(mid) == pytest.approx(math.pi, abs=1e-5)
    np.testing.assert_allclose(np.abs(mid / np.linalg.norm(mid)), [0.0, 0.0, 1.0], atol=1e-6)


def test_slerp_keeps_rotations_rigid_between_keys():
    """Between keys the rotation turns at a constant rate about a fixed axis (unlike lerping axis-angle)."""
    from scipy.spatial.transform import Rotation

    keys = np.array([[0.3, -0.2, 0.1], [-0.4, 0.5, 0.2]], np.float32)
    out = AnimationClip(fps=1, start_frame=0, head_id="h", eye_L=keys).resample(4).eye_L[:5]
    r0, r1 = Rotation.from_rotvec(keys[0]), Rotation.from_rotvec(keys[1])
    step = (r0.inv() * r1).magnitude() / 4
    for k, rotvec in enumerate(out):
        assert (r0.inv() * Rotation.from_rotvec(rotvec)).magnitude() == pytest.approx(k * step, abs=1e-5)
