"""Two files of one recording with different A/V sync (core.real_av.same_recording, core.real_av.own_offset): the
difference is read from the sounds and the tracked faces without any model, and a file whose own offset its
releases cannot give takes its twin's moved by that difference.

Real inputs the repo makes: the default head rendered speaking flite speech while it turns and blinks
(spoken_head_fixtures), and a second cut of it — two frames of picture and five frames of sound cut off its start,
so its picture is 3 frames later against its sound. The lag searches are checked on signals with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lattice_talk.core.errors import LatticeTalkError
from lattice_talk.core.real_av.same_recording import RecordingAlignment, picture_lag, sound_lag

TEXT = "the farmer walked out to his fields and looked at the sky before the rain came over the hills"
FPS = 25.0


def _smooth_noise(n: int, seed: int, width: int = 40) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(size=n + width)
    return np.convolve(noise, np.hanning(width), mode="valid")[:n]


def test_sound_lag_is_where_one_sound_sits_in_the_other_to_a_sample():
    rate = 16000
    a = np.random.default_rng(0).normal(size=2 * rate).astype(np.float32)
    b = np.concatenate([np.zeros(3210, np.float32), a[:-500]])  # a starts 3210 samples into b
    lag, r = sound_lag(a, b, rate)
    assert lag == pytest.approx(3210 / rate) and r > 0.999
    lag, r = sound_lag(a[4000:], a, rate)  # a later cut of the same sound: it sits 4000 samples in
    assert lag == pytest.approx(4000 / rate) and r > 0.999
    assert sound_lag(a, np.random.default_rng(1).normal(size=2 * rate), rate)[1] < 0.1


def test_picture_lag_reads_seconds_across_frame_rates_to_a_fraction_of_a_frame():
    t = np.arange(0.0, 12.0, 0.001)  # a "recording": 12 channels of smooth motion at 1 kHz
    motion = np.stack([_smooth_noise(len(t), seed, width=300) for seed in range(12)], axis=1)
    a = motion[(np.arange(0.0, 6.0, 1 / 25) * 1000).astype(int) + 3000]  # 6 s from 3.0 s, at 25 fps
    b = motion[(np.arange(0.0, 11.0, 1 / 30) * 1000).astype(int) + 863]  # 11 s from 0.863 s, at 30 fps
    lag, r = picture_lag(a, 25.0, b, 30.0)
    assert lag == pytest.approx(3.0 - 0.863, abs=0.005) and r > 0.98  # within an eighth of a frame
    assert picture_lag(a, 25.0, b, 30.0, near=2.5)[0] == pytest.approx(lag)  # searched near the sound's lag
    far, _ = picture_lag(a, 25.0, b, 30.0, near=4.0)  # the true lag lies 1.9 s away: only nearer ones are tried
    assert abs(far - 4.0) <= 1.0 + 1 / 30


def test_offset_difference_is_the_picture_lag_minus_the_sound_lag():
    # b's picture shows a's frame at t 0.08 s later, its sound plays a's 0.2 s later: b's picture is 0.12 s earlier
    # against its sound than a's is
    assert RecordingAlignment(0.2, 1.0, 0.08, 1.0, 25.0, 30.0).offset_difference == pytest.approx(-0.12)


def test_a_manifest_names_a_same_recording_clip_of_the_same_speaker(tmp_path):
    from lattice_talk.core.real_av.manifest import MANIFEST_FORMAT, load_manifest

    clip = {"video": "v.mp4", "sha256": "0" * 64, "split": "test", "source": "s", "license": "CC0"}
    clips = [{**clip, "name": "a", "speaker": "one"}, {**clip, "name": "b", "speaker": "two", "same_recording": "a"}]
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"format": MANIFEST_FORMAT, "clips": clips}))
    with pytest.raises(LatticeTalkError, match="b's same_recording 'a'"):
        load_manifest(path)
    clips[1].update(speaker="one", same_recording="b")  # itself: no evidence
    path.write_text(json.dumps({"format": MANIFEST_FORMAT, "clips": clips}))
    with pytest.raises(LatticeTalkError, match="b's same_recording 'b' is not another clip of speaker 'one'"):
        load_manifest(path)
    clips[1]["same_recording"] = "a"
    path.write_text(json.dumps({"format": MANIFEST_FORMAT, "clips": clips}))
    assert load_manifest(path)[1].same_recording == "a"


@pytest.fixture(scope="module")
def two_cuts(tmp_path_factory):
    pytest.importorskip("bpy", reason="rendering needs the bpy wheel")
    pytest.importorskip("mediapipe", reason="the 'video' extra")
    import cv2
    import soundfile
    from spoken_head_fixtures import render_spoken_head

    from lattice_talk.core.real_av.manifest import MANIFEST_FORMAT, load_manifest, sha256_of

    folder = tmp_path_factory.mktemp("cuts")
    video, _, utterance = render_spoken_head(TEXT, folder, fps=FPS, upper_face=True)
    soundfile.write(folder / "head.wav", utterance.audio, utterance.sample_rate)
    capture, frames = cv2.VideoCapture(str(video)), []
    while (frame := capture.read())[0]:
        frames.append(frame[1])
    writer = cv2.VideoWriter(str(folder / "cut.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), FPS, frames[0].shape[1::-1])
    for frame in frames[2:]:
        writer.write(frame)
    writer.release()
    five_frames = int(round(5 * utterance.sample_rate / FPS))
    soundfile.write(folder / "cut.wav", utterance.audio[five_frames:], utterance.sample_rate)
    soundfile.write(folder / "reversed.wav", utterance.audio[::-1], utterance.sample_rate)
    common = {"speaker": "default_head", "split": "test", "source": "rendered by the test", "license": "CC0"}
    entries = [{"name": "head", "video": "head.mp4", "audio": "head.wav", **common},
               {"name": "cut", "video": "cut.mp4", "audio": "cut.wav", "same_recording": "head", **common}]
    for entry in entries:
        entry.update(sha256=sha256_of(folder / entry["video"]), audio_sha256=sha256_of(folder / entry["audio"]))
    (folder / "manifest.json").write_text(json.dumps({"format": MANIFEST_FORMAT, "clips": entries}))
    return folder, load_manifest(folder / "manifest.json")


@pytest.mark.blender
def test_a_second_cut_takes_its_twins_offset_moved_by_the_measured_difference(two_cuts):
    from lattice_talk.core.real_av.lip_release import ReleaseSync
    from lattice_talk.core.real_av.own_offset import own_offset
    from lattice_talk.core.real_av.same_recording import NotSameRecording, align_recordings

    folder, clips = two_cuts
    head, cut = clips
    own = own_offset(cut, ReleaseSync(()), clips, folder)  # its releases say nothing (no transcript)
    # the cut's picture starts 2 frames in, its sound 5: the same moment is seen 3 frames later than it is heard
    assert own.frames == pytest.approx(3.0, abs=0.25) and own.whole_frames == 3, own
    assert own.source.startswith("same recording as head")
    assert own_offset(head, ReleaseSync(()), clips, folder).frames is None  # it names no twin: unknown
    assert own_offset(cut, ReleaseSync((-1.2, -1.0, -0.9)), clips, folder).frames == pytest.approx(-1.0)  # releases win
    with pytest.raises(NotSameRecording, match="head.mp4 and .*cut.mp4 are not one recording"):
        align_recordings(folder / "head.mp4", folder / "cut.mp4", folder / "reversed.wav", folder / "cut.wav")
    (folder / "cut.wav").rename(folder / "moved.wav")  # a twin's file missing: one error naming both clips
    try:
        with pytest.raises(LatticeTalkError, match="cut's own offset is read against head.*cut.wav"):
            own_offset(cut, ReleaseSync(()), clips, folder)
    finally:
        (folder / "moved.wav").rename(folder / "cut.wav")
