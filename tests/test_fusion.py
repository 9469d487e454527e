"""Reference video + speech (core.motion.fusion; the audio/video offset is test_av_offset.py): the
confidence-weighted blend (lost frames give the audio-only values exactly, bounded cross-fades), the length
rule, the speech pipeline with a video (head pose from the tracker, mouth from the audio), the CLI's --video,
bad videos and cancel during tracking. Real inputs: a shipped GRID talking-head clip (3 s, tests/data/grid_s1) and
its own sound, a tiny random-init decoder saved and reloaded (as in test_speech_pipeline.py)."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lattice_talk.core.motion.face_models import (
    VIDEO_MODEL_WEIGHTS, RetargetFaceModel, VideoFace, neutral_face, video_face_model,
)
from lattice_talk.core.motion.fusion import (
    EDGE_HOLD_SECONDS, FADE_SECONDS, fuse, resample_face, video_weight,
)
from lattice_talk.core.mouth import mouth_unit_mask
from real_media import GRID_DIR

NAMES = ("browInnerUp", "eyeBlinkLeft", "eyeBlinkRight", "jawOpen", "mouthClose", "mouthSmileLeft", "cheekSquintLeft")
UPPER = [0, 1, 2, 6]  # not mouth units
REAL_VIDEO = GRID_DIR / "pbai7a.mpg"  # its mouth-sound lag is the clearest of the two shipped clips (r 0.69)
CLIP_SECONDS, VIDEO_FPS = 3.0, 25.0


def needs_video_stack():
    pytest.importorskip("cv2")
    pytest.importorskip("mediapipe")
    pytest.importorskip("av")


@pytest.fixture(scope="module")
def real_clip(tmp_path_factory):
    """The real clip's 3 s as a silent MPEG-4 (OpenCV) and its own sound as a WAV, plus the tracked video."""
    needs_video_stack()
    import cv2
    import soundfile

    from lattice_talk.core.video.decode import read_audio_track
    from lattice_talk.core.video.track import track_video

    folder = tmp_path_factory.mktemp("real")
    cap = cv2.VideoCapture(str(REAL_VIDEO))
    video = folder / "line.mp4"
    writer = None
    for _ in range(int(CLIP_SECONDS * VIDEO_FPS)):
        ok, frame = cap.read()
        assert ok
        if writer is None:
            writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, frame.shape[1::-1])
        writer.write(frame)
    writer.release()
    cap.release()
    sound = read_audio_track(REAL_VIDEO)
    audio = sound.samples[: int(CLIP_SECONDS * sound.sample_rate)]
    wav = folder / "line.wav"
    soundfile.write(str(wav), audio, sound.sample_rate)
    return types.SimpleNamespace(video=video, wav=wav, audio=audio, rate=sound.sample_rate, track=track_video(video))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    pytest.importorskip("torch")
    from pipeline_fixtures import save_tiny_decoder

    return save_tiny_decoder(tmp_path_factory.mktemp("decoder"))


def synthetic_face(n: int, fps: float, seed: int = 0, confidence: float = 0.9) -> VideoFace:
    rng = np.random.default_rng(seed)
    return VideoFace(fps=fps, units=rng.uniform(0, 1, (n, len(NAMES))).astype(np.float32),
                     head_rotation=rng.normal(0, 0.1, (n, 3)).astype(np.float32),
                     confidence=np.full(n, confidence, np.float32), unit_names=NAMES, model_id="synthetic")


def audio_only(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, len(NAMES))).astype(np.float32), rng.normal(0, 0.05, (n, 3)).astype(np.float32)


# ------------------------------------------------------------------------------------------ blend
def test_lost_frames_give_the_audio_only_values_exactly_and_fades_are_bounded():
    n, fps = 120, 30.0
    face = synthetic_face(n, fps)
    face.confidence[50:53] = 0.0  # lost: interpolated by the tracker
    face.confidence[90] = 0.0
    units, rotation = audio_only(n)
    fused, fused_rotation, weight = fuse(units, NAMES, rotation, face, fps)
    for lost in (50, 51, 52, 90):
        assert weight[lost] == 0.0
        assert np.array_equal(fused[lost], units[lost]) and np.array_equal(fused_rotation[lost], rotation[lost])
    mouth = [3, 4, 5]
    assert np.array_equal(fused[:, mouth], units[:, mouth])  # the mouth is the audio's, always
    step = 1.0 / (FADE_SECONDS * fps)
    assert np.abs(np.diff(weight)).max() <= step + 1e-12
    assert np.abs(np.diff(fused[:, UPPER], axis=0)).max() < 1.0  # no jump beyond the inputs' own motion
    full = weight == 1.0
    assert full[:40].all() and full[63:80].all() and full[101:].all()
    assert np.allclose(fused[full][:, UPPER], face.units[full][:, UPPER], atol=1e-6)
    assert np.allclose(fused_rotation[full], face.head_rotation[full], atol=1e-6)


def test_weight_follows_confidence_through_the_ramp():
    assert np.allclose(video_weight(np.array([0.0, 0.2, 0.35, 0.5, 0.9]), 1.0, fade_seconds=1e-3),
                       [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-12)


def test_blinks_off_and_head_motion_apply_to_the_video_too():
    n, fps = 60, 30.0
    face = synthetic_face(n, fps)
    units, rotation = audio_only(n)
    fused, fused_rotation, _ = fuse(units, NAMES, np.zeros_like(rotation), face, fps, head_motion=0.0, blinks=False)
    assert np.allclose(fused[:, 1:3], 0.0) and np.allclose(fused_rotation, 0.0, atol=1e-7)


# ------------------------------------------------------------------------------------------ length rule
def test_a_short_video_fades_back_to_the_audio_only_take():
    fps, n = 30.0, 90  # 3 s of audio, 1 s of video at 25 fps
    face = synthetic_face(25, 25.0)
    units, rotation = audio_only(n)
    fused, fused_rotation, weight = fuse(units, NAMES, rotation, face, fps)
    assert fused.shape == units.shape and len(weight) == n  # the take keeps the audio's length
    after = np.arange(n) / fps >= 1.0 + EDGE_HOLD_SECONDS - 1e-9  # the last video frame holds EDGE_HOLD_SECONDS
    assert np.array_equal(fused[after], units[after]) and np.array_equal(fused_rotation[after], rotation[after])
    fade, last = int(FADE_SECONDS * fps), int(np.argmax(after)) - 1
    assert weight[0] == 1.0 and weight[last - fade] == 1.0 and 0.0 < weight[last - fade // 2] < 1.0
    assert np.abs(np.diff(weight)).max() <= 1.0 / fade + 1e-12


def test_a_long_video_is_cut_and_another_fps_is_resampled():
    fps, n = 30.0, 60  # 2 s of audio; 5 s of video at 25 fps whose units are a known ramp in time
    face = synthetic_face(125, 25.0)
    video_times = np.arange(125) / 25.0
    face.units[:] = (video_times / 5.0)[:, None]
    units, rotation = audio_only(n)
    fused, _, weight = fuse(units, NAMES, rotation, face, fps)
    assert fused.shape == units.shape and (weight == 1.0).all()
    assert np.allclose(fused[:, UPPER], (np.arange(n) / fps / 5.0)[:, None], atol=1e-6)
    # An offset of 0.4 s: take time t shows video time t + 0.4.
    shifted, _, confidence = resample_face(face, n, fps, 0.4)
    assert np.allclose(shifted[:, 0], (np.arange(n) / fps + 0.4) / 5.0, atol=1e-6) and (confidence > 0).all()
    early, _, confidence = resample_face(face, n, fps, -0.5)  # the video starts 0.5 s into the take
    first = 13  # 0.433 s: the first take frame within EDGE_HOLD_SECONDS (0.08 s) of the video's start
    assert (confidence[:first] == 0).all() and (confidence[first:] > 0).all()
    assert np.allclose(early[:first + 3, 0], 0.0)  # the held edge shows the video's first frame


def test_a_sound_a_frame_longer_than_its_video_holds_the_last_frame():
    """A container's sound often outlasts its video by a frame (or a one-frame offset leaves one uncovered):
    the last video frame holds there instead of a FADE_SECONDS fade to the audio-only motion."""
    fps = 25.0
    face = synthetic_face(75, fps)
    units, rotation = audio_only(76)
    _, _, weight = fuse(units, NAMES, rotation, face, fps)
    assert (weight == 1.0).all() and EDGE_HOLD_SECONDS * fps >= 1
    _, _, weight = fuse(units, NAMES, rotation, face, fps, offset_seconds=3 / fps)  # three frames uncovered: a fade
    assert weight[-1] == 0.0 and weight[:60].min() == 1.0


# ------------------------------------------------------------------------------------------ face models
def test_retarget_baseline_on_the_real_clip(real_clip):
    track = real_clip.track
    face = RetargetFaceModel().predict(track)
    assert face.units.shape == (track.n_frames, 52) and face.units.min() >= 0.0 and face.units.max() <= 1.0
    assert np.array_equal(face.head_rotation, track.head_rotation) and np.array_equal(face.confidence, track.confidence)
    left, right = face.unit_names.index("eyeBlinkLeft"), face.unit_names.index("eyeBlinkRight")
    # eyeBlink is solved from the lid points like the other units and follows the tracker's own eye closure.
    assert min(np.corrcoef(face.units[:, k], track.eye_closure[:, side])[0, 1] for side, k in enumerate((left, right))) > 0.8
    assert face.units[37, left] > 0.5 and face.units[25, left] < 0.2  # the blink at frame 37, open at 25
    mouth = mouth_unit_mask(face.unit_names)
    assert not face.units[:, mouth].any()  # the lips and jaw are the audio's: the baseline leaves them at 0
    neutral = neutral_face(track.points_metric, track.confidence > 0)
    assert neutral.shape == (478, 3) and face.meta["retarget_residual_mm"] < 3.0


def test_face_crops_are_cut_only_for_a_model_that_reads_them(real_clip):
    from lattice_talk.core.motion.face_models import LEARNED_VIDEO_MODEL_DIR
    from lattice_talk.core.motion.fusion import track_reference_video
    from lattice_talk.core.motion.video_model import load_face_model

    learned = load_face_model(LEARNED_VIDEO_MODEL_DIR)
    assert learned.reads_face_crops and not RetargetFaceModel.reads_face_crops
    for model, cut in ((RetargetFaceModel(), False), (learned, True)):
        video, _ = track_reference_video(real_clip.video, lambda stage, f: None, lambda: False, model)
        assert (video.track.face_crops is not None) == cut
        assert video.face.model_id == model.model_id and np.isfinite(video.face.units).all()


def test_a_file_that_skips_frames_keeps_its_video_in_the_take_but_nothing_unseen_is_measured(real_clip, tmp_path):
    """A variable-frame-rate file (one frame in four missing, as phones record in low light): the tracker marks the
    skipped frames unseen (confidence 0, which the offset evidence and the measures read), while the video's weight in
    the take bridges them; at 0 each skip faded the video out and back in."""
    import av
    import fractions

    from lattice_talk.core.motion.fusion import resample_face, track_reference_video, video_weight

    path = tmp_path / "skips.mp4"
    with av.open(str(real_clip.video)) as source, av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=int(VIDEO_FPS))
        stream.time_base = fractions.Fraction(1, int(VIDEO_FPS))
        for k, frame in enumerate(source.decode(video=0)):
            if k == 0:
                stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
            if k % 4 == 2:
                continue
            picture = av.VideoFrame.from_ndarray(frame.to_ndarray(format="bgr24"), format="bgr24")
            picture.pts = k
            out.mux(stream.encode(picture))
        out.mux(stream.encode())
    video, _ = track_reference_video(path, lambda stage, f: None, lambda: False, RetargetFaceModel())
    dropped = video.track.dropped_frames
    assert len(dropped) >= 15 and np.all(video.track.confidence[dropped] == 0)
    assert np.all(video.face.confidence[dropped] > 0.5)
    n = video.track.n_frames
    skipping = video_weight(resample_face(replace(video.face, confidence=video.track.confidence), n, VIDEO_FPS, 0.0)[2],
                            VIDEO_FPS)
    bridged = video_weight(resample_face(video.face, n, VIDEO_FPS, 0.0)[2], VIDEO_FPS)
    assert skipping.mean() < 0.3 and bridged.mean() > 0.9


def test_the_learned_model_is_chosen_when_its_weights_exist(tmp_path, monkeypatch):
    assert isinstance(video_face_model(tmp_path), RetargetFaceModel)
    (tmp_path / VIDEO_MODEL_WEIGHTS).write_bytes(b"weights")
    learned = types.SimpleNamespace(model_id="meshconv/test")
    fake = types.ModuleType("lattice_talk.core.motion.video_model")
    fake.load_face_model = lambda folder, device: learned if (folder, device) == (tmp_path, "cpu") else None
    monkeypatch.setitem(sys.modules, "lattice_talk.core.motion.video_model", fake)
    assert video_face_model(tmp_path) is learned


# ------------------------------------------------------------------------------------------ pipeline, CLI
def run(model_dir, audio, video=None, should_stop=lambda: False, stages=None):
    from lattice_talk.core.heads import create
    from lattice_talk.core.pipeline import GenerateRequest
    from lattice_talk.core.speech.pipeline import SpeechPipeline

    pipeline = SpeechPipeline(model_dir, threads=1)
    pipeline.prepare()
    request = GenerateRequest(audio_path=audio, head=create("default"), video_path=video)
    return pipeline.generate(request, lambda s, f: (stages if stages is not None else []).append((s, f)), should_stop)


def test_pipeline_takes_head_pose_from_the_video_and_the_mouth_from_the_audio(real_clip, model_dir):
    from lattice_talk.core.mouth import mouth_unit_mask

    stages = []
    fused = run(model_dir, real_clip.wav, real_clip.video, stages=stages)
    plain = run(model_dir, real_clip.wav)
    assert fused.n_frames == plain.n_frames == 89  # the audio's length (2.978 s) at 30 fps
    info = fused.provenance["video"]
    offset = info["offset_frames"]  # video frames: GRID's own 3-frame lead when the estimate is sure, else declined
    assert (offset, info["offset_reliable"]) in ((3, True), (0, False))  # never another shift (test_av_offset.py)
    assert info["fused_share"] > 0.85 and info["model"] == "retarget-baseline/2"
    assert len(info["sha256"]) == 64 and info["file"] == "line.mp4"
    mouth = mouth_unit_mask(fused.expression_names)
    assert np.array_equal(fused.expression[:, mouth], plain.expression[:, mouth]) and np.array_equal(fused.jaw, plain.jaw)
    assert not np.allclose(fused.expression[:, ~mouth], plain.expression[:, ~mouth])
    # Every 6th take frame (30 fps) falls on a video frame (25 fps), shifted by the offset: the rotation is the tracker's there.
    last = real_clip.track.n_frames - FADE_SECONDS * VIDEO_FPS - 1  # before the fade to audio-only at the video's end
    take_frames = np.array([f for f in range(0, fused.n_frames, 6) if f * 5 // 6 + offset < last])
    assert take_frames.size >= 11
    assert np.allclose(fused.global_rotation[take_frames], real_clip.track.head_rotation[take_frames * 5 // 6 + offset], atol=1e-5)
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions) and any(s.startswith("video: tracking") for s, _ in stages)


def test_cancel_during_tracking(real_clip, model_dir):
    from lattice_talk.core.pipeline import Cancelled

    stages = []
    with pytest.raises(Cancelled):
        run(model_dir, real_clip.wav, real_clip.video, lambda: any(s.startswith("video: tracking") for s, _ in stages), stages)
    assert stages[-1][0].startswith("video: tracking") and not any(s.startswith("speech") for s, _ in stages)


def test_a_video_file_as_the_audio_and_one_without_sound(real_clip):
    from lattice_talk.core.audio import load_audio
    from lattice_talk.core.errors import AudioError

    with pytest.raises(AudioError, match="no sound track") as info:
        load_audio(real_clip.video)  # written by OpenCV: pictures only
    assert str(info.value).startswith(str(real_clip.video))


@pytest.fixture
def tiny_pipeline(model_dir):
    from lattice_talk.core import pipeline_registry as pipelines
    from lattice_talk.core.speech.pipeline import SpeechPipeline

    pipelines.register_pipeline("tiny", lambda: SpeechPipeline(model_dir, threads=1))
    yield "tiny"
    pipelines.unregister_pipeline("tiny")


def test_cli_generate_with_video_to_npz(real_clip, tiny_pipeline, tmp_path):
    from lattice_talk.cli import EXIT_OK, main
    from lattice_talk.core.clip import load_clip

    out = tmp_path / "take.npz"
    assert main(["generate", str(real_clip.wav), "--video", str(real_clip.video), "--out", str(out),
                 "--pipeline", tiny_pipeline, "--quiet"]) == EXIT_OK
    clip = load_clip(out)
    assert clip.n_frames == 89 and clip.provenance["video"]["file"] == "line.mp4"


def test_cli_generate_with_the_opt_in_learned_video_model(real_clip, tiny_pipeline, tmp_path, capsys):
    import json

    from lattice_talk.cli import EXIT_OK, main
    from lattice_talk.core.clip import load_clip

    learned = Path(__file__).resolve().parents[1] / "vendor_models" / "video" / "meshconv"
    out = tmp_path / "take.npz"
    assert main(["generate", str(real_clip.wav), "--video", str(real_clip.video), "--video-model", str(learned),
                 "--out", str(out), "--pipeline", tiny_pipeline, "--quiet"]) == EXIT_OK
    model_id = json.loads((learned / "video_model.json").read_text())["model_id"]
    assert load_clip(out).provenance["video"]["model"].endswith(model_id)  # the learned model, not the baseline
    missing = tmp_path / "no_model"
    missing.mkdir()
    bad = tmp_path / "bad.npz"
    assert main(["generate", str(real_clip.wav), "--video", str(real_clip.video), "--video-model", str(missing),
                 "--out", str(bad), "--pipeline", tiny_pipeline, "--quiet"]) != EXIT_OK
    assert str(missing) in capsys.readouterr().err and not bad.exists()


def test_cli_batch_finds_each_video_by_name(real_clip, tiny_pipeline, tmp_path):
    import shutil

    from lattice_talk.cli import EXIT_OK, main
    from lattice_talk.core.clip import load_clip

    lines, videos = tmp_path / "lines", tmp_path / "videos"
    lines.mkdir(), videos.mkdir()
    for name in ("a", "b"):
        shutil.copy(real_clip.wav, lines / f"{name}.wav")
    shutil.copy(real_clip.video, videos / "a.MP4")
    assert main(["generate", str(lines), "--video", str(videos), "--out", str(tmp_path / "takes"),
                 "--pipeline", tiny_pipeline, "--quiet"]) == EXIT_OK
    assert load_clip(tmp_path / "takes" / "a.npz").provenance["video"]["file"] == "a.MP4"
    assert "video" not in load_clip(tmp_path / "takes" / "b.npz").provenance


@pytest.mark.parametrize("kind", ["still image", "no face"])
def test_a_bad_video_is_one_clear_error_and_no_output(real_clip, tiny_pipeline, tmp_path, capsys, kind):
    import cv2

    from lattice_talk.cli import EXIT_OK, main

    video = tmp_path / "ref.mp4"
    if kind == "still image":
        cv2.imwrite(str(tmp_path / "still.png"), np.full((64, 64, 3), 128, np.uint8))
        video.write_bytes((tmp_path / "still.png").read_bytes())
        expected = "still PNG image"
    else:
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (160, 120))
        for k in range(20):
            writer.write(np.full((120, 160, 3), 40 + 5 * k, np.uint8))
        writer.release()
        expected = "a face was found in 0 of 20 frames"
    out = tmp_path / "take.npz"
    assert main(["generate", str(real_clip.wav), "--video", str(video), "--out", str(out),
                 "--pipeline", tiny_pipeline, "--quiet"]) != EXIT_OK
    err = capsys.readouterr().err
    assert expected in err and err.count(str(video)) == 1 and not out.exists()


# ------------------------------------------------------------------------------------------ the operator
def test_operator_generates_with_the_sidebar_video_and_refuses_a_bad_one(real_clip, tiny_pipeline, tmp_path):
    bpy = pytest.importorskip("bpy", reason="the operator needs the bpy wheel")
    import lattice_talk
    from clip_fixtures import scene_snapshot
    from lattice_talk.scene.take_writer import PROVENANCE_PROP

    bpy.ops.wm.read_factory_settings(use_empty=True)
    lattice_talk.register()
    try:
        bpy.ops.lattice_talk.add_head(source="DEFAULT")
        settings = bpy.context.scene.lattice_talk
        settings.audio_path, settings.video_path, settings.take_name = str(real_clip.wav), str(real_clip.video), "Ref"
        assert bpy.ops.lattice_talk.generate_from_audio(pipeline=tiny_pipeline) == {"FINISHED"}
        actions = [a for a in bpy.data.actions if PROVENANCE_PROP in a]
        assert actions and all(json.loads(a[PROVENANCE_PROP])["video"]["file"] == "line.mp4" for a in actions)
        still = tmp_path / "still.mp4"
        still.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
        settings.video_path, settings.take_name = str(still), "Bad"
        before = scene_snapshot(bpy)
        with pytest.raises(RuntimeError, match="still PNG image"):
            bpy.ops.lattice_talk.generate_from_audio(pipeline=tiny_pipeline)
        assert scene_snapshot(bpy) == before
    finally:
        lattice_talk.unregister()


def test_operator_uses_the_video_model_chosen_in_the_preferences(real_clip, tiny_pipeline, tmp_path):
    bpy = pytest.importorskip("bpy", reason="the operator needs the bpy wheel")
    import lattice_talk
    from clip_fixtures import scene_snapshot
    from lattice_talk.core.motion.face_models import LEARNED_VIDEO_MODEL_DIR
    from lattice_talk.scene.take_writer import PROVENANCE_PROP

    bpy.ops.wm.read_factory_settings(use_empty=True)
    lattice_talk.register()
    addons = bpy.context.preferences.addons
    prefs = addons.new()
    prefs.module = lattice_talk.__name__
    try:
        bpy.ops.lattice_talk.add_head(source="DEFAULT")
        settings = bpy.context.scene.lattice_talk
        settings.audio_path, settings.video_path, settings.take_name = str(real_clip.wav), str(real_clip.video), "Learned"
        prefs.preferences.video_model_source = "LEARNED"
        assert bpy.ops.lattice_talk.generate_from_audio(pipeline=tiny_pipeline) == {"FINISHED"}
        model_id = json.loads((LEARNED_VIDEO_MODEL_DIR / "video_model.json").read_text())["model_id"]
        models = {json.loads(a[PROVENANCE_PROP])["video"]["model"] for a in bpy.data.actions if PROVENANCE_PROP in a}
        assert models and all(m.endswith(model_id) for m in models)  # the learned model, not the baseline
        prefs.preferences.video_model_source = "LOCAL"  # a folder choice with no folder, then one with no model
        settings.take_name = "Bad"
        before = scene_snapshot(bpy)
        with pytest.raises(RuntimeError, match="no folder is set"):
            bpy.ops.lattice_talk.generate_from_audio(pipeline=tiny_pipeline)
        prefs.preferences.video_model_path = str(tmp_path)
        with pytest.raises(RuntimeError, match="no video_model.safetensors there"):
            bpy.ops.lattice_talk.generate_from_audio(pipeline=tiny_pipeline)
        assert scene_snapshot(bpy) == before
    finally:
        addons.remove(addons[lattice_talk.__name__])
        lattice_talk.unregister()
